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
//! On bare-metal cores without an FPU or DSP instructions the i8 kernel is assembly too,
//! since the compiler's code for the portable one is far from a multiply and an add per
//! multiply-accumulate there: RV32IM (`dot_i8_loop`, a row at a time) and ARMv6-M
//! (Thumb-1, which runs on every Cortex-M; `rows_i8`, the loop over rows included).
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
/// `MAX_WIDTH = 512` terms, so `|sum| <= 512 * 32767 * 127 = 2_130_444_288 < 2^31`.
pub(crate) struct QuantizedInput<'a> {
    /// The first `len` words of the buffer (pairs only in the first half of them).
    values: &'a [i32],
    /// `q[i] = round(v[i] / 2^shift)`.
    pub(crate) shift: u32,
}

const _: () = assert!(MAX_WIDTH as u64 * 32767 * 127 < (1u64 << 31));

impl<'a> QuantizedInput<'a> {
    /// Quantizes the Q16 values `buffer[..len]` in place (`len` at most `MAX_WIDTH`).
    pub(crate) fn new(buffer: &'a mut [i32; MAX_WIDTH], len: usize) -> Self {
        let len = len.min(MAX_WIDTH);
        let shift = crate::fixed::input_shift(buffer.get(..len).unwrap_or(&[]));
        pack(buffer, len, |v| crate::fixed::quantize(v, shift));
        QuantizedInput {
            values: buffer.get(..len).unwrap_or(&[]),
            shift,
        }
    }
}

arm_fpu! {
    /// Quantizes `buffer[..len]` into pairs at its start, in place: pair `k` is written
    /// to word `k` only after the inputs it is made of (at `2k` and beyond) are read.
    fn pack(buffer: &mut [i32; MAX_WIDTH], len: usize, q: impl Fn(i32) -> i32) {
        let at = |buffer: &[i32; MAX_WIDTH], i: usize| {
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
}

portable! {
    /// Quantizes `buffer[..len]` in place.
    fn pack(buffer: &mut [i32; MAX_WIDTH], len: usize, q: impl Fn(i32) -> i32) {
        for v in buffer.iter_mut().take(len) {
            *v = q(*v);
        }
    }

    /// `sum_i q[i] * w[i]` in order: the definition every i8 kernel without DSP
    /// instructions reproduces (integer sums are exact, so the order does not matter).
    #[cfg_attr(all(target_arch = "riscv32", target_os = "none"), allow(dead_code))]
    fn dot_i8_values(q: &[i32], w: &[u8]) -> i32 {
        q.iter()
            .zip(w)
            .fold(0i32, |acc, (&q, &w)| acc.wrapping_add(q * i32::from(w as i8)))
    }
}

portable_i8! {
    /// `sum_i q[i] * w[i]` over i8 weights `w` (one byte each, one per input), exact.
    fn dot_i8(x: &QuantizedInput, w: &[u8]) -> i32 {
        dot_i8_values(x.values, w)
    }
}

/// The exact sums `sum_i q[i] * w[i]` of the rows of `weights` (one i8 byte per weight,
/// rows as long as `x`), handed to `each` with the row's index, in order.
#[cfg(not(all(
    any(
        target_arch = "riscv32",
        all(target_arch = "arm", not(target_abi = "eabihf"))
    ),
    target_os = "none"
)))]
pub(crate) fn layer_i8(x: &QuantizedInput, weights: &[u8], mut each: impl FnMut(usize, i32)) {
    let n = x.values.len();
    if n == 0 {
        return;
    }
    for (o, row) in weights.chunks_exact(n).enumerate() {
        each(o, dot_i8(x, row));
    }
}

/// RV32: [`layer_i8`] a row at a time: each row's whole groups of four through
/// [`dot_i8_loop`] (assembly), then the rest one at a time. The input is split once per
/// layer, not once per row: on these cores the row's own work (its scale, bias and pixel)
/// is a large part of the cost.
#[cfg(all(target_arch = "riscv32", target_os = "none"))]
pub(crate) fn layer_i8(x: &QuantizedInput, weights: &[u8], mut each: impl FnMut(usize, i32)) {
    let n = x.values.len();
    if n == 0 {
        return;
    }
    let (head, tail) = x.values.split_at_checked(n & !3).unwrap_or((&[], x.values));
    for (o, row) in weights.chunks_exact(n).enumerate() {
        let (row_head, row_tail) = row.split_at_checked(head.len()).unwrap_or((&[], row));
        let acc = dot_i8_loop(head, row_head, head.len() / 4);
        each(o, acc.wrapping_add(dot_i8_values(tail, row_tail)));
    }
}

