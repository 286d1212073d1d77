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

/// Columns per panel of [`PackedLayer`]: two vectors of eight lanes.
const PANEL: usize = 16;
/// Rows per tile of the packed product: with two vectors per row, twelve accumulators,
/// enough to keep both of the processor's multiply-add units busy.
const TILE_ROWS: usize = 6;
/// Inputs per block of `matrixmultiply`'s f32 products (its default `S_KC`): it sums each
/// block apart and adds it to the output, and the packed product does the same so that
/// their bits agree for layers of more inputs.
const DEPTH_BLOCK: usize = 256;

/// A dense layer's weights (inputs, outputs) and bias, packed once for products that
/// only run forward (evaluation): the weights in panels of 16 columns (`PANEL`), each
/// panel's rows one after another, so that a tile reads its panel from start to end. The
/// last panel is padded with zeros.
pub struct PackedLayer {
    inputs: usize,
    outputs: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
    /// Kept as given, for processors without AVX2 and FMA.
    plain: (Vec<f32>, Vec<f32>),
}

impl PackedLayer {
    /// Packs `weight` (inputs, outputs; row major) and `bias` (outputs).
    pub fn new(weight: &[f32], bias: &[f32], inputs: usize, outputs: usize) -> Self {
        let panels = outputs.div_ceil(PANEL);
        let mut packed = vec![0.0; panels * PANEL * inputs];
        for (p, panel) in packed.chunks_exact_mut((PANEL * inputs).max(1)).enumerate() {
            for (k, row) in panel.chunks_exact_mut(PANEL).enumerate() {
                let from = &weight[k * outputs..(k + 1) * outputs];
                let cols = p * PANEL..((p + 1) * PANEL).min(outputs);
                row[..cols.len()].copy_from_slice(&from[cols]);
            }
        }
        let mut padded = bias.to_vec();
        padded.resize(panels * PANEL, 0.0);
        PackedLayer {
            inputs,
            outputs,
            weight: packed,
            bias: padded,
            plain: (weight.to_vec(), bias.to_vec()),
        }
    }

    /// `y = x W + b` for the `rows` rows of `x`, then max(y, 0) where `relu`: the bits of
    /// [`matmul`] accumulating onto the bias (each output a chain of fused multiply-adds
    /// in the inputs' order from zero, then the bias added), which a processor without
    /// AVX2 and FMA runs. `tiles` is scratch the product reuses from call to call.
    pub fn forward(
        &self,
        x: &[f32],
        rows: usize,
        relu: bool,
        (y, tiles): (&mut Vec<f32>, &mut Vec<f32>),
    ) {
        assert!(x.len() >= rows * self.inputs);
        y.resize(rows * self.outputs, 0.0);
        #[cfg(target_arch = "x86_64")]
        if self.inputs > 0 && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            let started = Instant::now();
            // SAFETY: the processor has AVX2 and FMA (checked just above); x holds
            // `rows` rows of `inputs` (asserted) and y `rows` rows of `outputs`.
            unsafe { fma::forward(self, x, rows, relu, (y, tiles)) };
            count(started, 2 * rows * self.inputs * self.outputs);
            return;
        }
        let (weight, bias) = &self.plain;
        for row in y.chunks_exact_mut(self.outputs) {
            row.copy_from_slice(bias);
        }
        let shape = (rows, self.inputs, self.outputs);
        matmul(shape, (x, false), (weight, false), y, true);
        if relu {
            y.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
}

/// [`PackedLayer::forward`] in AVX2 and FMA instructions: x's rows copied into tiles of
/// [`TILE_ROWS`] (each input's six values side by side, the last tile padded with
/// zeros), then for each panel and tile the sums in registers from the first input to
/// the bias.
#[cfg(target_arch = "x86_64")]
mod fma {
    use std::arch::x86_64::*;

    use super::{PackedLayer, DEPTH_BLOCK, PANEL, TILE_ROWS};

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn forward(
        layer: &PackedLayer,
        x: &[f32],
        rows: usize,
        relu: bool,
        (y, tiles): (&mut [f32], &mut Vec<f32>),
    ) {
        let (k, n) = (layer.inputs, layer.outputs);
        let tile_len = TILE_ROWS * k;
        // The last tile's rows past `rows` keep what an earlier product left there: their
        // sums are computed and never stored.
        tiles.resize(rows.div_ceil(TILE_ROWS) * tile_len, 0.0);
        for (r, row) in x[..rows * k].chunks_exact(k.max(1)).enumerate() {
            let tile = &mut tiles[r / TILE_ROWS * tile_len..];
            for (i, &v) in row.iter().enumerate() {
                tile[i * TILE_ROWS + r % TILE_ROWS] = v;
            }
        }
        let mut edge = [0.0f32; TILE_ROWS * PANEL];
        for (p, panel) in layer.weight.chunks_exact(PANEL * k.max(1)).enumerate() {
            let bias = &layer.bias[p * PANEL..(p + 1) * PANEL];
            let cols = p * PANEL..((p + 1) * PANEL).min(n);
            for (t, tile) in tiles.chunks_exact(tile_len.max(1)).enumerate() {
                let first = t * TILE_ROWS;
                let count = TILE_ROWS.min(rows - first);
                // A whole tile of a whole panel goes straight to y; the others through
                // `edge`.
                let whole = cols.len() == PANEL && count == TILE_ROWS;
                let (out, stride) = if whole {
                    (y[first * n + cols.start..].as_mut_ptr(), n)
                } else {
                    (edge.as_mut_ptr(), PANEL)
                };
                tile_product(
                    k,
                    tile.as_ptr(),
                    panel.as_ptr(),
                    (bias, relu),
                    (out, stride),
                );
                if !whole {
                    for r in 0..count {
                        let at = (first + r) * n;
                        let from = &edge[r * PANEL..r * PANEL + cols.len()];
                        y[at + cols.start..at + cols.end].copy_from_slice(from);
                    }
                }
            }
        }
    }

