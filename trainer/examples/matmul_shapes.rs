//! The matrix products of one shard of the classic model's training step (64 images,
//! 784-400-20-400-784), timed on one core through `matrixmultiply` (what the trainer's
//! CPU step calls) and through `gemm` (what dfdx's CPU matmul calls): GFLOP/s of each,
//! best of 5 runs of 200 products. Then the products of the importance-weighted bound's
//! decoder (`models/iwae-k5`'s shapes, a block of 96 draws, ReLU on the hidden layers),
//! through [`PackedLayer`] (weights packed once) and through `matrixmultiply` (the bias
//! copied in, the product, the ReLU: the same bits).
//!
//! ```sh
//! cargo run --release -p trainer --example matmul_shapes
//! ```

use std::time::Instant;

use trainer::foundation::matmul::{matmul, strides, PackedLayer};

/// The evaluation decoder's layers (rows, inputs, outputs, hidden): 32-256-96-784.
const EVALUATION: [(usize, usize, usize, bool); 3] = [
    (96, 32, 256, true),
    (96, 256, 96, true),
    (96, 96, 784, false),
];

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
        let ours = gflops((m, k, n), &mut || {
            matmul((m, k, n), (&a, a_t), (&b, b_t), &mut c, false)
        });
        let theirs = gflops((m, k, n), &mut || {
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
    println!(
        "\n{:<56} {:>15} {:>10}",
        "evaluation decoder layer (m x k x n)", "packed", "matrixmultiply"
    );
    for (m, k, n, relu) in EVALUATION {
        let x: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
        let w: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1 - 0.2).collect();
        let bias = vec![0.1f32; n];
        let layer = PackedLayer::new(&w, &bias, k, n);
        let (mut y, mut tiles) = (Vec::new(), Vec::new());
        let packed = gflops((m, k, n), &mut || {
            layer.forward(&x, m, relu, (&mut y, &mut tiles))
        });
        let mut c = vec![0.0f32; m * n];
        let plain = gflops((m, k, n), &mut || {
            for row in c.chunks_exact_mut(n) {
                row.copy_from_slice(&bias);
            }
            matmul((m, k, n), (&x, false), (&w, false), &mut c, true);
            if relu {
                c.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        });
        let label = format!("{m} x {k} x {n}");
        println!("{label:<56} {packed:>10.1} GF/s {plain:>5.1} GF/s");
    }
}

/// GFLOP/s of the (m, k, n) product `f`: the best of 5 runs of 200 calls.
fn gflops((m, k, n): (usize, usize, usize), f: &mut dyn FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..200 {
                f();
            }
            2.0 * (m * k * n * 200) as f64 / started.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}
