//! The copy check: whether a model's samples are nearer to training images than new
//! real digits are, which would mean it reproduces its training set rather than
//! drawing digits of its own. In pixels (intensities in [0, 1]): the distance from each
//! test image to its nearest training image sets the scale; a sample counts as a copy
//! when it is nearer to a training image than 99 % of test images are, so the share of
//! copies among real unseen digits is 1 % by construction.

use crate::eval::neighbours::Points;
use crate::eval::precision_recall::share;

/// The share of test images the copy threshold lets below it.
pub const TEST_SHARE: f64 = 0.01;

/// The training images, and the distance to them that only [`TEST_SHARE`] of test
/// images come under.
pub struct CopyCheck<'a> {
    train: Points<'a>,
    threshold: f32,
}

impl<'a> CopyCheck<'a> {
    /// The check against `train` (intensities, one image after another), its
    /// threshold set by `test` (the same layout).
    pub fn new(train: &'a [f32], test: &[f32], pixels: usize) -> Self {
        let train = Points::new(train, pixels);
        let mut nearest = Points::new(test, pixels).nearest_in(&train);
        nearest.sort_by(f32::total_cmp);
        let at = (TEST_SHARE * nearest.len() as f64) as usize;
        let threshold = nearest.get(at).copied().unwrap_or(0.0);
        CopyCheck { train, threshold }
    }

    /// The share of `samples` (intensities) nearer to a training image than the
    /// threshold.
    pub fn copy_share(&self, samples: &[f32], pixels: usize) -> f32 {
        let nearest = Points::new(samples, pixels).nearest_in(&self.train);
        let copies: Vec<bool> = nearest.iter().map(|&d| d < self.threshold).collect();
        share(&copies)
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    /// Training images copied are all copies; fresh images from the same distribution
    /// about 1 %; a training image with a little noise is still a copy.
    #[test]
    fn copies_are_caught_and_fresh_images_pass() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let pixels = 16;
        let mut images = |n: usize| -> Vec<f32> { (0..n * pixels).map(|_| rng.gen()).collect() };
        let (train, test, fresh) = (images(2000), images(1000), images(1000));
        let check = CopyCheck::new(&train, &test, pixels);
        assert_eq!(check.copy_share(&train[..500 * pixels], pixels), 1.0);
        let noisy: Vec<f32> = train[..500 * pixels].iter().map(|v| v + 0.01).collect();
        assert_eq!(check.copy_share(&noisy, pixels), 1.0);
        let share = check.copy_share(&fresh, pixels);
        assert!(share > 0.0 && share < 0.03, "{share}");
    }
}
