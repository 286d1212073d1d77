//! The decoder's inner loops, by operator, then instruction set:
//! - [`dense`]: the rows of a dense layer (`layer` for f32 and f16 weights, `layer_i8`);
//! - [`transposed_conv`]: a transposed convolution's taps (`gather_float` and
//!   `strided_i8`, every output channel of one output pixel or one tap; `dot_float` and
//!   `dot_i8`, one tap of one channel).
//!
//! Each operator chooses once, for the target, between the portable definition (the
//! host, and wherever no assembly replaces it) and a hand-scheduled version that gives
//! the same bits. The instruction sets' code lives one file each: [`portable`] (the
//! definitions), `cortex_m4f` (ARMv7E-M with an FPU), `cortex_m0` (ARMv6-M), `rv32`
//! (RV32IM) and `wasm32` (WebAssembly SIMD128).
//!
//! - f16 on the Cortex-M4F: the FPU's `VCVTB`/`VCVTT` widen two halves per word in one
//!   instruction each (the `half` crate would convert in software), and `VMLA`
//!   accumulates. `VMLA.F32` is the unfused multiply-add: the product is rounded before
//!   the sum, exactly as the portable `acc += x * w` (Rust never fuses it). The sum runs
//!   left to right in both.
//! - i8 on the Cortex-M4F: activations are quantized to i16 once per layer and `SMLAD`
//!   does two 16x16 multiply-adds per instruction. Integer sums are exact (see
//!   [`QuantizedInput`]), so any order gives the same bits.
//! - i8 on cores without an FPU or DSP instructions: assembly too, since the compiler's
//!   code for the portable loop is far from a multiply and an add per multiply-accumulate
//!   there: RV32IM (`dot_i8_loop`, a row at a time) and ARMv6-M (Thumb-1, which runs on
//!   every Cortex-M; `rows_i8`, the loop over rows included, and with a gap between rows
//!   for `strided_i8`).
//! - WebAssembly SIMD128 (the browser's module): the float kernels keep four rows' sums
//!   in the lanes of one vector (each lane its row's left-to-right sum, the same bits),
//!   f16 widened by one exact f32 multiply instead of `half`'s branches
//!   (`portable::f16_to_f32_by_scaling`), and the i8 kernel takes sixteen weights at a
//!   time with `i32x4.dot_i16x8_s`.
//!
//! Scratch memory: no kernel takes any of its own; each works in registers over the
//! slices it is given, at most `x.len()` weights per row (the callers check the
//! slices). What the operators around them need is stated by one function each, which
//! [`Model::scratch_len`](crate::Model::scratch_len) sums: [`dense::scratch_words`] and
//! `crate::forward::transposed_conv::scratch_len`.

use crate::MAX_WIDTH;

mod portable;

cfg_if::cfg_if! {
    if #[cfg(all(target_arch = "arm", target_os = "none", target_abi = "eabihf"))] {
        mod cortex_m4f;
        pub(crate) use cortex_m4f::f16_to_f32;
        use cortex_m4f::pack;
    } else if #[cfg(all(target_arch = "arm", target_os = "none"))] {
        mod cortex_m0;
        pub(crate) use portable::f16_to_f32;
        use portable::pack;
    } else if #[cfg(all(target_arch = "riscv32", target_os = "none"))] {
        mod rv32;
        pub(crate) use portable::f16_to_f32;
        use portable::pack;
    } else if #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))] {
        mod wasm32;
        pub(crate) use portable::f16_to_f32_by_scaling as f16_to_f32;
        use wasm32::pack;
    } else {
        pub(crate) use portable::f16_to_f32;
        use portable::pack;
    }
}

/// The dense layers' rows.
pub(crate) mod dense {
    cfg_if::cfg_if! {
        if #[cfg(all(target_arch = "arm", target_os = "none", target_abi = "eabihf"))] {
            pub(crate) use super::cortex_m4f::{layer, layer_i8};
        } else if #[cfg(all(target_arch = "arm", target_os = "none"))] {
            pub(crate) use super::{portable::layer, cortex_m0::layer_i8};
        } else if #[cfg(all(target_arch = "riscv32", target_os = "none"))] {
            pub(crate) use super::{portable::layer, rv32::layer_i8};
        } else if #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))] {
            pub(crate) use super::wasm32::{layer, layer_i8};
        } else {
            pub(crate) use super::portable::{layer, layer_i8};
        }
    }

    /// Words of scratch the dense layers run through: two buffers as wide as the widest
    /// layer input (`widest`), one layer's input and the next one's, in turn. The last
    /// layer writes into the caller's image, and the i8 kernel's quantized input takes
    /// the place of its Q16 values, so nothing else is needed.
    pub(crate) fn scratch_words(widest: usize) -> usize {
        widest.saturating_mul(2)
    }
}

