//! Training, export, sampling and inspection of VAE models on MNIST, with dfdx 0.13.
//! The `vae` binary is a thin command-line layer over this library.

pub mod adam;
pub mod checkpoint;
pub mod classifier;
pub mod data;
pub mod eval;
pub mod exec;
pub mod export;
pub mod grad;
pub mod io;
pub mod model;
pub mod pictures;
pub mod render;
pub mod train;