    /// A tile ([`TILE_ROWS`] rows, `k` inputs, each input's values side by side) times
    /// a panel (`k` rows of [`PANEL`]), plus `bias` (and max(., 0) where `relu`), into
    /// [`TILE_ROWS`] rows of [`PANEL`] at `out` (stride `stride`).
    #[inline(always)]
    unsafe fn tile_product(
        k: usize,
        mut a: *const f32,
        mut b: *const f32,
        (bias, relu): (&[f32], bool),
        (out, stride): (*mut f32, usize),
    ) {
        let bias = [
            _mm256_loadu_ps(bias.as_ptr()),
            _mm256_loadu_ps(bias.as_ptr().add(8)),
        ];
        let mut outs = [bias; TILE_ROWS];
        // As matrixmultiply: each block of at most DEPTH_BLOCK inputs summed from zero,
        // then added to the output, which starts as the bias.
        for block in (0..k).step_by(DEPTH_BLOCK) {
            let mut sums = [[_mm256_setzero_ps(); 2]; TILE_ROWS];
            for _ in block..(block + DEPTH_BLOCK).min(k) {
                let low = _mm256_loadu_ps(b);
                let high = _mm256_loadu_ps(b.add(8));
                for (r, sum) in sums.iter_mut().enumerate() {
                    let v = _mm256_broadcast_ss(&*a.add(r));
                    sum[0] = _mm256_fmadd_ps(v, low, sum[0]);
                    sum[1] = _mm256_fmadd_ps(v, high, sum[1]);
                }
                a = a.add(TILE_ROWS);
                b = b.add(PANEL);
            }
            for (out, sum) in outs.iter_mut().zip(&sums) {
                out[0] = _mm256_add_ps(sum[0], out[0]);
                out[1] = _mm256_add_ps(sum[1], out[1]);
            }
        }
        for (r, halves) in outs.iter().enumerate() {
            for (half, &v) in halves.iter().enumerate() {
                let v = if relu {
                    _mm256_max_ps(v, _mm256_setzero_ps())
                } else {
                    v
                };
                _mm256_storeu_ps(out.add(r * stride + half * 8), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The packed product gives the bits of the plain one (the bias copied into y, then
    /// `matmul` accumulating onto it, then max(y, 0)) on every edge of its tiles and
    /// panels: rows 1 to 13 (tiles of 6 and what is left), outputs 1 to 96 (panels of 16
    /// and a partial one), inputs 0 to 600 (matrixmultiply sums blocks of 256 apart), with
    /// one scratch buffer throughout, as a decoder's layers share it.
    #[test]
    fn packed_layer_gives_the_plain_products_bits() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut tiles = Vec::new();
        let shapes = [
            (6, 600, 20),
            (6, 256, 96),
            (13, 32, 40),
            (7, 96, 17),
            (1, 1, 1),
            (12, 5, 16),
            (3, 0, 5),
        ];
        for (rows, inputs, outputs) in shapes {
            for relu in [false, true] {
                let mut draw =
                    |n: usize| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect() };
                let (x, w, b) = (draw(rows * inputs), draw(inputs * outputs), draw(outputs));
                let mut plain: Vec<f32> = b.iter().copied().cycle().take(rows * outputs).collect();
                matmul(
                    (rows, inputs, outputs),
                    (&x, false),
                    (&w, false),
                    &mut plain,
                    true,
                );
                if relu {
                    plain.iter_mut().for_each(|v| *v = v.max(0.0));
                }
                let mut packed = Vec::new();
                let layer = PackedLayer::new(&w, &b, inputs, outputs);
                layer.forward(&x, rows, relu, (&mut packed, &mut tiles));
                assert_eq!(packed.len(), plain.len());
                let same = |(p, q): (&f32, &f32)| p.to_bits() == q.to_bits();
                let differs = packed.iter().zip(&plain).position(|pair| !same(pair));
                assert_eq!(differs, None, "{rows}x{inputs}x{outputs}, relu {relu}");
            }
        }
    }
}
