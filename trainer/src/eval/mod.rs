//! Layer 5, evaluation: the figures a model is judged by, and `vae eval`'s report.
//!
//! Each module imports only from the modules listed before it here and from lower
//! layers (checked by `trainer/tests/layers.rs`).

/// The Fréchet distance between two sets of features.
pub mod frechet;

/// Nearest neighbours by Euclidean distance, in blocks of a matrix product.
pub mod neighbours;

/// Precision and recall of samples on the judge's features.
pub mod precision_recall;

/// The copy check: samples nearer to training images than test images are.
pub mod copies;

/// The independent judge of generated digits.
pub mod classifier;

/// A model's mean loss on a data set.
pub mod mean_loss;

/// Label fidelity: samples read as the digit asked for.
pub mod fidelity;

/// The importance-weighted estimate of -log p(x).
pub mod iwae;

/// `vae eval`: every figure for the f32, f16 and i8 decoders.
pub mod report;
