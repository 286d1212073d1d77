//! The inner loops of the dense layers: dot products over weights stored in place.
//!
//! Each kernel has a portable version, used on the host and as the definition, and on
//! bare-metal Arm with a hard-float FPU (thumbv7em-none-eabihf: Cortex-M4F, M7F) a
//! hand-scheduled one that gives the same bits:
//! - f16: the FPU's `VCVTB`/`VCVTT` widen two halves per word in one instruction each
//!   (the `half` crate would convert in software), and `VMLA` accumulates. `VMLA.F32` is
//!   the unfused multiply-add: the product is rounded before the sum, exactly as the
//!   portable `acc += x * w` (Rust never fuses it). The sum runs left to right in both.
//! - i8: activations are quantized to i16 once per layer and `SMLAD` does two 16x16
//!   multiply-adds per instruction. Integer sums are exact (see [`QuantizedInput`]), so
//!   any order gives the same bits.
//!
//! Slices are checked by the callers; the kernels read at most `x.len()` weights.

use crate::MAX_WIDTH;

/// Arm assembly kernels, where the instructions exist.
macro_rules! arm_fpu {
    ($($item:item)*) => {$(
        #[cfg(all(target_arch = "arm", target_os = "none", target_abi = "eabihf"))]
        $item
    )*};
}

/// Integer kernels for bare-metal cores without an FPU or DSP instructions: RV32 and Arm
/// without hard float (written in Thumb-1, for ARMv6-M, which runs on every Cortex-M).
/// The compiler's code for the portable i8 kernel is far from one multiply and one add
/// per multiply-accumulate there.
macro_rules! no_dsp {
    ($($item:item)*) => {$(
        #[cfg(all(any(target_arch = "riscv32", all(target_arch = "arm", not(target_abi = "eabihf"))), target_os = "none"))]
        $item
    )*};
}

/// The portable i8 kernel, on every target without an assembly one.
macro_rules! portable_i8 {
    ($($item:item)*) => {$(
        #[cfg(not(any(
            all(target_arch = "arm", target_os = "none", target_abi = "eabihf"),
            all(any(target_arch = "riscv32", all(target_arch = "arm", not(target_abi = "eabihf"))), target_os = "none"),
        )))]
        $item
    )*};
}

/// Portable kernels, everywhere else.
macro_rules! portable {
    ($($item:item)*) => {$(
        #[cfg(not(all(target_arch = "arm", target_os = "none", target_abi = "eabihf")))]
        $item
    )*};
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

portable! {
    /// An f16 value (little-endian bytes) widened to f32; exact.
    pub(crate) fn f16_to_f32(bits: [u8; 2]) -> f32 {
        half::f16::from_le_bytes(bits).to_f32()
    }
}

portable! {
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
}

arm_fpu! {
    /// The rows of one dense layer, one at a time through the assembly kernels (an M4F
    /// has one FPU pipeline; interleaving rows gains nothing there).
    pub(crate) fn layer<const B: usize>(
        x: &[f32],
        weights: &[u8],
        biases: &[u8],
        widen: impl Fn([u8; B]) -> f32,
        mut out: impl FnMut(usize, f32),
    ) {
        let rows = weights.chunks_exact(B * x.len()).zip(biases.as_chunks::<B>().0);
        for (o, (row, bias)) in rows.enumerate() {
            let acc = widen(*bias);
            out(o, if B == 2 { dot_f16(acc, x, row) } else { dot(acc, x, row.as_chunks().0, &widen) });
        }
    }
}

// Rust cannot pass values in FPU registers to inline assembly on this target (the `sreg`
// class needs a target feature that is unstable to name), so the kernels move values
// through core registers (`VMOV`) and declare the FPU registers they use as clobbered.
arm_fpu! {
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
                    core::arch::asm!(
                        "vmov s0, {acc}",
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
                        "vmov {acc}, s0",
                        acc = inout(reg) bits,
                        x = inout(reg) x.as_ptr() => _,
                        w = inout(reg) w.as_ptr() => _,
                        n = inout(reg) blocks => _,
                        out("s0") _, out("s2") _, out("s3") _, out("s4") _, out("s5") _,
                        out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                        out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                        out("s20") _, out("s21") _, out("s22") _, out("s23") _,
                        options(nostack, readonly),
                    );
                }
            } else {
                unsafe {
                    core::arch::asm!(
                        "vmov s0, {acc}",
                        "2:",
                        "ldr {a}, [{w}], #4",
                        "ldr {b}, [{w}], #4",
                        "vmov s2, s3, {a}, {b}",
                        "ldr {a}, [{w}], #4",
                        "ldr {b}, [{w}], #4",
                        "vmov s4, s5, {a}, {b}",
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
                        acc = inout(reg) bits,
                        x = inout(reg) x.as_ptr() => _,
                        w = inout(reg) w.as_ptr() => _,
                        n = inout(reg) blocks => _,
                        a = out(reg) _,
                        b = out(reg) _,
                        out("s0") _, out("s2") _, out("s3") _, out("s4") _, out("s5") _,
                        out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                        out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                        out("s20") _, out("s21") _, out("s22") _, out("s23") _,
                        options(nostack, readonly),
                    );
                }
            }
            acc = f32::from_bits(bits);
        }
        let done = blocks * 8;
        let (w, _) = w.get(2 * done..).unwrap_or(&[]).as_chunks::<2>();
        let x = x.get(done..n).unwrap_or(&[]);
        x.iter().zip(w).fold(acc, |acc, (x, w)| acc + x * f16_to_f32(*w))
    }
}

