//! Layer 4, output: what a run leaves on disk besides its weights.
//!
//! Each module imports only from the modules listed before it here and from lower
//! layers (checked by `trainer/tests/layers.rs`).

/// Model files, through `vae-core`'s writer, and the decoder as each file rounds it.
pub mod export;

/// The losses after every epoch (`history.json`).
pub mod history;

/// Pixels into PNG and GIF files.
pub mod render;

/// What each picture of a run shows.
pub mod pictures;
