//! The portable kernels: the definitions every assembly kernel reproduces bit for bit,
//! and the code on every target that has no assembly for a kernel (the host among them).
// On a target with assembly kernels some of these are replaced, and unused there.
#![allow(dead_code)]

use super::{dot, QuantizedInput};

/// An f16 value (little-endian bytes) widened to f32; exact.
pub(crate) fn f16_to_f32(bits: [u8; 2]) -> f32 {
    half::f16::from_le_bytes(bits).to_f32()
}

/// 2^112: an f16's exponent and mantissa moved into an f32's fields read as the half's
/// value times 2^-112 (see [`f16_to_f32_by_scaling`]).
pub(super) const TWO_TO_112: f32 = f32::from_bits((127 + 112) << 23);

/// An f16's all-ones exponent (infinity or NaN), moved into an f32's exponent field.
pub(super) const F16_SPECIAL: u32 = 0x1f << 23;

/// [`f16_to_f32`] by integer moves and one f32 multiply, without branches but one for
/// infinities and NaNs: the same bits for every input (tested on all 65,536), faster
/// where floating point is in hardware and f16 conversion is not (WebAssembly).
///
/// The half's exponent and mantissa, moved into an f32's fields, read as an f32 that is
/// the half's value times 2^-112, for normal and subnormal halves alike (a subnormal half
/// becomes a subnormal f32); multiplying by 2^112 is exact. An all-ones exponent is an
/// infinity, or a NaN, which gets the quiet bit as `half` sets it.
pub(crate) fn f16_to_f32_by_scaling(bits: [u8; 2]) -> f32 {
    let h = u32::from(u16::from_le_bytes(bits));
    let sign = (h & 0x8000) << 16;
    let magnitude = (h & 0x7fff) << 13;
    let value = if magnitude >= F16_SPECIAL {
        let quiet = if magnitude & 0x007f_ffff != 0 {
            0x0040_0000
        } else {
            0
        };
        0x7f80_0000 | magnitude | quiet
    } else {
        (f32::from_bits(magnitude) * TWO_TO_112).to_bits()
    };
    f32::from_bits(sign | value)
}

/// Rows the portable layer kernel sums side by side.
const ROWS: usize = 4;

/// The rows of one dense layer: `out(o, bias[o] + x[0]*w[o][0] + x[1]*w[o][1] + ...)`
/// for each output `o` in order, with `B`-byte weights and biases widened by `widen`.
/// Each row is summed left to right, exactly as [`dot`] does (same bits), but four
/// rows at a time: one left-to-right sum waits on the adder's latency
/// at every term, and four independent sums in flight hide it.
pub(crate) fn layer<const B: usize>(
    x: &[f32],
    weights: &[u8],
    biases: &[u8],
    widen: impl Fn([u8; B]) -> f32,
    mut out: impl FnMut(usize, f32),
) {
    let (biases, _) = biases.as_chunks::<B>();
    let mut rows = weights
        .chunks_exact(B * x.len())
        .map(|row| row.as_chunks::<B>().0)
        .zip(biases);
    let mut o = 0;
    loop {
        let group: [_; ROWS] = core::array::from_fn(|_| rows.next());
        if let [Some((w0, b0)), Some((w1, b1)), Some((w2, b2)), Some((w3, b3))] = group {
            let (mut a0, mut a1, mut a2, mut a3) = (widen(*b0), widen(*b1), widen(*b2), widen(*b3));
            for ((((x, e0), e1), e2), e3) in x.iter().zip(w0).zip(w1).zip(w2).zip(w3) {
                a0 += x * widen(*e0);
                a1 += x * widen(*e1);
                a2 += x * widen(*e2);
                a3 += x * widen(*e3);
            }
            for (k, a) in [a0, a1, a2, a3].into_iter().enumerate() {
                out(o + k, a);
            }
            o += ROWS;
        } else {
            for (w, b) in group.into_iter().flatten() {
                out(o, dot(widen(*b), x, w, &widen));
                o += 1;
            }
            return;
        }
    }
}

/// `acc + x[0]*w[0] + x[1]*w[1] + ...` over the `B`-byte weights `w`, left to right
/// ([`dot`]): one row of a transposed convolution's kernel tap.
pub(crate) fn dot_float<const B: usize>(
    acc: f32,
    x: &[f32],
    w: &[u8],
    widen: impl Fn([u8; B]) -> f32,
) -> f32 {
    dot(acc, x, w.as_chunks::<B>().0, widen)
}

/// Quantizes `buffer[..len]` in place.
pub(super) fn pack(buffer: &mut [i32], len: usize, q: impl Fn(i32) -> i32) {
    for v in buffer.iter_mut().take(len) {
        *v = q(*v);
    }
}

/// `sum_i q[i] * w[i]` in order: the definition every i8 kernel without DSP
/// instructions reproduces (integer sums are exact, so the order does not matter).
pub(super) fn dot_i8_values(q: &[i32], w: &[u8]) -> i32 {
    q.iter().zip(w).fold(0i32, |acc, (&q, &w)| {
        acc.wrapping_add(q * i32::from(w as i8))
    })
}

/// `sum_i q[i] * w[i]` over i8 weights `w` (one byte each, one per input), exact.
pub(crate) fn dot_i8(x: &QuantizedInput, w: &[u8]) -> i32 {
    dot_i8_values(x.values, w)
}

/// The exact sums `sum_i q[i] * w[i]` of the rows of `weights` (one i8 byte per weight,
/// rows as long as `x`), handed to `each` with the row's index, in order.
pub(crate) fn layer_i8(x: &QuantizedInput, weights: &[u8], each: impl FnMut(usize, i32)) {
    rows_i8(dot_i8, x, weights, each);
}

/// [`layer_i8`] with each row's sum given by `dot`.
pub(super) fn rows_i8(
    dot: impl Fn(&QuantizedInput, &[u8]) -> i32,
    x: &QuantizedInput,
    weights: &[u8],
    mut each: impl FnMut(usize, i32),
) {
    let n = x.values.len();
    if n == 0 {
        return;
    }
    for (o, row) in weights.chunks_exact(n).enumerate() {
        each(o, dot(x, row));
    }
}
