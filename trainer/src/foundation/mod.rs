//! Layer 1, foundations: what the rest is built on.
//!
//! Each module imports only from the modules listed before it here and from lower
//! layers (checked by `trainer/tests/layers.rs`).

/// What decides a run: the model shape, the run settings and data options, with every default.
pub mod config;

/// Run-time-shaped dfdx tensors and the functions that build them.
pub mod tensor;

/// `exp` and `ln` that vectorize: the training step's elementwise loops on the host.
pub mod vector_math;

/// Matrix products on host buffers, counted for the benchmark.
pub mod matmul;

/// The importance weights' arithmetic: log-mean-exp and normalized weights.
pub mod importance_weights;

/// Atomic writes: nothing already written is lost.
pub mod io;

/// Progress bars for long work.
pub mod progress;

/// A run folder's file names.
pub mod run_dir;

/// Small models and data for the unit tests, and the error their tolerances are stated in.
#[cfg(test)]
pub mod testing;
