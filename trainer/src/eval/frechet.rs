//! The Fréchet distance between two sets of feature vectors: the distance between the
//! Gaussians fitted to each (Dowson & Landau, 1982), which FID (Heusel et al., 2017)
//! computes on an image classifier's features. `vae eval` computes it on the judge's
//! ([`crate::eval::classifier`]) penultimate-layer features of generated digits and of the
//! MNIST test set:
//!
//! `FD = |m1 - m2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))`
//!
//! in f64, with sample means and (unbiased) covariances. `tr((S1 S2)^(1/2))` is taken in
//! its symmetric form `tr((A S2 A)^(1/2))` with `A = S1^(1/2)` (same eigenvalues, since
//! `S1 S2 = A (A S2 A) A^-1`): the sum of the square roots of the eigenvalues of a
//! symmetric positive semi-definite matrix, where rounding can leave a few tiny negative
//! eigenvalues, taken as 0.

use anyhow::{bail, Result};
use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Mean and covariance of a set of feature vectors.
#[derive(Debug, Clone)]
pub struct FeatureStats {
    mean: DVector<f64>,
    cov: DMatrix<f64>,
}

impl FeatureStats {
    /// The statistics of `features`: `dim` values a vector, vector after vector; at
    /// least two vectors.
    pub fn new(features: &[f32], dim: usize) -> Result<Self> {
        if dim == 0 || !features.len().is_multiple_of(dim) {
            bail!(
                "{} feature values do not make vectors of {dim}",
                features.len()
            );
        }
        let n = features.len() / dim;
        if n < 2 {
            bail!("a covariance needs at least 2 feature vectors, got {n}");
        }
        let data = DMatrix::from_row_iterator(n, dim, features.iter().map(|&v| f64::from(v)));
        let mean = data.row_mean().transpose();
        let centered = DMatrix::from_fn(n, dim, |i, j| data[(i, j)] - mean[j]);
        let cov = centered.transpose() * &centered / (n - 1) as f64;
        Ok(FeatureStats { mean, cov })
    }

    /// Statistics given directly (tests, or stored statistics).
    pub fn from_parts(mean: Vec<f64>, cov: Vec<f64>) -> Result<Self> {
        let dim = mean.len();
        if dim == 0 || cov.len() != dim * dim {
            bail!("a covariance of {} values for a mean of {dim}", cov.len());
        }
        Ok(FeatureStats {
            mean: DVector::from_vec(mean),
            cov: DMatrix::from_row_slice(dim, dim, &cov),
        })
    }
}

/// The Fréchet distance between the Gaussians fitted to `a` and `b`.
pub fn frechet_distance(a: &FeatureStats, b: &FeatureStats) -> Result<f64> {
    if a.mean.len() != b.mean.len() {
        bail!(
            "features of {} and of {} values cannot be compared",
            a.mean.len(),
            b.mean.len()
        );
    }
    let root_a = psd_sqrt(&a.cov);
    let middle = &root_a * &b.cov * &root_a;
    let cross: f64 = eigenvalues(&middle)
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .sum();
    let mean_term = (&a.mean - &b.mean).norm_squared();
    Ok(mean_term + a.cov.trace() + b.cov.trace() - 2.0 * cross)
}

/// Eigenvalues of the symmetric matrix `m` (its symmetric part, which is `m` up to
/// rounding).
fn eigenvalues(m: &DMatrix<f64>) -> DVector<f64> {
    let symmetric = (m + m.transpose()) * 0.5;
    SymmetricEigen::new(symmetric).eigenvalues
}