/// A layer's input quantized to i16 for the i8 kernel: `x[i] ~= scale * q[i]`, with
/// `scale = max |x| / 32767`.
///
/// Values are stored in pairs, two i16 per word, in the order `SMLAD` wants them: each
/// group of four inputs `x0 x1 x2 x3` as the words `(x0, x2)` and `(x1, x3)`, which pair
/// with the bytes `SXTB16` extracts from a word of four i8 weights (`q0, q2`, and after a
/// rotate, `q1, q3`). Inputs after the last whole group follow in order.
///
/// No sum overflows: `|q| <= 32767`, weights `<= 127` in magnitude and at most
/// `MAX_WIDTH = 512` terms, so `|sum| <= 512 * 32767 * 127 = 2_130_444_288 < 2^31`.
pub(crate) struct QuantizedInput {
    pairs: [u32; MAX_WIDTH / 2],
    len: usize,
    /// `max |x| / 32767`, 0 when every input is 0.
    pub(crate) scale: f32,
}

const _: () = assert!(MAX_WIDTH as u64 * 32767 * 127 < (1u64 << 31));

impl QuantizedInput {
    /// Quantizes `x` (at most `MAX_WIDTH` values; more are ignored): `q = round(x / scale)`,
    /// computed as `round(x * (32767 / max))`. NaN becomes 0.
    pub(crate) fn new(x: &[f32]) -> Self {
        let x = x.get(..MAX_WIDTH).unwrap_or(x);
        let max = x
            .iter()
            .fold(0.0f32, |m, v| if v.abs() > m { v.abs() } else { m });
        let (scale, inverse) = if max > 0.0 && max.is_finite() {
            (max / 32767.0, 32767.0 / max)
        } else {
            (0.0, 0.0)
        };
        // `as` saturates, and maps NaN to 0.
        let q = |v: &f32| libm::roundf(v * inverse) as i16 as u16 as u32;
        let mut pairs = [0u32; MAX_WIDTH / 2];
        let (groups, tail) = x.as_chunks::<4>();
        let mut slots = pairs.iter_mut();
        for [x0, x1, x2, x3] in groups {
            if let (Some(a), Some(b)) = (slots.next(), slots.next()) {
                *a = q(x0) | (q(x2) << 16);
                *b = q(x1) | (q(x3) << 16);
            }
        }
        for chunk in tail.chunks(2) {
            if let Some(slot) = slots.next() {
                let hi = chunk.get(1).map_or(0, q);
                *slot = chunk.first().map_or(0, q) | (hi << 16);
            }
        }
        QuantizedInput {
            pairs,
            len: x.len(),
            scale,
        }
    }
}

