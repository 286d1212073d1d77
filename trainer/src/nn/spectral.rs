//! Spectral normalization of the critic (Miyato et al. 2018), as a projection: after
//! every step, and when it is made, each of the critic's weight matrices is divided by
//! its largest singular value, so that each layer, and with ReLU the whole critic,
//! changes its output at most as much as its input changes, and each layer keeps a gain
//! of 1. A critic held so cannot grow its logits without bound to tell the decoder's
//! images apart, and its gradient, which is what the decoder learns from, stays smooth.
//! (Miyato et al. divide in the forward pass and differentiate through the division;
//! here the weights themselves are divided, and the gradient is the plain one.)
//!
//! The largest singular value is estimated by power iteration from the same start each
//! time, so that it depends on the weights alone: a resumed run gives the same bits.

use crate::foundation::matmul::matmul;

/// Power-iteration steps per estimate.
const ITERATIONS: usize = 8;

/// The largest singular value of `weight`, (inputs, outputs) row major, by power
/// iteration from the vector of equal entries (an estimate from below).
pub fn spectral_norm(weight: &[f32], (inputs, outputs): (usize, usize)) -> f32 {
    let mut u = vec![1.0 / (outputs.max(1) as f32).sqrt(); outputs];
    let mut v = vec![0.0f32; inputs];
    let mut sigma = 0.0;
    for _ in 0..ITERATIONS {
        // v = W u / |W u|, then u = W^T v, whose length is the estimate.
        matmul(
            (inputs, outputs, 1),
            (weight, false),
            (&u, false),
            &mut v,
            false,
        );
        normalize(&mut v);
        matmul(
            (outputs, inputs, 1),
            (weight, true),
            (&v, false),
            &mut u,
            false,
        );
        sigma = normalize(&mut u);
    }
    sigma
}

/// Divides `weight`, (inputs, outputs) row major, by its largest singular value (leaves
/// a zero matrix as it is).
pub fn normalize_spectrum(weight: &mut [f32], shape: (usize, usize)) {
    let sigma = spectral_norm(weight, shape);
    if sigma > 0.0 {
        weight.iter_mut().for_each(|w| *w /= sigma);
    }
}

/// Scales `x` to length 1 (leaves a zero vector as it is); returns its length.
fn normalize(x: &mut [f32]) -> f32 {
    let length = x
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt() as f32;
    if length > 0.0 {
        x.iter_mut().for_each(|v| *v /= length);
    }
    length
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    /// The outer product a b^T has one singular value, |a| |b|, which the estimate finds
    /// to 1e-5 relative (power iteration on a rank-one matrix converges in one step;
    /// the rest is f32 rounding). A random 300 x 40 matrix is the slow case, its
    /// singular values close together: the estimate is within 5 % below the largest
    /// (3 % here), the square root of the largest eigenvalue of W^T W found by
    /// iterating far longer; a trained layer's largest stands further apart.
    /// `normalize_spectrum` leaves the estimate at 1, from above and from below.
    #[test]
    fn the_estimate_is_the_largest_singular_value() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let a: Vec<f32> = (0..30).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..7).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let outer: Vec<f32> = a
            .iter()
            .flat_map(|&x| b.iter().map(move |&y| x * y))
            .collect();
        let length = |x: &[f32]| x.iter().map(|v| v * v).sum::<f32>().sqrt();
        let want = length(&a) * length(&b);
        let got = spectral_norm(&outer, (30, 7));
        assert!((got - want).abs() <= 1e-5 * want, "{got} vs {want}");

        let (inputs, outputs) = (300, 40);
        let w: Vec<f32> = (0..inputs * outputs)
            .map(|_| rng.gen_range(-0.1..0.1))
            .collect();
        // W^T W by hand, then its largest eigenvalue by 500 power steps in f64.
        let mut gram = vec![0.0f64; outputs * outputs];
        for row in w.chunks_exact(outputs) {
            for (i, &x) in row.iter().enumerate() {
                for (j, &y) in row.iter().enumerate() {
                    gram[i * outputs + j] += f64::from(x) * f64::from(y);
                }
            }
        }
        let mut x = vec![1.0f64; outputs];
        let mut eigenvalue = 0.0;
        for _ in 0..500 {
            let y: Vec<f64> = gram
                .chunks_exact(outputs)
                .map(|r| r.iter().zip(&x).map(|(a, b)| a * b).sum())
                .collect();
            eigenvalue = y.iter().map(|v| v * v).sum::<f64>().sqrt();
            x = y.iter().map(|v| v / eigenvalue).collect();
        }
        let want = eigenvalue.sqrt() as f32;
        let got = spectral_norm(&w, (inputs, outputs));
        assert!(
            got <= want * 1.0001 && got >= want * 0.95,
            "{got} vs {want}"
        );
        for scale in [1.0, 1e-3] {
            let mut w: Vec<f32> = w.iter().map(|v| v * scale).collect();
            normalize_spectrum(&mut w, (inputs, outputs));
            let after = spectral_norm(&w, (inputs, outputs));
            assert!((after - 1.0).abs() < 1e-4, "{after}");
        }
    }
}