/// The symmetric positive semi-definite square root of the covariance `m`.
fn psd_sqrt(m: &DMatrix<f64>) -> DMatrix<f64> {
    let eigen = SymmetricEigen::new((m + m.transpose()) * 0.5);
    let roots = eigen.eigenvalues.map(|l| l.max(0.0).sqrt());
    &eigen.eigenvectors * DMatrix::from_diagonal(&roots) * eigen.eigenvectors.transpose()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    use super::*;

    /// `n` samples of N(mean, diag(var)), row after row.
    fn gaussian(n: usize, mean: &[f64], var: &[f64], seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n)
            .flat_map(|_| {
                mean.iter()
                    .zip(var)
                    .map(|(m, v)| {
                        let z: f64 = StandardNormal.sample(&mut rng);
                        (m + v.sqrt() * z) as f32
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn a_set_is_at_distance_zero_from_itself_and_distances_are_symmetric() {
        let a = FeatureStats::new(
            &gaussian(2000, &[0.0, 1.0, 2.0, 3.0], &[1.0, 2.0, 0.5, 4.0], 1),
            4,
        )
        .unwrap();
        let b = FeatureStats::new(
            &gaussian(2000, &[0.5, 1.0, 2.0, 2.0], &[1.0, 1.0, 1.0, 1.0], 2),
            4,
        )
        .unwrap();
        let trace = a.cov.trace();
        assert!(frechet_distance(&a, &a).unwrap().abs() < 1e-9 * trace);
        let (ab, ba) = (
            frechet_distance(&a, &b).unwrap(),
            frechet_distance(&b, &a).unwrap(),
        );
        assert!((ab - ba).abs() < 1e-9 * ab, "{ab} vs {ba}");
        assert!(ab > 0.5, "{ab}");
    }

    /// Exact: for S2 = c^2 S1 (any S1), (S1 S2)^(1/2) = c S1, so
    /// FD = |m1 - m2|^2 + (1 - c)^2 tr(S1).
    #[test]
    fn a_scaled_covariance_gives_the_closed_form() {
        let s1 = vec![4.0, 1.0, 0.5, 1.0, 3.0, -0.7, 0.5, -0.7, 2.0];
        let c: f64 = 1.7;
        let s2: Vec<f64> = s1.iter().map(|v| v * c * c).collect();
        let a = FeatureStats::from_parts(vec![0.0, 1.0, -1.0], s1).unwrap();
        let b = FeatureStats::from_parts(vec![1.0, 1.0, 1.0], s2).unwrap();
        let expected = 1.0 + 4.0 + (1.0 - c).powi(2) * 9.0;
        let got = frechet_distance(&a, &b).unwrap();
        assert!(
            (got - expected).abs() < 1e-9 * expected,
            "{got} vs {expected}"
        );
    }

    /// Sampled: diagonal Gaussians, FD = |m1 - m2|^2 + sum (sqrt(v1) - sqrt(v2))^2, here
    /// 1.25 + 0.1716 + 1 = 2.4216. 200,000 samples estimate each mean to about 0.003 and
    /// each variance to about 0.3 % (standard errors): 0.02 covers the error with room.
    #[test]
    fn sampled_gaussians_give_the_closed_form() {
        let (m1, v1) = ([0.0, 0.0, 1.0], [1.0, 2.0, 1.0]);
        let (m2, v2) = ([1.0, 0.5, 1.0], [1.0, 1.0, 4.0]);
        let a = FeatureStats::new(&gaussian(200_000, &m1, &v1, 3), 3).unwrap();
        let b = FeatureStats::new(&gaussian(200_000, &m2, &v2, 4), 3).unwrap();
        let expected: f64 = m1
            .iter()
            .zip(&m2)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            + v1.iter()
                .zip(&v2)
                .map(|(x, y): (&f64, &f64)| (x.sqrt() - y.sqrt()).powi(2))
                .sum::<f64>();
        let got = frechet_distance(&a, &b).unwrap();
        assert!((got - expected).abs() < 0.02, "{got} vs {expected}");
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(FeatureStats::new(&[1.0, 2.0, 3.0], 2).is_err());
        assert!(FeatureStats::new(&[1.0, 2.0], 2).is_err());
        assert!(FeatureStats::new(&[1.0, 2.0], 0).is_err());
        let a = FeatureStats::new(&[1.0, 2.0, 3.0, 5.0], 2).unwrap();
        let b = FeatureStats::new(&[1.0, 2.0, 3.0, 5.0, 1.0, 0.0], 3).unwrap();
        assert!(frechet_distance(&a, &b).is_err());
    }
}
