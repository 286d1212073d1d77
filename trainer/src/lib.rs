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
//! 1. [`foundation`]: config (what decides a run, with every default), tensor, loss,
//!    io (atomic writes), progress, run_dir (a run folder's file names).
//! 2. [`data`]: batch (images to a batch on the device).
//! 3. [`nn`]: conv (convolutions' shapes and taps), model (layers, the VAE, its forward
//!    pass and objectives in dfdx operations), tape (their gradients through dfdx's
//!    tape: every device's step but the CPU's, and the reference), adam (Adam's
//!    arithmetic, once), host (the CPU's step: the hand-derived gradients).
//! 4. [`output`]: export (model files), history, render (PNG, GIF), pictures.
//! 5. [`eval`]: frechet, classifier (the independent judge), mean_loss, fidelity,
//!    iwae, report (`vae eval`'s report).
//! 6. [`train`]: step (one step: shards side by side, then Adam;
//!    [`train::step::TrainDevice`] says how a CPU or CUDA device runs them;
//!    [`train::step::Training`], the one owner of the weights and Adam's state while
//!    they train), checkpoint (weights and resume state), run (epochs, the run folder's
//!    files after each, `--resume`).
//! 7. [`device`]: check (`vae device-check`: the step's code paths on a device against
//!    the CPU).
//!
//! Where to add a layer, a loss term, a command or a measure: docs/contributing.md,
//! "Where to add things".

pub mod foundation;

pub mod data;

pub mod nn;

pub mod output;

pub mod eval;

pub mod train;

pub mod device;