/// The two i16 halves of a word, low first.
fn halves(word: u32) -> (i32, i32) {
    (
        i32::from(word as u16 as i16),
        i32::from((word >> 16) as u16 as i16),
    )
}

/// Sum over the inputs past the last whole group of four: the tail pairs in input order.
fn dot_i8_tail(pairs: &[u32], w: &[u8]) -> i32 {
    let weight = |i: usize| i32::from(w.get(i).copied().unwrap_or(0) as i8);
    pairs.iter().enumerate().fold(0i32, |acc, (k, &pair)| {
        let (lo, hi) = halves(pair);
        acc.wrapping_add(lo * weight(2 * k))
            .wrapping_add(hi * weight(2 * k + 1))
    })
}

/// Sum over the whole groups of four inputs (pairs `(x0, x2)`, `(x1, x3)` against the
/// weight bytes `q0 q1 q2 q3`): the definition every i8 kernel's loop reproduces.
#[cfg_attr(
    any(
        all(target_arch = "arm", target_os = "none", target_abi = "eabihf"),
        all(target_arch = "riscv32", target_os = "none")
    ),
    allow(dead_code)
)]
fn dot_i8_groups(pairs: &[u32], words: &[[u8; 4]]) -> i32 {
    let mut acc = 0i32;
    for (pair, word) in pairs.as_chunks::<2>().0.iter().zip(words) {
        let (x0, x2) = halves(pair[0]);
        let (x1, x3) = halves(pair[1]);
        let [q0, q1, q2, q3] = word.map(|b| i32::from(b as i8));
        acc = acc.wrapping_add(x0 * q0 + x2 * q2 + x1 * q1 + x3 * q3);
    }
    acc
}

portable_i8! {
    /// `sum_i q[i] * w[i]` over i8 weights `w` (one byte each, `x.len` of them), exact.
    pub(crate) fn dot_i8(x: &QuantizedInput, w: &[u8]) -> i32 {
        let groups = x.len / 4;
        let (words, _) = w.as_chunks::<4>();
        let pairs = x.pairs.get(..2 * groups).unwrap_or(&[]);
        let acc = dot_i8_groups(pairs, words.get(..groups).unwrap_or(words));
        let tail_pairs = x.pairs.get(2 * groups..x.len.div_ceil(2)).unwrap_or(&[]);
        acc.wrapping_add(dot_i8_tail(tail_pairs, w.get(4 * groups..x.len).unwrap_or(&[])))
    }
}

no_dsp! {
    /// `sum_i q[i] * w[i]` over i8 weights `w` (one byte each, `x.len` of them), exact:
    /// the whole groups of four through [`dot_i8_loop`] (assembly), then the rest one at
    /// a time.
    pub(crate) fn dot_i8(x: &QuantizedInput, w: &[u8]) -> i32 {
        let n = x.len.min(w.len());
        let groups = n / 4;
        let acc = dot_i8_loop(&x.pairs, w, groups);
        let tail_pairs = x.pairs.get(2 * groups..n.div_ceil(2)).unwrap_or(&[]);
        acc.wrapping_add(dot_i8_tail(tail_pairs, w.get(4 * groups..n).unwrap_or(&[])))
    }
}

