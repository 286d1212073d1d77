//! Layer 3, the network: the VAE, its hand-derived gradients and the optimizer.
//!
//! Each module imports only from the modules listed before it here and from lower
//! layers (checked by `trainer/tests/layers.rs`).

/// Convolution layers: their shapes and taps, on host buffers and in dfdx.
pub mod conv;

/// The critic's spectral normalization: each weight matrix's largest singular value
/// kept at 1.
pub mod spectral;

/// The layers, the VAE's forward pass and its objectives in dfdx operations (the
/// reference).
pub mod model;

/// The objectives' gradients through dfdx's tape: every device's step but the CPU's.
pub mod tape;

/// Adam, per-layer updates.
pub mod adam;

/// The training step on the CPU, on host buffers: the objectives' gradients derived by
/// hand (tested against `tape`'s) and `adam`'s update, without dfdx's per-operation
/// costs.
pub mod host;