/// How many rows' sums the ARMv6-M row loop ([`rows_i8`]) computes per call.
#[cfg(all(target_arch = "arm", target_os = "none", not(target_abi = "eabihf")))]
const ROWS_PER_CALL: usize = 32;

/// Where [`rows_i8`] enters its loop of [`GROUPS_PER_PASS`] groups, so that the first
/// pass over a row does `groups % GROUPS_PER_PASS` of them.
#[cfg(all(target_arch = "arm", target_os = "none", not(target_abi = "eabihf")))]
fn group_skip(groups: usize) -> usize {
    (GROUPS_PER_PASS - groups % GROUPS_PER_PASS) % GROUPS_PER_PASS
}

/// The groups of four multiply-accumulates in one pass of [`rows_i8`]'s loop: as many as
/// its closing `BNE` reaches (7 * 32 bytes + 2, of at most 256 back).
#[cfg(all(target_arch = "arm", target_os = "none", not(target_abi = "eabihf")))]
const GROUPS_PER_PASS: usize = 7;

/// ARMv6-M: [`layer_i8`] in assembly ([`rows_i8`], [`ROWS_PER_CALL`] rows per call) where
/// every row starts on a word, as `LDM` needs: weights on a word and a width that is a
/// multiple of four, as in every committed model. Other widths take the compiler's loop
/// ([`dot_i8_values`]) a row at a time.
#[cfg(all(target_arch = "arm", target_os = "none", not(target_abi = "eabihf")))]
pub(crate) fn layer_i8(x: &QuantizedInput, weights: &[u8], mut each: impl FnMut(usize, i32)) {
    let n = x.values.len();
    if n == 0 {
        return;
    }
    if !n.is_multiple_of(4) || !(weights.as_ptr() as usize).is_multiple_of(4) {
        for (o, row) in weights.chunks_exact(n).enumerate() {
            each(o, dot_i8_values(x.values, row));
        }
        return;
    }
    let mut sums = [0i32; ROWS_PER_CALL];
    let skip = group_skip(n / 4);
    let (mut rest, mut o) = (weights, 0);
    loop {
        let (block, after) = rest
            .split_at_checked(ROWS_PER_CALL * n)
            .unwrap_or((rest, &[]));
        for &sum in rows_i8(x.values, block, skip, &mut sums) {
            each(o, sum);
            o += 1;
        }
        if after.is_empty() {
            return;
        }
        rest = after;
    }
}

/// One group of four multiply-accumulates of the RV32 loop, the weights at byte offset
/// `$w` and the inputs at `$x`: `LB`/`LW` pairs, four `MUL`, four `ADD` into `acc`.
#[cfg(all(target_arch = "riscv32", target_os = "none"))]
macro_rules! rv32_group {
    ($w:literal, $x:literal) => {
        concat!(
            "lb {q0}, ",
            $w,
            "({w})\n",
            "lw {x0}, ",
            $x,
            "({x})\n",
            "lb {q1}, ",
            $w,
            "+1({w})\n",
            "lw {x1}, ",
            $x,
            "+4({x})\n",
            "lb {q2}, ",
            $w,
            "+2({w})\n",
            "lw {x2}, ",
            $x,
            "+8({x})\n",
            "lb {q3}, ",
            $w,
            "+3({w})\n",
            "lw {x3}, ",
            $x,
            "+12({x})\n",
            "mul {q0}, {q0}, {x0}\n",
            "mul {q1}, {q1}, {x1}\n",
            "mul {q2}, {q2}, {x2}\n",
            "mul {q3}, {q3}, {x3}\n",
            "add {acc}, {acc}, {q0}\n",
            "add {acc}, {acc}, {q1}\n",
            "add {acc}, {acc}, {q2}\n",
            "add {acc}, {acc}, {q3}",
        )
    };
}