/// A transposed convolution's taps.
#[cfg(feature = "transposed-conv")]
pub(crate) mod transposed_conv {
    cfg_if::cfg_if! {
        if #[cfg(all(target_arch = "arm", target_os = "none", target_abi = "eabihf"))] {
            pub(crate) use super::cortex_m4f::{dot_float, dot_i8, gather_float, strided_i8};
        } else if #[cfg(all(target_arch = "arm", target_os = "none"))] {
            pub(crate) use super::{portable::{dot_float, gather_float}, cortex_m0::{dot_i8, strided_i8}};
        } else if #[cfg(all(target_arch = "riscv32", target_os = "none"))] {
            pub(crate) use super::{portable::{dot_float, gather_float}, rv32::{dot_i8, strided_i8}};
        } else if #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))] {
            pub(crate) use super::{portable::{dot_float, gather_float}, wasm32::{dot_i8, strided_i8}};
        } else {
            pub(crate) use super::portable::{dot_float, dot_i8, gather_float, strided_i8};
        }
    }
}

/// `acc + x[0]*w[0] + x[1]*w[1] + ...`, left to right, for weights of `B` bytes each
/// widened to f32 by `widen`: the definition every kernel reproduces bit for bit.
pub(crate) fn dot<const B: usize>(
    acc: f32,
    x: &[f32],
    w: &[[u8; B]],
    widen: impl Fn([u8; B]) -> f32,
) -> f32 {
    x.iter().zip(w).fold(acc, |acc, (x, w)| acc + x * widen(*w))
}

/// A layer's input quantized to i16 for the i8 kernel: `q[i] = round(v[i] / 2^shift)`
/// for the Q16 values `v` (see [`fixed`](crate::fixed)), with the power of two that
/// leaves 15 bits for the largest, so the scale is a shift and no division is needed.
///
/// Stored as each kernel reads it. With DSP instructions (Cortex-M4F), in pairs, two i16
/// per word, in the order `SMLAD` wants them: each group of four inputs `x0 x1 x2 x3` as
/// the words `(x0, x2)` and `(x1, x3)`, which pair with the bytes `SXTB16` extracts from a
/// word of four i8 weights (`q0, q2`, and after a rotate, `q1, q3`), inputs after the last
/// whole group in order. Elsewhere one i32 per input, which the loops without DSP
/// instructions load into a register ready to multiply.
///
/// No sum overflows: `|q| <= 32767`, weights `<= 127` in magnitude and at most
/// `MAX_WIDTH = 512` terms (a dense layer's inputs, or one input pixel's channels of a
/// transposed convolution), so `|sum| <= 512 * 32767 * 127 = 2_130_444_288 < 2^31`.
pub(crate) struct QuantizedInput<'a> {
    /// The first `len` words of the buffer (pairs only in the first half of them).
    pub(crate) values: &'a [i32],
    /// `q[i] = round(v[i] / 2^shift)`.
    pub(crate) shift: u32,
}

const _: () = assert!(MAX_WIDTH as u64 * 32767 * 127 < (1u64 << 31));

impl<'a> QuantizedInput<'a> {
    /// Quantizes the Q16 values `buffer[..len]` in place (`len` at most `MAX_WIDTH`).
    pub(crate) fn new(buffer: &'a mut [i32], len: usize) -> Self {
        let len = len.min(MAX_WIDTH).min(buffer.len());
        let values = buffer.get_mut(..len).unwrap_or(&mut []);
        let shift = quantize_in_place(values);
        QuantizedInput { values, shift }
    }
}

