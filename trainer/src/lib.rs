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
//! 3. [`nn`]: model (layers, the VAE, its forward pass and tape-driven loss), grad (the
//!    hand-derived gradients), importance (the importance-weighted bound's), adam.
//! 4. [`output`]: export (model files), history, render (PNG, GIF), pictures.
//! 5. [`eval`]: frechet, classifier (the independent judge), mean_loss, fidelity,
//!    iwae, report (`vae eval`'s report).
//! 6. [`train`]: step (one step: shards side by side, then Adam;
//!    [`train::step::TrainDevice`] says how a CPU or CUDA device runs them),
//!    checkpoint (weights and resume state), run (epochs, the run folder's files after
//!    each, `--resume`).
//! 7. [`device`]: check (`vae device-check`: the step's code paths on a device against
//!    the CPU).
//!
//! Where to add things:
//! - a new layer type or activation: the forward pass in [`nn::model`], its gradient in
//!   [`nn::grad`] (the `gradients_match_the_tape` test holds the two together), and, for the
//!   decoder, the same layer in `vae-core` (format and decoder, with a version bump);
//! - a new loss term: a field of [`foundation::loss::LossTerms`], its value in [`nn::model::Vae::loss`]
//!   (the reference) and in [`nn::grad::loss_and_gradients`] with its gradient, its weight in
//!   [`foundation::config::TrainConfig`];
//! - a new CLI command: its arguments in `src/bin/vae/args.rs`, its dispatch in
//!   `src/bin/vae/main.rs`, and its work as a library function in the layer it
//!   belongs to.

pub mod foundation;

pub mod data;

pub mod nn;

pub mod output;

pub mod eval;

pub mod train;

pub mod device;