/// RV32IM: [`dot_i8_groups`] with `LB`/`LH` loading each weight and input sign-extended
/// (the pairs are read as their i16 halves, in place), one `MUL` and one `ADD` each; two
/// groups per loop: 16 loads, 8 `MUL`, 8 `ADD`, two pointer `ADDI` and a `BNE`, 35
/// instructions for 8 multiply-accumulates. An odd number of groups enters the loop at
/// its second half, pointers moved back by one group.
#[cfg(all(target_arch = "riscv32", target_os = "none"))]
fn dot_i8_loop(pairs: &[u32; MAX_WIDTH / 2], w: &[u8], groups: usize) -> i32 {
    let groups = groups.min(w.len() / 4).min(MAX_WIDTH / 4);
    if groups == 0 {
        return 0;
    }
    let mut acc = 0i32;
    let w_start = w.as_ptr() as usize;
    let end = w_start + 4 * groups;
    // An odd count starts at label 3 (the second group of the loop) with both pointers
    // one group back, so that label 3 reads the first group.
    let odd = groups % 2;
    let w_ptr = w_start.wrapping_sub(4 * odd);
    let x_ptr = (pairs.as_ptr() as usize).wrapping_sub(8 * odd);
    // SAFETY: reads the bytes w[0..4 * groups] and the i16 halves of pairs[0..2 * groups]
    // (groups <= MAX_WIDTH / 4, so within the array; `LH` reads aligned halves of u32
    // words). The pointers moved back are only ever offset forward again before a load.
    unsafe {
        core::arch::asm!(
            "bnez {odd}, 3f",
            "2:",
            "lb {q0}, 0({w})",
            "lh {x0}, 0({x})",
            "lb {q1}, 1({w})",
            "lh {x1}, 4({x})",
            "lb {q2}, 2({w})",
            "lh {x2}, 2({x})",
            "lb {q3}, 3({w})",
            "lh {x3}, 6({x})",
            "mul {q0}, {q0}, {x0}",
            "mul {q1}, {q1}, {x1}",
            "mul {q2}, {q2}, {x2}",
            "mul {q3}, {q3}, {x3}",
            "add {acc}, {acc}, {q0}",
            "add {acc}, {acc}, {q1}",
            "add {acc}, {acc}, {q2}",
            "add {acc}, {acc}, {q3}",
            "3:",
            "lb {q0}, 4({w})",
            "lh {x0}, 8({x})",
            "lb {q1}, 5({w})",
            "lh {x1}, 12({x})",
            "lb {q2}, 6({w})",
            "lh {x2}, 10({x})",
            "lb {q3}, 7({w})",
            "lh {x3}, 14({x})",
            "mul {q0}, {q0}, {x0}",
            "mul {q1}, {q1}, {x1}",
            "mul {q2}, {q2}, {x2}",
            "mul {q3}, {q3}, {x3}",
            "add {acc}, {acc}, {q0}",
            "add {acc}, {acc}, {q1}",
            "add {acc}, {acc}, {q2}",
            "add {acc}, {acc}, {q3}",
            "addi {w}, {w}, 8",
            "addi {x}, {x}, 16",
            "bne {w}, {end}, 2b",
            acc = inout(reg) acc,
            w = inout(reg) w_ptr => _,
            x = inout(reg) x_ptr => _,
            end = in(reg) end,
            odd = in(reg) odd,
            q0 = out(reg) _, q1 = out(reg) _, q2 = out(reg) _, q3 = out(reg) _,
            x0 = out(reg) _, x1 = out(reg) _, x2 = out(reg) _, x3 = out(reg) _,
            options(nostack, readonly),
        );
    }
    acc
}

/// ARMv6-M (Thumb-1: no `SMLAD`, no `LDRSB` with an immediate offset, eight low
/// registers): [`dot_i8_groups`] with one `LDM` of four weights and two of input pairs,
/// the bytes and halves sign-extended by `SXTB`/`SXTH` or a shift pair, one `MULS` and
/// one `ADD` each into r8, and `CMP`/`BNE` against an end pointer in r9: 23 instructions
/// for 4 multiply-accumulates. `LDM` needs word alignment, which ARMv6-M enforces for
/// every word load: a row that does not start on a word takes [`dot_i8_groups`].
#[cfg(all(target_arch = "arm", target_os = "none", not(target_abi = "eabihf")))]
fn dot_i8_loop(pairs: &[u32; MAX_WIDTH / 2], w: &[u8], groups: usize) -> i32 {
    let groups = groups.min(w.len() / 4).min(MAX_WIDTH / 4);
    if !(w.as_ptr() as usize).is_multiple_of(4) {
        let (words, _) = w.as_chunks::<4>();
        let pairs = pairs.get(..2 * groups).unwrap_or(&[]);
        return dot_i8_groups(pairs, words.get(..groups).unwrap_or(words));
    }
    if groups == 0 {
        return 0;
    }
    let mut acc = 0i32;
    let end = w.as_ptr() as usize + 4 * groups;
    // SAFETY: reads the words w[0..4 * groups] (word-aligned, checked above) and
    // pairs[0..2 * groups] (groups <= MAX_WIDTH / 4). r8 and r9 are declared clobbered.
    unsafe {
        core::arch::asm!(
            "mov r8, {t}",
            "mov r9, {u}",
            "2:",
            "ldm {w}!, {{{word}}}",
            "ldm {x}!, {{{xa}}}",
            "sxtb {t}, {word}",
            "sxth {u}, {xa}",
            "muls {t}, {u}, {t}",
            "add r8, {t}",
            "asrs {xa}, {xa}, #16",
            "lsls {t}, {word}, #8",
            "asrs {t}, {t}, #24",
            "muls {t}, {xa}, {t}",
            "add r8, {t}",
            "ldm {x}!, {{{xa}}}",
            "lsls {t}, {word}, #16",
            "asrs {t}, {t}, #24",
            "sxth {u}, {xa}",
            "muls {t}, {u}, {t}",
            "add r8, {t}",
            "asrs {word}, {word}, #24",
            "asrs {xa}, {xa}, #16",
            "muls {word}, {xa}, {word}",
            "add r8, {word}",
            "cmp {w}, r9",
            "bne 2b",
            "mov {t}, r8",
            t = inout(reg) acc,
            u = inout(reg) end => _,
            w = inout(reg) w.as_ptr() => _,
            x = inout(reg) pairs.as_ptr() => _,
            word = out(reg) _,
            xa = out(reg) _,
            out("r8") _,
            out("r9") _,
            options(nostack, readonly),
        );
    }
    acc
}

