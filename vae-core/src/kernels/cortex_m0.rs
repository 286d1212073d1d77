//! ARMv6-M (thumbv6m-none-eabi: Cortex-M0, M0+): the i8 layer in Thumb-1 assembly, rows
//! in groups per call.

use super::portable::dot_i8_values;
use super::QuantizedInput;

/// How many rows' sums the ARMv6-M row loop ([`rows_i8`]) computes per call.
const ROWS_PER_CALL: usize = 32;

/// The groups of four multiply-accumulates in one pass of [`rows_i8`]'s loop: as many as
/// its closing `BNE` reaches (7 * 32 bytes + 2, of at most 256 back).
const GROUPS_PER_PASS: usize = 7;

/// Where [`rows_i8`] enters its loop of [`GROUPS_PER_PASS`] groups, so that the first
/// pass over a row does `groups % GROUPS_PER_PASS` of them: a number of groups below
/// [`GROUPS_PER_PASS`], which only [`Skip::of`] makes, so that [`rows_i8`] needs no check
/// of its own before it jumps (a comparison and a branch per call, some 3,700 calls per
/// image of the tutorial's i8 decoder).
mod skip {
    use super::GROUPS_PER_PASS;

    #[derive(Clone, Copy)]
    pub(super) struct Skip(usize);

    impl Skip {
        /// The entry for a row of `groups` groups of four. By subtraction: ARMv6-M has
        /// no divide instruction, and this runs once per kernel tap of a transposed
        /// convolution.
        pub(super) fn of(groups: usize) -> Skip {
            let mut rest = groups;
            while rest >= GROUPS_PER_PASS {
                rest -= GROUPS_PER_PASS;
            }
            Skip(if rest == 0 { 0 } else { GROUPS_PER_PASS - rest })
        }

        /// The groups to skip, below [`GROUPS_PER_PASS`].
        pub(super) fn groups(self) -> usize {
            self.0
        }
    }
}
use skip::Skip;

/// ARMv6-M: [`layer_i8`] in assembly ([`rows_i8`], [`ROWS_PER_CALL`] rows per call) where
/// every row starts on a word, as `LDM` needs: weights on a word and a width that is a
/// multiple of four, as in every committed model. Other widths take the compiler's loop
/// ([`dot_i8_values`]) a row at a time.
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
    let skip = Skip::of(n / 4);
    let (mut rest, mut o) = (weights, 0);
    loop {
        let (block, after) = rest
            .split_at_checked(ROWS_PER_CALL * n)
            .unwrap_or((rest, &[]));
        let written = rows_i8(x.values, block, n, skip, &mut sums);
        for &sum in sums.get(..written).unwrap_or(&[]) {
            each(o, sum);
            o += 1;
        }
        if after.is_empty() {
            return;
        }
        rest = after;
    }
}

/// `sum_i q[i] * w[i]` over the i8 weights `w` (one row of [`layer_i8`]), exact: through
/// [`rows_i8`] with one row where `w` starts on a word and the width is a multiple of
/// four, the compiler's loop otherwise.
#[cfg(feature = "transposed-conv")]
pub(crate) fn dot_i8(x: &QuantizedInput, w: &[u8]) -> i32 {
    let n = x.values.len();
    let row = w.get(..n).unwrap_or(&[]);
    if n == 0 || !n.is_multiple_of(4) || !(row.as_ptr() as usize).is_multiple_of(4) {
        return dot_i8_values(x.values, row);
    }
    let mut sum = [0i32; 1];
    rows_i8(x.values, row, n, Skip::of(n / 4), &mut sum);
    let [sum] = sum;
    sum
}

/// [`super::portable::strided_i8`]: rows `stride` bytes apart, through [`rows_i8`]
/// [`ROWS_PER_CALL`] at a time, straight into `sums` (the assembly steps over the gap
/// between rows) where the rows and the gaps start on words, the compiler's loop
/// otherwise: one call per tap and 32 output channels, where a call per row cost more
/// than the row's own multiply-accumulates.
#[cfg(feature = "transposed-conv")]
pub(crate) fn strided_i8(x: &QuantizedInput, weights: &[u8], stride: usize, sums: &mut [i32]) {
    let n = x.values.len();
    let aligned = n > 0
        && n.is_multiple_of(4)
        && stride.is_multiple_of(4)
        && stride >= n
        && (weights.as_ptr() as usize).is_multiple_of(4);
    if !aligned {
        super::portable::strided_rows(dot_i8_values_of, x, weights, stride, sums);
        return;
    }
    let skip = Skip::of(n / 4);
    let mut start = 0;
    for chunk in sums.chunks_mut(ROWS_PER_CALL) {
        let count = chunk.len();
        let end = start + (count - 1) * stride + n;
        let block = weights.get(start..end.min(weights.len())).unwrap_or(&[]);
        let written = rows_i8(x.values, block, stride, skip, chunk);
        chunk.get_mut(written..).unwrap_or(&mut []).fill(0);
        start += count * stride;
    }
}

