//! ARMv7E-M with a single-precision FPU (thumbv7em-none-eabihf: Cortex-M4F, M7F): f16
//! widened by `VCVTB`/`VCVTT` and summed by `VMLA`, i8 by `SXTB16` and `SMLAD`.

use super::{dot, QuantizedInput};

/// The rows of one dense layer, one at a time through the assembly kernels (an M4F
/// has one FPU pipeline; interleaving rows gains nothing there). Biases and f32 weights
/// are widened by `widen`; f16 weights (`B` = 2) by [`dot_f16`]'s `VCVTB`/`VCVTT`, the
/// instructions of this target's [`f16_to_f32`], which is the `widen` every caller
/// passes for two-byte weights.
pub(crate) fn layer<const B: usize>(
    x: &[f32],
    weights: &[u8],
    biases: &[u8],
    widen: impl Fn([u8; B]) -> f32,
    mut out: impl FnMut(usize, f32),
) {
    let rows = weights
        .chunks_exact(B * x.len())
        .zip(biases.as_chunks::<B>().0);
    for (o, (row, bias)) in rows.enumerate() {
        out(o, dot_bytes::<B>(widen(*bias), x, row, &widen));
    }
}

/// `acc + x[0]*w[0] + x[1]*w[1] + ...` over `B`-byte weights, left to right: f16
/// through [`dot_f16`] (the assembly of [`f16_to_f32`], which `widen` is for two
/// bytes), otherwise through the portable [`dot`] with `widen`.
fn dot_bytes<const B: usize>(acc: f32, x: &[f32], w: &[u8], widen: impl Fn([u8; B]) -> f32) -> f32 {
    if B == 2 {
        dot_f16(acc, x, w)
    } else {
        dot(acc, x, w.as_chunks::<B>().0, widen)
    }
}