/// RV32IM: [`dot_i8_values`] with `LB` loading each weight sign-extended and `LW` each
/// input, one `MUL` and one `ADD` each; four groups of four per loop: 32 loads, 16 `MUL`,
/// 16 `ADD`, two pointer `ADDI` and a `BNE`, 67 instructions for 16 multiply-accumulates.
/// A count of groups that is not a multiple of four enters the loop at the group that
/// leaves a whole number of passes, pointers moved back by the groups it skips.
#[cfg(all(target_arch = "riscv32", target_os = "none"))]
fn dot_i8_loop(values: &[i32], w: &[u8], groups: usize) -> i32 {
    let groups = groups.min(w.len() / 4).min(values.len() / 4);
    if groups == 0 {
        return 0;
    }
    let mut acc = 0i32;
    let w_start = w.as_ptr() as usize;
    let end = w_start + 4 * groups;
    // Enter at group `skip` of the loop (labels 2 to 5), both pointers `skip` groups
    // back, so that the group entered reads the first one.
    let skip = (4 - groups % 4) % 4;
    let w_ptr = w_start.wrapping_sub(4 * skip);
    let x_ptr = (values.as_ptr() as usize).wrapping_sub(16 * skip);
    // SAFETY: reads the bytes w[0..4 * groups] and values[0..4 * groups] (groups is at
    // most a quarter of each length). The pointers moved back are only ever offset
    // forward again before a load.
    unsafe {
        core::arch::asm!(
            "beqz {skip}, 2f",
            "addi {skip}, {skip}, -1",
            "beqz {skip}, 3f",
            "addi {skip}, {skip}, -1",
            "beqz {skip}, 4f",
            "j 5f",
            "2:",
            rv32_group!(0, 0),
            "3:",
            rv32_group!(4, 16),
            "4:",
            rv32_group!(8, 32),
            "5:",
            rv32_group!(12, 48),
            "addi {w}, {w}, 16",
            "addi {x}, {x}, 64",
            "bne {w}, {end}, 2b",
            acc = inout(reg) acc,
            w = inout(reg) w_ptr => _,
            x = inout(reg) x_ptr => _,
            end = in(reg) end,
            skip = inout(reg) skip => _,
            q0 = out(reg) _, q1 = out(reg) _, q2 = out(reg) _, q3 = out(reg) _,
            x0 = out(reg) _, x1 = out(reg) _, x2 = out(reg) _, x3 = out(reg) _,
            options(nostack, readonly),
        );
    }
    acc
}

/// One group of four multiply-accumulates of the ARMv6-M loop ([`rows_i8`]): four weights
/// into r6, four inputs into r2-r5, each weight sign-extended into r7 (the last in r6
/// itself), `MULS` and `ADD` into r8.
#[cfg(all(target_arch = "arm", target_os = "none", not(target_abi = "eabihf")))]
macro_rules! m0_group {
    () => {
        concat!(
            "ldm r1!, {{r6}}\n",
            "ldm r0!, {{r2, r3, r4, r5}}\n",
            "sxtb r7, r6\n",
            "muls r7, r2, r7\n",
            "add r8, r7\n",
            "lsls r7, r6, #16\n",
            "asrs r7, r7, #24\n",
            "muls r7, r3, r7\n",
            "add r8, r7\n",
            "lsls r7, r6, #8\n",
            "asrs r7, r7, #24\n",
            "muls r7, r4, r7\n",
            "add r8, r7\n",
            "asrs r6, r6, #24\n",
            "muls r6, r5, r6\n",
            "add r8, r6",
        )
    };
}

