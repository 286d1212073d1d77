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

// Side by side without `concat_along`.
//
// On CUDA, dfdx 0.13 compiles `concat_along`'s kernel (and `concat`'s, `stack`'s,
// `reshape_to`'s and `to_dtype`'s) at run time with NVRTC, against the CUDA include
// folder and the `OUT_DIR` of the machine that built the binary, and panics where those
// paths do not exist: on every GPU machine but the build machine. The trainer therefore
// joins columns with matrix products and additions, whose kernels dfdx ships compiled
// (`clippy.toml` forbids the run-time-compiled ones). The results are exact: each output
// is one input value times 1 plus zeros.

/// `m` (rows, k) in the columns `at..at + k` of a (rows, `width`) matrix that is zero
/// elsewhere: `m E`, where the (k, `width`) matrix `E` holds a 1 at (j, at + j).
pub fn place_columns<D: Device<f32>, T: Tape<f32, D> + Merge<NoneTape>>(
    m: Matrix<D, T>,
    at: usize,
    width: usize,
) -> Matrix<D, T> {
    let k = m.shape().1;
    let mut e = vec![0.0f32; k * width];
    for j in 0..k.min(width.saturating_sub(at)) {
        e[j * width + at + j] = 1.0;
    }
    let e = m.device().tensor_from_vec(e, (k, width));
    m.matmul(e)
}

/// `[a, b]`: the columns of `a`, then those of `b` (both with the same rows).
pub fn join_columns<D: Device<f32>, T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
    a: Matrix<D, T>,
    b: Matrix<D, T>,
) -> Matrix<D, T> {
    let (left, right) = (a.shape().1, b.shape().1);
    place_columns(a, 0, left + right) + place_columns(b, left, left + right)
}

/// Host rows of `width` values each, with `extra` zero columns after each row, on `dev`:
/// data that is to be joined with `extra` computed columns ([`place_columns`]) without a
/// product as wide as the data.
pub fn padded_rows<D: Device<f32>>(
    dev: &D,
    values: &[f32],
    width: usize,
    extra: usize,
) -> Matrix<D> {
    let rows = values.len() / width.max(1);
    let mut padded = Vec::with_capacity(rows * (width + extra));
    for row in values.chunks_exact(width.max(1)) {
        padded.extend_from_slice(row);
        padded.resize(padded.len() + extra, 0.0);
    }
    dev.tensor_from_vec(padded, (rows, width + extra))
}

/// `t` under the shape `shape` of as many values, read in the same order, without a
/// kernel that dfdx compiles at run time.
///
/// dfdx's `reshape_like` relabels a contiguous tensor for free but copies any other with
/// a kernel it compiles at run time on CUDA (clippy.toml), and it does not say which a
/// tensor is. A sum's result always is contiguous (dfdx's binary kernels write a new
/// contiguous tensor, or into an operand that is one), so `t + 0` is relabeled: one
/// elementwise addition, exact, its gradient passed through unchanged.
pub fn relabel<S: Shape, Dst: Shape, D: Device<f32>, T: Tape<f32, D> + Merge<NoneTape>>(
    t: Tensor<S, f32, D, T>,
    shape: Dst,
) -> Tensor<Dst, f32, D, T> {
    let zeros = t.device().zeros_like(t.shape());
    #[allow(clippy::disallowed_methods)] // contiguous: no kernel runs
    (t + zeros).reshape_like(&shape)
}

/// The columns `idx` of every row of `map` (one image a row): the same columns for
/// every row, in `idx`'s order, repeats allowed.
pub fn gather_rows<D: Device<f32>, T: Tape<f32, D>>(
    map: Matrix<D, T>,
    idx: &[usize],
) -> Matrix<D, T> {
    let (n, len) = (map.shape().0, idx.len());
    let idx: Tensor<(usize,), usize, D> = map.device().tensor_from_vec(idx.to_vec(), (len,));
    map.gather(idx.broadcast_like::<_, Axis<0>>(&(n, len)))
}

/// Index of the largest value (the first one on ties; 0 for an empty row).
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Joining is exact: the same bits as dfdx's own concatenation, for values of every
    /// magnitude and sign (zero's sign aside, which no later operation distinguishes).
    #[test]
    fn joined_columns_are_the_concatenation_bit_for_bit() {
        let dev = Cpu::default();
        let a: Vec<f32> = (0..3 * 5)
            .map(|i| (i as f32 - 7.0) * 1.37e-3_f32.powi(i % 4))
            .collect();
        let b: Vec<f32> = (0..3 * 2).map(|i| 1.0 / (i as f32 + 0.3)).collect();
        let ta: Matrix<Cpu> = dev.tensor_from_vec(a.clone(), (3, 5));
        let tb: Matrix<Cpu> = dev.tensor_from_vec(b.clone(), (3, 2));
        #[allow(clippy::disallowed_methods)] // the reference, on the CPU
        let reference = (ta.clone(), tb.clone()).concat_along(Axis::<1>).as_vec();
        let bits = |v: Vec<f32>| v.iter().map(|x| (x + 0.0).to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(join_columns(ta, tb.clone()).as_vec()),
            bits(reference.clone())
        );
        let padded = padded_rows(&dev, &a, 5, 2) + place_columns(tb, 5, 7);
        assert_eq!(bits(padded.as_vec()), bits(reference));
    }
}