// Rust cannot pass values in FPU registers to inline assembly on this target (the `sreg`
// class needs a target feature that is unstable to name), so the kernels move values
// through core registers (`VMOV`) and declare the FPU registers they use as clobbered.
/// An f16 value (little-endian bytes) widened to f32 by `VCVTB`; exact.
pub(crate) fn f16_to_f32(bits: [u8; 2]) -> f32 {
    let wide: u32;
    // SAFETY: register-only; FPSCR.AHP is 0 (IEEE half) from reset.
    unsafe {
        core::arch::asm!(
            "vmov s0, {half}",
            "vcvtb.f32.f16 s0, s0",
            "vmov {wide}, s0",
            half = in(reg) u32::from(u16::from_le_bytes(bits)),
            wide = lateout(reg) wide,
            out("s0") _,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    f32::from_bits(wide)
}

/// [`dot_f16`]'s loop over `$blocks` blocks of eight weights, the accumulator's bits in
/// `$bits`: `$load`, the instructions that bring the block's four words of weights into
/// s2-s5 from `{w}` (advancing it), with the registers they use in `$operands`; then one
/// `VLDM` of eight inputs, eight `VCVTB`/`VCVTT` and eight `VMLA`.
macro_rules! f16_blocks {
    ($bits:ident, $x:ident, $w:ident, $blocks:ident, [$($load:literal),*], [$($operands:tt)*]) => {
        core::arch::asm!(
            "vmov s0, {acc}",
            "2:",
            $($load,)*
            "vldmia {x}!, {{s16-s23}}",
            "vcvtb.f32.f16 s8, s2",
            "vcvtt.f32.f16 s9, s2",
            "vcvtb.f32.f16 s10, s3",
            "vcvtt.f32.f16 s11, s3",
            "vmla.f32 s0, s16, s8",
            "vmla.f32 s0, s17, s9",
            "vmla.f32 s0, s18, s10",
            "vmla.f32 s0, s19, s11",
            "vcvtb.f32.f16 s8, s4",
            "vcvtt.f32.f16 s9, s4",
            "vcvtb.f32.f16 s10, s5",
            "vcvtt.f32.f16 s11, s5",
            "vmla.f32 s0, s20, s8",
            "vmla.f32 s0, s21, s9",
            "vmla.f32 s0, s22, s10",
            "vmla.f32 s0, s23, s11",
            "subs {n}, {n}, #1",
            "bne 2b",
            "vmov {acc}, s0",
            acc = inout(reg) $bits,
            x = inout(reg) $x.as_ptr() => _,
            w = inout(reg) $w.as_ptr() => _,
            n = inout(reg) $blocks => _,
            $($operands)*
            out("s0") _, out("s2") _, out("s3") _, out("s4") _, out("s5") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s16") _, out("s17") _, out("s18") _, out("s19") _,
            out("s20") _, out("s21") _, out("s22") _, out("s23") _,
            options(nostack, readonly),
        )
    };
}

/// `acc + x[0]*w[0] + x[1]*w[1] + ...` for little-endian f16 weights, left to right:
/// eight weights per loop, then the rest one at a time. Per loop, with the weights
/// word-aligned (the model file pads its header for this): one `VLDM` of four words
/// of weights, one `VLDM` of eight inputs, eight `VCVTB`/`VCVTT`, eight `VMLA` and
/// the loop's `SUBS`/`BNE`: 20 instructions for 8 multiply-accumulates. Unaligned
/// weights take four `LDR` and two `VMOV` instead of the first `VLDM` (`VLDM` needs
/// word alignment, `LDR` does not).
pub(crate) fn dot_f16(acc: f32, x: &[f32], w: &[u8]) -> f32 {
    let n = x.len().min(w.len() / 2);
    let blocks = n / 8;
    let mut acc = acc;
    if blocks > 0 {
        let mut bits = acc.to_bits();
        // SAFETY (both blocks): reads 8 * blocks <= n inputs from `x` and 16 * blocks
        // <= 2n bytes from `w`. `VLDM` reads `x`, an f32 slice and hence word-aligned,
        // and `w` only when it is word-aligned. s0-s23 are declared clobbered; the
        // accumulator lives in s0.
        if (w.as_ptr() as usize).is_multiple_of(4) {
            unsafe {
                f16_blocks!(bits, x, w, blocks, ["vldmia {w}!, {{s2-s5}}"], []);
            }
        } else {
            unsafe {
                f16_blocks!(
                    bits,
                    x,
                    w,
                    blocks,
                    [
                        "ldr {a}, [{w}], #4",
                        "ldr {b}, [{w}], #4",
                        "vmov s2, s3, {a}, {b}",
                        "ldr {a}, [{w}], #4",
                        "ldr {b}, [{w}], #4",
                        "vmov s4, s5, {a}, {b}"
                    ],
                    [a = out(reg) _, b = out(reg) _,]
                );
            }
        }
        acc = f32::from_bits(bits);
    }
    let done = blocks * 8;
    let (w, _) = w.get(2 * done..).unwrap_or(&[]).as_chunks::<2>();
    let x = x.get(done..n).unwrap_or(&[]);
    x.iter()
        .zip(w)
        .fold(acc, |acc, (x, w)| acc + x * f16_to_f32(*w))
}

/// `acc + x[0]*w[0] + x[1]*w[1] + ...` over `B`-byte weights, left to right, widened as
/// in [`layer`]: one tap of a transposed convolution.
#[cfg(feature = "transposed-conv")]
pub(crate) fn dot_float<const B: usize>(
    acc: f32,
    x: &[f32],
    w: &[u8],
    widen: impl Fn([u8; B]) -> f32,
) -> f32 {
    dot_bytes::<B>(acc, x, w, widen)
}

/// Most taps [`gather_float`] takes in one pass: every tap of a 3x3 kernel.
#[cfg(feature = "transposed-conv")]
const MAX_TAPS: usize = 9;

/// [`super::portable::gather_float`]: one output pixel of a transposed convolution. For
/// f16 weights, word-aligned rows and taps, and pixels of a multiple of eight channels
/// (the tutorial's decoder and every layer of 8, 16, 32 ... channels), each output
/// channel is one assembly loop over the taps: per tap two loads of its input's and
/// weights' addresses, then [`dot_f16`]'s blocks of eight (`VLDM`, `VLDM`, eight
/// `VCVTB`/`VCVTT`, eight `VMLA`), the sum kept in s0 from the bias to the last tap: the
/// same unfused multiply-adds in the same order, so the same bits, without a call and
/// its checks per tap. Everything else a tap at a time through [`dot_bytes`].
#[cfg(feature = "transposed-conv")]
pub(crate) fn gather_float<const B: usize>(
    taps: &[(&[f32], usize)],
    weights: &[u8],
    row_bytes: usize,
    biases: &[[u8; B]],
    out: &mut [u32],
    widen: impl Fn([u8; B]) -> f32,
) {
    let n = taps.first().map_or(0, |&(x, _)| x.len());
    let fits = |&(x, at): &(&[f32], usize)| {
        x.len() == n && at.is_multiple_of(4) && at.saturating_add(2 * n) <= row_bytes
    };
    let fast = B == 2
        && n > 0
        && n.is_multiple_of(8)
        && !taps.is_empty()
        && taps.len() <= MAX_TAPS
        && row_bytes.is_multiple_of(4)
        && (weights.as_ptr() as usize).is_multiple_of(4)
        && out.len().saturating_mul(row_bytes) <= weights.len()
        && taps.iter().all(fits);
    if !fast {
        let rows = weights.chunks_exact(row_bytes.max(1));
        for ((out, row), bias) in out.iter_mut().zip(rows).zip(biases) {
            let mut acc = widen(*bias);
            for &(x, at) in taps {
                let w = row.get(at..at + x.len() * B).unwrap_or(&[]);
                acc = dot_bytes::<B>(acc, x, w, &widen);
            }
            *out = acc.to_bits();
        }
        return;
    }
    // Per tap: its input's address and its weights' offset in a row.
    let mut list = [0usize; 2 * MAX_TAPS];
    for (pair, &(x, at)) in list.as_chunks_mut::<2>().0.iter_mut().zip(taps) {
        *pair = [x.as_ptr() as usize, at];
    }
    let blocks = n / 8;
    let count = taps.len();
    let mut row = weights.as_ptr();
    for (out, bias) in out.iter_mut().zip(biases) {
        let mut bits = widen(*bias).to_bits();
        // SAFETY: for each of the `count` (1 to 9) taps in `list`, reads `n` f32 from its
        // input (`x.len() == n`) and `2n` bytes of the row from `at` (`at + 2n <=
        // row_bytes`); the row is within `weights` (`out.len() * row_bytes <=
        // weights.len()`). `VLDM` needs word alignment: the inputs are f32 slices, the
        // rows and offsets are multiples of four from a word-aligned start. s0-s23 are
        // declared clobbered; the accumulator lives in s0.
        unsafe {
            core::arch::asm!(
                "vmov s0, {acc}",
                "3:",
                "ldr {x}, [{t}], #4",
                "ldr {w}, [{t}], #4",
                "add {w}, {w}, {row}",
                "mov {n}, {blocks}",
                "2:",
                "vldmia {w}!, {{s2-s5}}",
                "vldmia {x}!, {{s16-s23}}",
                "vcvtb.f32.f16 s8, s2",
                "vcvtt.f32.f16 s9, s2",
                "vcvtb.f32.f16 s10, s3",
                "vcvtt.f32.f16 s11, s3",
                "vmla.f32 s0, s16, s8",
                "vmla.f32 s0, s17, s9",
                "vmla.f32 s0, s18, s10",
                "vmla.f32 s0, s19, s11",
                "vcvtb.f32.f16 s8, s4",
                "vcvtt.f32.f16 s9, s4",
                "vcvtb.f32.f16 s10, s5",
                "vcvtt.f32.f16 s11, s5",
                "vmla.f32 s0, s20, s8",
                "vmla.f32 s0, s21, s9",
                "vmla.f32 s0, s22, s10",
                "vmla.f32 s0, s23, s11",
                "subs {n}, {n}, #1",
                "bne 2b",
                "subs {count}, {count}, #1",
                "bne 3b",
                "vmov {acc}, s0",
                acc = inout(reg) bits,
                t = inout(reg) list.as_ptr() => _,
                count = inout(reg) count => _,
                row = in(reg) row,
                blocks = in(reg) blocks,
                x = out(reg) _,
                w = out(reg) _,
                n = out(reg) _,
                out("s0") _, out("s2") _, out("s3") _, out("s4") _, out("s5") _,
                out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                out("s20") _, out("s21") _, out("s22") _, out("s23") _,
                options(nostack, readonly),
            );
        }
        *out = bits;
        row = row.wrapping_add(row_bytes);
    }
}

/// [`super::portable::strided_i8`] through [`dot_i8`].
#[cfg(feature = "transposed-conv")]
pub(crate) fn strided_i8(x: &QuantizedInput, weights: &[u8], stride: usize, sums: &mut [i32]) {
    super::portable::strided_rows(dot_i8, x, weights, stride, sums);
}

/// Quantizes `buffer[..len]` into pairs at its start, in place: pair `k` is written
/// to word `k` only after the inputs it is made of (at `2k` and beyond) are read.
pub(super) fn pack(buffer: &mut [i32], len: usize, q: impl Fn(i32) -> i32) {
    let at = |buffer: &[i32], i: usize| {
        if i < len {
            buffer.get(i).map_or(0, |&v| q(v) as i16 as u16 as u32)
        } else {
            0
        }
    };
    let groups = len / 4;
    for g in 0..groups {
        let [x0, x1, x2, x3] = core::array::from_fn(|k| at(buffer, 4 * g + k));
        if let Some([a, b]) = buffer.get_mut(2 * g..2 * g + 2) {
            *a = (x0 | (x2 << 16)) as i32;
            *b = (x1 | (x3 << 16)) as i32;
        }
    }
    for k in 0..(len - 4 * groups).div_ceil(2) {
        let i = 4 * groups + 2 * k;
        let pair = at(buffer, i) | (at(buffer, i + 1) << 16);
        if let Some(slot) = buffer.get_mut(2 * groups + k) {
            *slot = pair as i32;
        }
    }
}

/// The two i16 halves of a word, low first.
fn halves(word: i32) -> (i32, i32) {
    (
        i32::from(word as u16 as i16),
        i32::from((word as u32 >> 16) as u16 as i16),
    )
}

/// Sum over the inputs past the last whole group of four: the tail pairs in input
/// order.
fn dot_i8_tail(pairs: &[i32], w: &[u8]) -> i32 {
    let weight = |i: usize| i32::from(w.get(i).copied().unwrap_or(0) as i8);
    pairs.iter().enumerate().fold(0i32, |acc, (k, &pair)| {
        let (lo, hi) = halves(pair);
        acc.wrapping_add(lo * weight(2 * k))
            .wrapping_add(hi * weight(2 * k + 1))
    })
}

/// `sum_i q[i] * w[i]` over i8 weights `w` (one byte each, one per input), exact:
/// four weights per loop (one word load, two `SXTB16`, one `LDRD` of two input pairs,
/// two `SMLAD`), then the rest one at a time.
pub(crate) fn dot_i8(x: &QuantizedInput, w: &[u8]) -> i32 {
    let n = x.values.len().min(w.len());
    let groups = n / 4;
    let mut acc = 0i32;
    if groups > 0 {
        // SAFETY: reads 4 * groups <= n bytes of `w` (unaligned `LDR` is allowed on
        // ARMv7-M) and 2 * groups <= n / 2 words of `x.values` (an i32 slice, so word
        // aligned, as `LDRD` needs).
        unsafe {
            core::arch::asm!(
                "2:",
                "ldr {word}, [{w}], #4",
                "ldrd {xa}, {xb}, [{x}], #8",
                "sxtb16 {even}, {word}",
                "sxtb16 {word}, {word}, ror #8",
                "smlad {acc}, {even}, {xa}, {acc}",
                "smlad {acc}, {word}, {xb}, {acc}",
                "subs {n}, {n}, #1",
                "bne 2b",
                acc = inout(reg) acc,
                x = inout(reg) x.values.as_ptr() => _,
                w = inout(reg) w.as_ptr() => _,
                n = inout(reg) groups => _,
                word = out(reg) _,
                even = out(reg) _,
                xa = out(reg) _,
                xb = out(reg) _,
                options(nostack, readonly),
            );
        }
    }
    let tail_pairs = x.values.get(2 * groups..n.div_ceil(2)).unwrap_or(&[]);
    acc.wrapping_add(dot_i8_tail(tail_pairs, w.get(4 * groups..n).unwrap_or(&[])))
}

/// The exact sums of the rows of `weights`, through [`dot_i8`]; see
/// [`super::portable::layer_i8`].
pub(crate) fn layer_i8(x: &QuantizedInput, weights: &[u8], each: impl FnMut(usize, i32)) {
    super::portable::rows_i8(dot_i8, x, weights, each);
}