/// Quantizes the Q16 values of `values` (at most `MAX_WIDTH`) in place, stored as the
/// kernels read them (see [`QuantizedInput`]), and returns the shift.
pub(crate) fn quantize_in_place(values: &mut [i32]) -> u32 {
    let shift = crate::fixed::input_shift(values);
    let len = values.len().min(MAX_WIDTH);
    pack(values, len, |v| crate::fixed::quantize(v, shift));
    shift
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn quantized_dot_matches_the_exact_sum_for_every_tail_length() {
        let mut rng = crate::Rng::new(3);
        for n in 1..=23 {
            let v: std::vec::Vec<i32> = (0..n).map(|_| rng.next_u32() as i32 >> 9).collect();
            let w: std::vec::Vec<u8> = (0..n).map(|_| rng.next_u32() as u8).collect();
            let mut buffer = [0i32; MAX_WIDTH];
            buffer[..n].copy_from_slice(&v);
            let q = QuantizedInput::new(&mut buffer, n);
            let got = portable::dot_i8(&q, &w);
            // Reference: the shift that leaves 15 bits, each value rounded on its own in
            // f64, summed in order.
            let max = v.iter().map(|v| f64::from(*v).abs()).fold(0.0, f64::max);
            let shift = (max.log2().floor() as i32 + 1 - 15).max(0);
            assert_eq!(q.shift, shift as u32, "n = {n}");
            let want: i32 = v
                .iter()
                .zip(&w)
                .map(|(&v, &b)| {
                    let q = (f64::from(v) / f64::from(shift).exp2())
                        .round()
                        .clamp(-32767.0, 32767.0);
                    q as i32 * i32::from(b as i8)
                })
                .sum();
            assert_eq!(got, want, "n = {n}");
        }
    }

    #[test]
    fn quantizing_zeros_gives_zero() {
        let mut buffer = [0i32; MAX_WIDTH];
        let q = QuantizedInput::new(&mut buffer, 3);
        assert_eq!(q.shift, 0);
        assert_eq!(portable::dot_i8(&q, &[5, 6, 7]), 0);
    }

    #[test]
    fn largest_sum_does_not_overflow() {
        let mut x = [i32::MAX; MAX_WIDTH];
        let w = [0x81u8; MAX_WIDTH]; // -127
        assert_eq!(
            portable::dot_i8(&QuantizedInput::new(&mut x, MAX_WIDTH), &w),
            -(MAX_WIDTH as i32) * 32767 * 127
        );
    }

    /// The f16 widening without branches gives `half`'s bits for every f16, NaNs and
    /// subnormals included.
    #[test]
    fn f16_by_scaling_equals_half_for_every_value() {
        for h in 0..=u16::MAX {
            let bits = h.to_le_bytes();
            assert_eq!(
                portable::f16_to_f32_by_scaling(bits).to_bits(),
                portable::f16_to_f32(bits).to_bits(),
                "{h:#06x}"
            );
        }
    }

    #[test]
    fn f16_dot_sums_left_to_right() {
        let x = [1.0e8f32, 1.0, -1.0e8, 1.0];
        let w: std::vec::Vec<u8> = [1.0f32; 4]
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        // ((0 + 1e8) + 1) - 1e8 + 1 = 1 in f32 (the first 1 is lost to rounding).
        assert_eq!(dot(0.0, &x, w.as_chunks::<2>().0, f16_to_f32), 1.0);
    }

    /// The four-rows-at-a-time layer gives each row the bits of its own left-to-right
    /// sum, for every number of rows (full groups and every tail).
    #[test]
    fn layer_equals_row_by_row_sums() {
        let mut rng = crate::Rng::new(11);
        for rows in 1..=9 {
            let n = 13;
            let x: std::vec::Vec<f32> = (0..n).map(|_| rng.uniform() * 2.0 - 1.0).collect();
            let w: std::vec::Vec<u8> = (0..rows * n)
                .flat_map(|_| half::f16::from_f32(rng.uniform() - 0.5).to_le_bytes())
                .collect();
            let b: std::vec::Vec<u8> = (0..rows)
                .flat_map(|_| half::f16::from_f32(rng.uniform()).to_le_bytes())
                .collect();
            let mut got = std::vec::Vec::new();
            dense::layer(&x, &w, &b, f16_to_f32, |o, v| got.push((o, v.to_bits())));
            let want: std::vec::Vec<(usize, u32)> = w
                .chunks_exact(2 * n)
                .zip(b.as_chunks::<2>().0)
                .map(|(row, bias)| dot(f16_to_f32(*bias), &x, row.as_chunks().0, f16_to_f32))
                .map(f32::to_bits)
                .enumerate()
                .collect();
            assert_eq!(got, want, "{rows} rows");
        }
    }
}
