//! WebAssembly with SIMD128 (wasm32 built with `target-feature=+simd128`, as
//! `scripts/web.sh` builds the page's module): the float layers four rows at a time, and
//! the i8 layer sixteen weights at a time.
//!
//! Float layers: the four rows' sums sit in the four lanes of one vector, so each lane
//! is still its own row's left-to-right sum, `bias + x[0]*w[0] + x[1]*w[1] + ...`, with
//! the product rounded before the add (`f32x4.mul`, then `f32x4.add`: WebAssembly never
//! fuses them): the portable kernel's bits. Four weights of each row are loaded at once
//! and the 4 x 4 block transposed, so that each column's four weights form one vector;
//! f16 weights are widened in the vector as `portable::f16_to_f32_by_scaling` widens one.
//!
//! [`pack`] stores the quantized input as i16, two per word, in input order (the words'
//! little-endian bytes are then an i16 array), so one 128-bit load holds eight inputs.
//! Sixteen i8 weights are loaded at once and widened to two vectors of eight i16;
//! `i32x4.dot_i16x8_s` multiplies eight pairs and adds neighbours into four i32 lanes.
//! The sums are exact integers (see [`QuantizedInput`]), so this order gives the bits
//! of the portable kernel's.

use core::arch::wasm32::{
    f32x4, f32x4_add, f32x4_extract_lane, f32x4_mul, f32x4_splat, i16x8_extend_high_i8x16,
    i16x8_extend_low_i8x16, i32x4_add, i32x4_dot_i16x8, i32x4_extract_lane, i32x4_ne, i32x4_shl,
    i32x4_shuffle, i32x4_splat, i64x2_shuffle, u32x4_extend_low_u16x8, u32x4_ge, u32x4_splat, v128,
    v128_and, v128_bitselect, v128_load, v128_load64_zero, v128_or,
};

use super::portable::{F16_SPECIAL, TWO_TO_112};
use super::{dot, QuantizedInput};

/// The rows of one dense layer, as `portable::layer` defines them (same bits), four
/// rows at a time in the lanes of a vector for f32 (`B` = 4) and f16 (`B` = 2) weights.
pub(crate) fn layer<const B: usize>(
    x: &[f32],
    weights: &[u8],
    biases: &[u8],
    widen: impl Fn([u8; B]) -> f32,
    mut out: impl FnMut(usize, f32),
) {
    match B {
        4 => rows_in_lanes(x, weights, biases, &widen, load_f32, &mut out),
        2 => rows_in_lanes(x, weights, biases, &widen, load_f16, &mut out),
        _ => super::portable::layer(x, weights, biases, widen, out),
    }
}

/// Four f32 weights (16 bytes) as a vector.
fn load_f32(bytes: &[u8]) -> v128 {
    match <&[u8; 16]>::try_from(bytes) {
        // SAFETY: 16 readable bytes; `v128_load` needs no alignment.
        Ok(bytes) => unsafe { v128_load(bytes.as_ptr().cast()) },
        Err(_) => f32x4_splat(0.0),
    }
}

/// Four f16 weights (8 bytes) widened to f32, each as `portable::f16_to_f32_by_scaling` widens
/// it: the magnitude's bits moved into an f32 and multiplied by 2^112, except infinities
/// and NaNs (all-ones exponent), whose exponent is set whole (and a NaN's quiet bit).
fn load_f16(bytes: &[u8]) -> v128 {
    let Ok(bytes) = <&[u8; 8]>::try_from(bytes) else {
        return f32x4_splat(0.0);
    };
    // SAFETY: 8 readable bytes; `v128_load64_zero` needs no alignment.
    let halves = u32x4_extend_low_u16x8(unsafe { v128_load64_zero(bytes.as_ptr().cast()) });
    let sign = i32x4_shl(v128_and(halves, i32x4_splat(0x8000)), 16);
    let magnitude = i32x4_shl(v128_and(halves, i32x4_splat(0x7fff)), 13);
    let scaled = f32x4_mul(magnitude, f32x4_splat(TWO_TO_112));
    let mantissa = v128_and(magnitude, i32x4_splat(0x007f_ffff));
    let quiet = v128_and(i32x4_ne(mantissa, i32x4_splat(0)), i32x4_splat(0x0040_0000));
    let special = v128_or(v128_or(magnitude, quiet), i32x4_splat(0x7f80_0000));
    let is_special = u32x4_ge(magnitude, u32x4_splat(F16_SPECIAL));
    v128_or(sign, v128_bitselect(special, scaled, is_special))
}

