//! Layer 7, devices: the training step's code paths on a device against the CPU.
//!
//! Each module imports only from the modules listed before it here and from lower
//! layers (checked by `trainer/tests/layers.rs`).

/// `vae device-check`.
pub mod check;
