//! RV32IM (riscv32imac-unknown-none-elf): the i8 dot product in assembly, a row at a
//! time.

use super::portable::dot_i8_values;
use super::QuantizedInput;

/// RV32: [`layer_i8`] a row at a time: each row's whole groups of four through
/// [`dot_i8_loop`] (assembly), then the rest one at a time. The input is split once per
/// layer, not once per row: on these cores the row's own work (its scale, bias and pixel)
/// is a large part of the cost.
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

/// `sum_i q[i] * w[i]` over the i8 weights `w` (one row of [`layer_i8`]), exact.
#[cfg(feature = "transposed-conv")]
pub(crate) fn dot_i8(x: &QuantizedInput, w: &[u8]) -> i32 {
    let n = x.values.len().min(w.len());
    let (head, tail) = x.values.split_at_checked(n & !3).unwrap_or((&[], x.values));
    let (row_head, row_tail) = w.split_at_checked(head.len()).unwrap_or((&[], w));
    dot_i8_loop(head, row_head, head.len() / 4).wrapping_add(dot_i8_values(tail, row_tail))
}

/// [`super::portable::strided_i8`] as [`layer_i8`] does it: the input split once, each
/// row's whole groups of four through [`dot_i8_loop`].
#[cfg(feature = "transposed-conv")]
pub(crate) fn strided_i8(x: &QuantizedInput, weights: &[u8], stride: usize, sums: &mut [i32]) {
    let n = x.values.len();
    let (head, tail) = x.values.split_at_checked(n & !3).unwrap_or((&[], x.values));
    let groups = head.len() / 4;
    let mut start = 0;
    for sum in sums.iter_mut() {
        *sum = match weights.get(start..start + n) {
            Some(row) => {
                let (row_head, row_tail) = row.split_at_checked(head.len()).unwrap_or((&[], row));
                let acc = dot_i8_loop(head, row_head, groups);
                acc.wrapping_add(dot_i8_values(tail, row_tail))
            }
            None => 0,
        };
        start += stride;
    }
}

/// One group of four multiply-accumulates of the RV32 loop, the weights at byte offset
/// `$w` and the inputs at `$x`: `LB`/`LW` pairs, four `MUL`, four `ADD` into `acc`.
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