/// [`dot_i8_values`] over a quantized input.
#[cfg(feature = "transposed-conv")]
fn dot_i8_values_of(x: &QuantizedInput, w: &[u8]) -> i32 {
    dot_i8_values(x.values, w)
}

/// One group of four multiply-accumulates of the ARMv6-M loop ([`rows_i8`]): four weights
/// into r6, four inputs into r2-r5, each weight sign-extended into r7 (the last in r6
/// itself), `MULS` and `ADD` into r8.
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
/// of four, starting on a word, `stride` bytes apart), at most [`ROWS_PER_CALL`] and
/// `sums.len()` of them, into `sums`; returns how many it wrote. [`dot_i8_values`] in groups of four ([`m0_group`]): one `LDM` of four
/// weights into r6 and one of four inputs into r2-r5, each weight byte sign-extended into
/// r7 by `SXTB`, a shift pair or one `ASRS`, one `MULS` and one `ADD` into r8 per
/// multiply-accumulate, 16 instructions per group (4 per multiply-accumulate, the floor of
/// this scheme). Seven groups per pass and `CMP`/`BNE` against the row's end in r9: 114
/// instructions for 28 multiply-accumulates. Around them, in the same assembly, the loop
/// over rows: 7 instructions to reset the input pointer, the row's end and the sum and to
/// jump into the groups at `skip` ([`Skip`]; the address is computed once per call),
/// and 9 to store the sum and step over the gap to the next row (`stride - n` bytes: 0
/// in a dense layer, the rest of a kernel row in a transposed convolution), where a call
/// per row cost about 40. The loop needs
/// all eight low registers: the two the compiler keeps for itself (r6, and r7, the frame
/// pointer) are saved on the stack around it. `LDM` needs word alignment, which ARMv6-M
/// enforces for every word load.
#[inline(never)]
fn rows_i8(values: &[i32], block: &[u8], stride: usize, skip: Skip, sums: &mut [i32]) -> usize {
    let n = values.len() & !3;
    if n == 0
        || stride < n
        || stride >= 1 << 26
        || !stride.is_multiple_of(4)
        || !(block.as_ptr() as usize).is_multiple_of(4)
    {
        return 0;
    }
    // The whole rows in `block`, up to ROWS_PER_CALL and `sums.len()`, row `k` at
    // `k * stride`: counted down by multiplying, since a division is a library call on
    // ARMv6-M (at most 31 * 2^26 + n: no overflow).
    let mut count = sums.len().min(ROWS_PER_CALL);
    while count > 0 && (count - 1) * stride + n > block.len() {
        count -= 1;
    }
    if count == 0 {
        return 0;
    }
    // Below 2^26, so `gap << 3` keeps it.
    let gap = stride - n;
    // Within the groups by its type (below GROUPS_PER_PASS): never a jump past the loop.
    let skip = skip.groups();
    let out = sums.as_mut_ptr();
    // SAFETY: reads the words of rows block[k * stride..k * stride + n] for k < count
    // ((count - 1) * stride + n <= block.len(), word-aligned, checked above; n and stride
    // are multiples of four) and values[0..n], and writes the words sums[0..count]
    // (count <= sums.len()). The entry is one of the seven groups (skip <= 6). r6 and r7 are pushed
    // before and popped after, with the three words of arguments pushed between them;
    // everything else is declared clobbered.
    unsafe {
        core::arch::asm!(
            "push {{r6, r7}}",
            "lsrs r6, r4, #3", // r4: skip | gap << 3
            "lsls r4, r4, #29",
            "lsrs r4, r4, #24", // skip * 32, the bytes of `skip` groups
            // [sp]: the end of the sums; [sp, #4]: the row's bytes; [sp, #8]: the gap
            "push {{r3, r5, r6}}",
            "mov r10, r0",
            "mov r11, r2",
            "adr r7, 7f",
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
            "ldr r6, [sp, #8]",
            "adds r1, r1, r6", // over the gap to the next row
            "6:", // a row: the inputs from the first, its end, a zero sum, into the groups
            "mov r0, r10",
            "ldr r7, [sp, #4]",
            "add r7, r1",
            "mov r9, r7",
            "movs r7, #0",
            "mov r8, r7",
            "bx r12",
            "8:",
            "add sp, #12",
            "pop {{r6, r7}}",
            inout("r0") values.as_ptr() => _,
            inout("r1") block.as_ptr() => _,
            inout("r2") out => _,
            inout("r3") out.wrapping_add(count) => _,
            inout("r4") skip | gap << 3 => _,
            inout("r5") n => _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
        );
    }
    count
}
