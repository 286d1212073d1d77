//! The tensors everything in the trainer is made of: dfdx tensors whose sizes are chosen
//! at run time.
//!
//! dfdx 0.13's `nn::Linear` fixes its sizes as const generics and its optimizers walk
//! modules through `TensorCollection`, which cannot describe run-time shapes; so the
//! trainer's layers, batches and optimizer state are plain tensors of these shapes.

use dfdx::prelude::*;

/// A 2-D tensor of run-time shape: a batch of rows, or a layer's weights.
pub type Matrix<D, T = NoneTape> = Tensor<(usize, usize), f32, D, T>;
/// A 1-D tensor of run-time shape: a layer's biases.
pub type Vector<D> = Tensor<(usize,), f32, D>;

/// The value of a 0-dimensional tensor (NaN if it holds none).
pub fn scalar<D: Device<f32>, T>(t: &Tensor<(), f32, D, T>) -> f32 {
    t.as_vec().first().copied().unwrap_or(f32::NAN)
}
