//! Matrix products on host buffers, for the CPU's training step, through the
//! `matrixmultiply` crate (faster than `gemm`, dfdx's CPU matmul, on the step's shapes:
//! `cargo run --release -p trainer --example matmul_shapes`, BENCHMARKS.md), with a count
//! of their work and time for `train_bench`'s report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Floating-point operations of the products since the program started, over all
/// threads, and the nanoseconds spent in them (each thread's calls counted in full): the
/// rate of the matrix products while they run, which `train_bench` reports.
static FLOPS: AtomicU64 = AtomicU64::new(0);
static NANOS: AtomicU64 = AtomicU64::new(0);

/// The products' work so far: floating-point operations (2 per multiply-add) and seconds
/// spent in them, summed over threads.
pub fn matmul_totals() -> (u64, f64) {
    let nanos = NANOS.load(Ordering::Relaxed);
    (FLOPS.load(Ordering::Relaxed), nanos as f64 * 1e-9)
}

/// Adds a product's time, and its operations, to the totals.
fn count(started: Instant, flops: usize) {
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    NANOS.fetch_add(nanos, Ordering::Relaxed);
    FLOPS.fetch_add(flops as u64, Ordering::Relaxed);
}

/// The (row, column) strides of a (rows, cols) operand held row major, or, when
/// `transposed`, held as its (cols, rows) transpose.
pub fn strides(rows: usize, cols: usize, transposed: bool) -> (isize, isize) {
    if transposed {
        (1, rows as isize)
    } else {
        (cols as isize, 1)
    }
}

/// `c = a b` (`accumulate`: `c += a b`), `a` (m, k), `b` (k, n), `c` (m, n), all row
/// major; `a_t` / `b_t` say that the slice holds the operand transposed, (k, m) / (n, k).
pub fn matmul(
    (m, k, n): (usize, usize, usize),
    (a, a_t): (&[f32], bool),
    (b, b_t): (&[f32], bool),
    c: &mut [f32],
    accumulate: bool,
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    let (rsa, csa) = strides(m, k, a_t);
    let (rsb, csb) = strides(k, n, b_t);
    let beta = if accumulate { 1.0 } else { 0.0 };
    let started = Instant::now();
    // SAFETY: the strides address a (m, k), b (k, n) and c (m, n) within the slices,
    // whose lengths are checked above; c does not alias a or b (a `&mut` borrow).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    count(started, 2 * m * k * n);
}
