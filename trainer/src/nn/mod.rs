//! Layer 3, the network: the VAE, its hand-derived gradients and the optimizer.
//!
//! Each module imports only from the modules listed before it here and from lower
//! layers (checked by `trainer/tests/layers.rs`).

/// Convolution layers: their shapes and taps, on host buffers and in dfdx.
pub mod conv;

/// The layers, the VAE's forward pass and its tape-driven loss (the reference).
pub mod model;

/// The hand-derived gradients of the ELBO.
pub mod grad;

/// The importance-weighted bound and its gradients, built on `grad`.
pub mod importance;

/// Adam, per-layer updates.
pub mod adam;

/// The training step on the CPU, on host buffers: `grad`'s gradients and `adam`'s
/// update without dfdx's per-operation costs.
pub mod host;