/// [`layer`] for `B`-byte weights that `load` widens four at a time.
fn rows_in_lanes<const B: usize>(
    x: &[f32],
    weights: &[u8],
    biases: &[u8],
    widen: &impl Fn([u8; B]) -> f32,
    load: fn(&[u8]) -> v128,
    out: &mut impl FnMut(usize, f32),
) {
    let n = x.len();
    if n == 0 {
        return;
    }
    let (columns, x_tail) = x.as_chunks::<4>();
    let whole = 4 * columns.len();
    let (biases, _) = biases.as_chunks::<B>();
    let mut rows = weights.chunks_exact(B * n).zip(biases);
    let mut o = 0;
    loop {
        let group: [_; 4] = core::array::from_fn(|_| rows.next());
        let [Some((w0, b0)), Some((w1, b1)), Some((w2, b2)), Some((w3, b3))] = group else {
            for (w, b) in group.into_iter().flatten() {
                out(o, dot(widen(*b), x, w.as_chunks::<B>().0, widen));
                o += 1;
            }
            return;
        };
        let mut acc = f32x4(widen(*b0), widen(*b1), widen(*b2), widen(*b3));
        let blocks = w0
            .chunks_exact(4 * B)
            .zip(w1.chunks_exact(4 * B))
            .zip(w2.chunks_exact(4 * B))
            .zip(w3.chunks_exact(4 * B))
            .zip(columns);
        for ((((c0, c1), c2), c3), xs) in blocks {
            let (r0, r1, r2, r3) = (load(c0), load(c1), load(c2), load(c3));
            // Transpose: k[j] holds weight j of each of the four rows.
            let t0 = i32x4_shuffle::<0, 4, 1, 5>(r0, r1);
            let t1 = i32x4_shuffle::<2, 6, 3, 7>(r0, r1);
            let t2 = i32x4_shuffle::<0, 4, 1, 5>(r2, r3);
            let t3 = i32x4_shuffle::<2, 6, 3, 7>(r2, r3);
            let k = [
                i64x2_shuffle::<0, 2>(t0, t2),
                i64x2_shuffle::<1, 3>(t0, t2),
                i64x2_shuffle::<0, 2>(t1, t3),
                i64x2_shuffle::<1, 3>(t1, t3),
            ];
            for (&xv, k) in xs.iter().zip(k) {
                acc = f32x4_add(acc, f32x4_mul(f32x4_splat(xv), k));
            }
        }
        let lanes = [
            f32x4_extract_lane::<0>(acc),
            f32x4_extract_lane::<1>(acc),
            f32x4_extract_lane::<2>(acc),
            f32x4_extract_lane::<3>(acc),
        ];
        for (k, (w, a)) in [w0, w1, w2, w3].into_iter().zip(lanes).enumerate() {
            let tail = w.as_chunks::<B>().0.get(whole..).unwrap_or(&[]);
            out(o + k, dot(a, x_tail, tail, widen));
        }
        o += 4;
    }
}

/// Quantizes `buffer[..len]` with `q` and packs it as i16 pairs: word `k` holds input
/// `2k` in its low half and `2k + 1` in its high half (0 past the last input).
pub(super) fn pack(buffer: &mut [i32], len: usize, q: impl Fn(i32) -> i32) {
    let len = len.min(buffer.len());
    for k in 0..len.div_ceil(2) {
        let value = |i: usize| match buffer.get(i) {
            Some(&v) if i < len => q(v) & 0xffff,
            _ => 0,
        };
        let word = value(2 * k) | (value(2 * k + 1) << 16);
        if let Some(slot) = buffer.get_mut(k) {
            *slot = word;
        }
    }
}

/// Input `i` of a packed input (sign-extended from its half word).
fn input(words: &[i32], i: usize) -> i32 {
    let word = words.get(i / 2).copied().unwrap_or(0);
    if i.is_multiple_of(2) {
        (word << 16) >> 16
    } else {
        word >> 16
    }
}

/// Sixteen weights as a vector.
fn load_weights(w: &[u8; 16]) -> v128 {
    // SAFETY: `w` is 16 readable bytes; `v128_load` needs no alignment.
    unsafe { v128_load(w.as_ptr().cast()) }
}

/// Four words (eight packed inputs) as a vector.
fn load_inputs(q: &[i32; 4]) -> v128 {
    // SAFETY: `q` is 16 readable bytes; `v128_load` needs no alignment.
    unsafe { v128_load(q.as_ptr().cast()) }
}

/// `sum_i q[i] * w[i]` over the i8 weights `w` (one row of [`layer_i8`]), exact.
#[cfg(feature = "transposed-conv")]
pub(crate) fn dot_i8(x: &QuantizedInput, w: &[u8]) -> i32 {
    let mut sum = 0;
    layer_i8(x, w.get(..x.values.len()).unwrap_or(&[]), |_, s| sum = s);
    sum
}

/// [`super::portable::strided_i8`] through [`dot_i8`].
#[cfg(feature = "transposed-conv")]
pub(crate) fn strided_i8(x: &QuantizedInput, weights: &[u8], stride: usize, sums: &mut [i32]) {
    super::portable::strided_rows(dot_i8, x, weights, stride, sums);
}

/// The exact sums `sum_i q[i] * w[i]` of the rows of `weights` (one i8 byte per weight,
/// rows as long as `x`), handed to `each` with the row's index, in order.
pub(crate) fn layer_i8(x: &QuantizedInput, weights: &[u8], mut each: impl FnMut(usize, i32)) {
    let n = x.values.len();
    if n == 0 {
        return;
    }
    let groups = n / 16;
    // Eight words (sixteen inputs) per group.
    let (inputs, _) = x.values.as_chunks::<8>();
    let inputs = inputs.get(..groups).unwrap_or(&[]);
    for (o, row) in weights.chunks_exact(n).enumerate() {
        let (row_groups, row_tail) = row.as_chunks::<16>();
        let mut acc = i32x4_splat(0);
        for (w, q) in row_groups.iter().zip(inputs) {
            let w = load_weights(w);
            let [low, high] = q.as_chunks::<4>().0 else {
                continue;
            };
            let low = i32x4_dot_i16x8(i16x8_extend_low_i8x16(w), load_inputs(low));
            let high = i32x4_dot_i16x8(i16x8_extend_high_i8x16(w), load_inputs(high));
            acc = i32x4_add(acc, i32x4_add(low, high));
        }
        let mut sum = i32x4_extract_lane::<0>(acc)
            .wrapping_add(i32x4_extract_lane::<1>(acc))
            .wrapping_add(i32x4_extract_lane::<2>(acc))
            .wrapping_add(i32x4_extract_lane::<3>(acc));
        for (k, &w) in row_tail.iter().enumerate() {
            sum = sum.wrapping_add(input(x.values, 16 * groups + k) * i32::from(w as i8));
        }
        each(o, sum);
    }
}
