//! WebAssembly with SIMD128 (wasm32 built with `target-feature=+simd128`, as
//! `scripts/web.sh` builds the page's module): the i8 layer, sixteen weights at a time.
//!
//! [`pack`] stores the quantized input as i16, two per word, in input order (the words'
//! little-endian bytes are then an i16 array), so one 128-bit load holds eight inputs.
//! Sixteen i8 weights are loaded at once and widened to two vectors of eight i16;
//! `i32x4.dot_i16x8_s` multiplies eight pairs and adds neighbours into four i32 lanes.
//! The sums are exact integers (see [`QuantizedInput`]), so this order gives the bits
//! of the portable kernel's.

use core::arch::wasm32::{
    i16x8_extend_high_i8x16, i16x8_extend_low_i8x16, i32x4_add, i32x4_dot_i16x8,
    i32x4_extract_lane, i32x4_splat, v128, v128_load,
};

use super::QuantizedInput;
use crate::MAX_WIDTH;

/// Quantizes `buffer[..len]` with `q` and packs it as i16 pairs: word `k` holds input
/// `2k` in its low half and `2k + 1` in its high half (0 past the last input).
pub(super) fn pack(buffer: &mut [i32; MAX_WIDTH], len: usize, q: impl Fn(i32) -> i32) {
    let len = len.min(MAX_WIDTH);
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
