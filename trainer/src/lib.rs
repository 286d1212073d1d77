//! Training, export, evaluation and pictures of VAE models on MNIST, with dfdx 0.13. The
//! `vae` binary (`src/bin/vae/`) is a thin command-line layer over this library.
//!
//! # Layout
//!
//! One concept a module; each imports only from the rows above it, so the modules form
//! layers without cycles (`farm-studio look trainer/src` draws them). MNIST is read by
//! the `mnist` crate; the model file format, the decoder and f16/i8 rounding are
//! `vae-core`'s.
//!
//! 1. Foundations, importing no other module: [`config`] (what decides a run, with
//!    every default), [`tensor`], [`loss`], [`run_dir`] (a run folder's file names),
//!    [`io`] (atomic writes), [`progress`], [`frechet`] (the Fréchet distance between
//!    two sets of features).
//! 2. The model: [`batch`] (images to a batch on the device), [`model`] (layers, the
//!    VAE, its forward pass and tape-driven loss), [`history`], [`render`] (PNG, GIF).
//! 3. Gradients and measures: [`grad`] (the hand-derived gradients), [`importance`]
//!    (the importance-weighted bound's, built on them), [`metrics`] (mean loss, label
//!    fidelity), [`export`] (model files), [`pictures`].
//! 4. Optimization: [`adam`] (per-layer updates), [`classifier`] (the independent judge).
//! 5. Runs: [`step`] (one step: shards side by side, then Adam; [`step::TrainDevice`]
//!    says how a CPU or CUDA device runs them), [`checkpoint`] (weights and resume
//!    state), [`eval`] (`vae eval`'s report).
//! 6. The loop: [`train`] (epochs, the run folder's files after each, `--resume`);
//!    [`device_check`] (`vae device-check`: the step's code paths on a device against
//!    the CPU).
//!
//! Where to add things:
//! - a new layer type or activation: the forward pass in [`model`], its gradient in
//!   [`grad`] (the `gradients_match_the_tape` test holds the two together), and, for the
//!   decoder, the same layer in `vae-core` (format and decoder, with a version bump);
//! - a new loss term: a field of [`loss::LossTerms`], its value in [`model::Vae::loss`]
//!   (the reference) and in [`grad::loss_and_gradients`] with its gradient, its weight in
//!   [`config::TrainConfig`];
//! - a new CLI command: its arguments in `src/bin/vae/args.rs`, its dispatch in
//!   `src/bin/vae/main.rs`, and its work as a library function in the layer it
//!   belongs to.

pub mod adam;
pub mod batch;
pub mod checkpoint;
pub mod classifier;
pub mod config;
pub mod device_check;
pub mod eval;
pub mod export;
pub mod frechet;
pub mod grad;
pub mod history;
pub mod importance;
pub mod io;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod pictures;
pub mod progress;
pub mod render;
pub mod run_dir;
pub mod step;
pub mod tensor;
pub mod train;
