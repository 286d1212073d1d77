//! Layer 6, training: one step on a device, checkpoints, and the epoch loop.
//!
//! Each module imports only from the modules listed before it here and from lower
//! layers (checked by `trainer/tests/layers.rs`).

/// One step: shards side by side, then Adam; how a CPU or CUDA device runs them.
pub mod step;

/// Weights and resume state on disk.
pub mod checkpoint;

/// The epoch loop, the run folder's files after each epoch, and `--resume`.
pub mod run;
