//! Precision and recall of generated samples (Kynkäänniemi et al. 2019, "Improved
//! Precision and Recall Metric for Assessing Generative Models"), on the judge's
//! features: each set's manifold is the union of balls around its vectors reaching to
//! each one's `k`th nearest neighbour in the set. Precision is the share of samples
//! inside the real digits' manifold (are the samples realistic?), recall the share of
//! real digits inside the samples' (do the samples cover what real digits do?).

use crate::eval::neighbours::Points;

/// The neighbour that sets a ball's radius: the paper's choice.
pub const K: usize = 3;

/// Precision and recall of `samples` against `real`, each a set of feature vectors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionRecall {
    /// Share of samples within the real vectors' manifold.
    pub precision: f32,
    /// Share of real vectors within the samples' manifold.
    pub recall: f32,
}

/// The real digits' side, computed once for every set of samples measured against it.
pub struct RealManifold<'a> {
    points: Points<'a>,
    radii: Vec<f32>,
}

impl<'a> RealManifold<'a> {
    /// The manifold of `features`, `dim` values a vector.
    pub fn new(features: &'a [f32], dim: usize) -> Self {
        let points = Points::new(features, dim);
        let radii = points.kth_nearest_within(K);
        RealManifold { points, radii }
    }

    /// Precision and recall of the sample vectors `features`.
    pub fn measure(&self, features: &[f32], dim: usize) -> PrecisionRecall {
        let samples = Points::new(features, dim);
        let sample_radii = samples.kth_nearest_within(K);
        PrecisionRecall {
            precision: share(&samples.within_any(&self.points, &self.radii)),
            recall: share(&self.points.within_any(&samples, &sample_radii)),
        }
    }
}

/// The share of `true`s (0 for none).
pub fn share(flags: &[bool]) -> f32 {
    flags.iter().filter(|&&f| f).count() as f32 / flags.len().max(1) as f32
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    use super::*;

    /// `n` points around each of `centres` (2-d), spread 0.1.
    fn clusters(centres: &[(f32, f32)], n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut out = Vec::new();
        for &(x, y) in centres {
            for _ in 0..n {
                let (dx, dy): (f32, f32) = (
                    StandardNormal.sample(&mut rng),
                    StandardNormal.sample(&mut rng),
                );
                out.extend([x + 0.1 * dx, y + 0.1 * dy]);
            }
        }
        out
    }

    /// Samples from the same distribution score near 1 on both; samples that drop
    /// three of four modes keep their precision and lose recall; samples off the
    /// manifold lose precision; samples far away score 0 on both.
    #[test]
    fn precision_is_realism_and_recall_is_coverage() {
        let modes = [(0.0, 0.0), (5.0, 0.0), (0.0, 5.0), (5.0, 5.0)];
        let real = clusters(&modes, 300, 1);
        let manifold = RealManifold::new(&real, 2);
        let same = manifold.measure(&clusters(&modes, 300, 2), 2);
        assert!(same.precision > 0.9 && same.recall > 0.9, "{same:?}");
        let one_mode = manifold.measure(&clusters(&modes[..1], 1200, 3), 2);
        assert!(one_mode.precision > 0.9, "{one_mode:?}");
        assert!(
            one_mode.recall > 0.2 && one_mode.recall < 0.3,
            "{one_mode:?}"
        );
        let mut half_off = clusters(&modes, 150, 4);
        half_off.extend(clusters(&[(2.5, 2.5), (10.0, 2.5)], 300, 5));
        let half = manifold.measure(&half_off, 2);
        assert!(half.precision > 0.45 && half.precision < 0.55, "{half:?}");
        let far = manifold.measure(&clusters(&[(50.0, 50.0)], 300, 6), 2);
        assert_eq!((far.precision, far.recall), (0.0, 0.0));
    }
}