arm_fpu! {
    /// `sum_i q[i] * w[i]` over i8 weights `w` (one byte each, `x.len` of them), exact:
    /// four weights per loop (one word load, two `SXTB16`, one `LDRD` of two input pairs,
    /// two `SMLAD`), then the rest one at a time.
    pub(crate) fn dot_i8(x: &QuantizedInput, w: &[u8]) -> i32 {
        let n = x.len.min(w.len());
        let groups = n / 4;
        let mut acc = 0i32;
        if groups > 0 {
            // SAFETY: reads 4 * groups <= n bytes of `w` (unaligned `LDR` is allowed on
            // ARMv7-M) and 2 * groups words of `x.pairs` (a u32 array: `LDRD` needs word
            // alignment), which holds MAX_WIDTH / 2 >= n / 2 words.
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
                    x = inout(reg) x.pairs.as_ptr() => _,
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
        let tail_pairs = x.pairs.get(2 * groups..n.div_ceil(2)).unwrap_or(&[]);
        acc.wrapping_add(dot_i8_tail(tail_pairs, w.get(4 * groups..n).unwrap_or(&[])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantized_dot_matches_the_exact_sum_for_every_tail_length() {
        let mut rng = crate::Rng::new(3);
        for n in 1..=23 {
            let x: std::vec::Vec<f32> = (0..n).map(|_| rng.uniform() * 4.0 - 2.0).collect();
            let w: std::vec::Vec<u8> = (0..n).map(|_| rng.next_u32() as u8).collect();
            let q = QuantizedInput::new(&x);
            let got = dot_i8(&q, &w);
            // Reference: quantize one value at a time, sum in order.
            let inverse = 32767.0 / x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let want: i32 = x
                .iter()
                .zip(&w)
                .map(|(v, &b)| libm::roundf(v * inverse) as i32 * i32::from(b as i8))
                .sum();
            assert_eq!(got, want, "n = {n}");
        }
    }

    #[test]
    fn quantizing_zeros_and_nan_gives_zero() {
        let q = QuantizedInput::new(&[0.0, f32::NAN, 0.0]);
        assert_eq!(q.scale, 0.0);
        assert_eq!(dot_i8(&q, &[5, 6, 7]), 0);
    }

    #[test]
    fn largest_sum_does_not_overflow() {
        let x = [1.0f32; MAX_WIDTH];
        let w = [0x81u8; MAX_WIDTH]; // -127
        assert_eq!(
            dot_i8(&QuantizedInput::new(&x), &w),
            -(MAX_WIDTH as i32) * 32767 * 127
        );
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
            layer(&x, &w, &b, f16_to_f32, |o, v| got.push((o, v.to_bits())));
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