/// ARMv6-M (Thumb-1: no `SMLAD`, no `LDRSB` with an immediate offset, eight low
/// registers): the sums of the whole rows of `block` (rows as long as `values`, a multiple
/// of four, starting on a word), at most [`ROWS_PER_CALL`] of them, into `sums`; returns
/// those written. [`dot_i8_values`] in groups of four ([`m0_group`]): one `LDM` of four
/// weights into r6 and one of four inputs into r2-r5, each weight byte sign-extended into
/// r7 by `SXTB`, a shift pair or one `ASRS`, one `MULS` and one `ADD` into r8 per
/// multiply-accumulate, 16 instructions per group (4 per multiply-accumulate, the floor of
/// this scheme). Seven groups per pass and `CMP`/`BNE` against the row's end in r9: 114
/// instructions for 28 multiply-accumulates. Around them, in the same assembly, the loop
/// over rows: 7 instructions to reset the input pointer, the row's end and the sum and to
/// jump into the groups at `skip` ([`group_skip`]; the address is computed once per call),
/// and 7 to store the sum and go on, where a call per row cost about 40. The loop needs
/// all eight low registers: the two the compiler keeps for itself (r6, and r7, the frame
/// pointer) are saved on the stack around it. `LDM` needs word alignment, which ARMv6-M
/// enforces for every word load.
#[cfg(all(target_arch = "arm", target_os = "none", not(target_abi = "eabihf")))]
fn rows_i8<'s>(
    values: &[i32],
    block: &[u8],
    skip: usize,
    sums: &'s mut [i32; ROWS_PER_CALL],
) -> &'s [i32] {
    let n = values.len() & !3;
    let count = block.len().checked_div(n).unwrap_or(0).min(ROWS_PER_CALL);
    if count == 0 || !(block.as_ptr() as usize).is_multiple_of(4) {
        return &[];
    }
    // Within the groups whatever the caller passes: a wrong `skip` gives wrong sums, never
    // a jump past the loop.
    let skip = skip.min(GROUPS_PER_PASS - 1);
    let out = sums.as_mut_ptr();
    // SAFETY: reads the words block[0..count * n] (count * n <= block.len(), word-aligned,
    // checked above; n is a multiple of four) and values[0..n], and writes the words
    // sums[0..count] (count <= ROWS_PER_CALL). The entry is one of the seven groups
    // (skip <= 6). r6 and r7 are pushed before and popped after, with the two words of
    // arguments pushed between them; everything else is declared clobbered.
    unsafe {
        core::arch::asm!(
            "push {{r6, r7}}",
            "push {{r3, r5}}", // [sp]: the end of the sums; [sp, #4]: the row's bytes
            "mov r10, r0",
            "mov r11, r2",
            "adr r7, 7f",
            "lsls r4, r4, #5",
            "adds r7, r7, r4",
            "adds r7, #1", // a Thumb address
            "mov r12, r7",
            "b 6f",
            ".p2align 2",
            "7:",
            m0_group!(),
            m0_group!(),
            m0_group!(),
            m0_group!(),
            m0_group!(),
            m0_group!(),
            m0_group!(),
            "cmp r1, r9",
            "bne 7b",
            "mov r7, r11",
            "mov r6, r8",
            "stm r7!, {{r6}}",
            "mov r11, r7",
            "ldr r6, [sp]",
            "cmp r7, r6",
            "beq 8f",
            "6:", // a row: the inputs from the first, its end, a zero sum, into the groups
            "mov r0, r10",
            "ldr r7, [sp, #4]",
            "add r7, r1",
            "mov r9, r7",
            "movs r7, #0",
            "mov r8, r7",
            "bx r12",
            "8:",
            "add sp, #8",
            "pop {{r6, r7}}",
            inout("r0") values.as_ptr() => _,
            inout("r1") block.as_ptr() => _,
            inout("r2") out => _,
            inout("r3") out.wrapping_add(count) => _,
            inout("r4") skip => _,
            inout("r5") n => _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
        );
    }
    sums.get(..count).unwrap_or(&[])
}

arm_fpu! {
    /// `sum_i q[i] * w[i]` over i8 weights `w` (one byte each, one per input), exact:
    /// four weights per loop (one word load, two `SXTB16`, one `LDRD` of two input pairs,
    /// two `SMLAD`), then the rest one at a time.
    fn dot_i8(x: &QuantizedInput, w: &[u8]) -> i32 {
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
            let got = dot_i8(&q, &w);
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
        assert_eq!(dot_i8(&q, &[5, 6, 7]), 0);
    }

    #[test]
    fn largest_sum_does_not_overflow() {
        let mut x = [i32::MAX; MAX_WIDTH];
        let w = [0x81u8; MAX_WIDTH]; // -127
        assert_eq!(
            dot_i8(&QuantizedInput::new(&mut x, MAX_WIDTH), &w),
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
