//! Training, export, evaluation and pictures of VAE models on MNIST, with dfdx 0.13. The
//! `vae` binary (`src/bin/vae/`) is a thin command-line layer over this library.
//!
//! # Layout
//!
//! The modules are grouped in folders, one per layer, listed here from the bottom up.
//! A module imports only from lower layers and from the modules listed before it in
//! its own folder's `mod.rs`, so there are no import cycles; `trainer/tests/layers.rs`
//! checks every `use crate::` against this order. MNIST is read by the `mnist` crate;
//! the model file format, the decoder and f16/i8 rounding are `vae-core`'s.
//!
//! 1. [`foundation`]: what the rest is built on: a run's settings, tensors, the loss's
//!    terms, files, progress.
//! 2. [`data`]: MNIST images as batches on the device; the firmware's output read back.
//! 3. [`nn`]: the network, its gradients (dfdx's tape, and the CPU's hand-derived
//!    closed form) and Adam.
//! 4. [`output`]: what a run leaves on disk besides its weights.
//! 5. [`eval`]: the figures a model is judged by, and `vae eval`'s report.
//! 6. [`train`]: one step on a device, checkpoints, the epoch loop.
//! 7. [`device`]: the step's code paths on a device against the CPU.
//!
//! Each module in a line, and where to add a layer, a loss term, a command or a
//! measure: docs/contributing.md, "Architecture" and "Where to add things".

pub mod foundation;

pub mod data;

pub mod nn;

pub mod output;

pub mod eval;

pub mod train;

pub mod device;
