//! The matrix products of one shard of the classic model's training step (64 images,
//! 784-400-20-400-784), timed on one core through `matrixmultiply` (what the trainer's
//! CPU step calls) and through `gemm` (what dfdx's CPU matmul calls): GFLOP/s of each,
//! best of 5 runs of 200 products.
//!
//! ```sh
//! cargo run --release -p trainer --example matmul_shapes
//! ```

use std::time::Instant;

use trainer::foundation::matmul::{matmul, strides};

/// (m, k, n, a transposed, b transposed, what): `c (m, n) = a (m, k) b (k, n)`, an
/// operand marked transposed held as its transpose (row major), as the step holds it.
const SHAPES: [(usize, usize, usize, bool, bool, &str); 5] = [
    (64, 784, 400, false, false, "encoder forward, x W"),
    (64, 400, 784, false, false, "decoder output forward, h W"),
    (784, 64, 400, true, false, "encoder weight gradient, x^T g"),
    (
        400,
        64,
        784,
        true,
        false,
        "decoder output weight gradient, h^T g",
    ),
    (
        64,
        784,
        400,
        false,
        true,
        "decoder output input gradient, g W^T",
    ),
];

fn main() {
    println!(
        "{:<56} {:>15} {:>10}",
        "product (m x k x n)", "matrixmultiply", "gemm"
    );
    for (m, k, n, a_t, b_t, what) in SHAPES {
        let (rsa, csa) = strides(m, k, a_t);
        let (rsb, csb) = strides(k, n, b_t);
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0.0f32; m * n];
        let time = |f: &mut dyn FnMut()| {
            (0..5)
                .map(|_| {
                    let started = Instant::now();
                    for _ in 0..200 {
                        f();
                    }
                    2.0 * (m * k * n * 200) as f64 / started.elapsed().as_secs_f64() / 1e9
                })
                .fold(0.0, f64::max)
        };
        let ours = time(&mut || matmul((m, k, n), (&a, a_t), (&b, b_t), &mut c, false));
        let theirs = time(&mut || {
            // SAFETY: the strides address a (m, k), b (k, n) and c (m, n) within their
            // vectors.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    csa,
                    rsa,
                    b.as_ptr(),
                    csb,
                    rsb,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                )
            }
        });
        let label = format!("{what} ({m} x {k} x {n})");
        println!("{label:<56} {ours:>10.1} GF/s {theirs:>5.1} GF/s");
    }
}
