//! A small seeded generator and a standard-normal sampler that give the same numbers on
//! every platform: integer arithmetic for the generator, and for the normal transform only
//! IEEE single-precision operations (which Rust never fuses or reorders) and `libm`'s
//! pure-software `logf`/`cosf`/`sinf`/`sqrtf`.
//!
//! Not micromath: it is too coarse for sampling (its `ln` is off by up to 0.12 and its
//! `sqrt` by up to 5 %, which inflates the variance of the samples by 9 %).

/// PCG32 (XSH-RR variant, O'Neill 2014): 64-bit state, 32-bit output.
///
/// ```
/// use vae_core::Rng;
/// let mut a = Rng::new(7);
/// let mut b = Rng::new(7);
/// assert_eq!(a.next_u32(), b.next_u32());
/// assert_ne!(Rng::new(7).next_u32(), Rng::new(8).next_u32());
/// ```
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
    increment: u64,
}

const MULTIPLIER: u64 = 6_364_136_223_846_793_005;
/// Stream selector giving PCG's default increment, 1442695040888963407.
const DEFAULT_STREAM: u64 = 1_442_695_040_888_963_407 >> 1;

impl Rng {
    /// A generator whose whole stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self::with_stream(seed, DEFAULT_STREAM)
    }

    /// Seeding as in the PCG reference `pcg32_srandom_r(rng, seed, stream)`.
    fn with_stream(seed: u64, stream: u64) -> Self {
        let mut rng = Rng {
            state: 0,
            increment: (stream << 1) | 1,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(seed);
        rng.step();
        rng
    }

    fn step(&mut self) {
        self.state = self
            .state
            .wrapping_mul(MULTIPLIER)
            .wrapping_add(self.increment);
    }

    /// Next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.step();
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        let rot = (old >> 59) as u32;
        xorshifted.rotate_right(rot)
    }

    /// Uniform in `(0, 1]`, with 24 bits of resolution (never 0, so `ln` is finite).
    ///
    /// ```
    /// let u = vae_core::Rng::new(5).uniform();
    /// assert!(u > 0.0 && u <= 1.0);
    /// ```
    pub fn uniform(&mut self) -> f32 {
        const SCALE: f32 = 1.0 / (1u32 << 24) as f32;
        ((self.next_u32() >> 8) + 1) as f32 * SCALE
    }

    /// Uniform integer in `0..n` (Lemire's multiply-shift; the bias is below 2^-28 for
    /// the small `n` used here). Returns 0 for `n == 0`.
    ///
    /// ```
    /// let mut rng = vae_core::Rng::new(5);
    /// assert!((0..100).all(|_| rng.below(10) < 10));
    /// ```
    pub fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.next_u32()) * u64::from(n)) >> 32) as u32
    }

    /// Fills `out` with standard-normal samples (Box-Muller, both values of each pair
    /// used; an odd tail drops the second value).
    ///
    /// ```
    /// use vae_core::Rng;
    /// let mut z = [0.0f32; 1000];
    /// Rng::new(1).fill_standard_normal(&mut z);
    /// let mean = z.iter().sum::<f32>() / 1000.0;
    /// let var = z.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 1000.0;
    /// assert!(mean.abs() < 0.1 && (var - 1.0).abs() < 0.15);
    /// ```
    pub fn fill_standard_normal(&mut self, out: &mut [f32]) {
        for pair in out.chunks_mut(2) {
            let (a, b) = self.normal_pair();
            let mut values = [a, b].into_iter();
            for (slot, v) in pair.iter_mut().zip(&mut values) {
                *slot = v;
            }
        }
    }

    fn normal_pair(&mut self) -> (f32, f32) {
        const TAU: f32 = core::f32::consts::TAU;
        let u1 = self.uniform();
        let u2 = self.uniform();
        let radius = libm::sqrtf(-2.0 * libm::logf(u1));
        let angle = TAU * u2;
        (radius * libm::cosf(angle), radius * libm::sinf(angle))
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn pcg32_matches_reference_stream() {
        // Output of the PCG reference demo (pcg32-demo.c) for pcg32_srandom_r(42, 54).
        let mut rng = Rng::with_stream(42, 54);
        let expected = [
            0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e,
        ];
        for want in expected {
            assert_eq!(rng.next_u32(), want);
        }
    }

    #[test]
    fn uniform_is_in_half_open_unit_interval() {
        let mut rng = Rng::new(3);
        for _ in 0..10_000 {
            let u = rng.uniform();
            assert!(u > 0.0 && u <= 1.0);
        }
    }

    /// `below(n)` is uniform over `0..n`: 100,000 draws of `below(10)` fall about 10,000
    /// on each value (binomial standard deviation 95; the bound is five of them), and
    /// `below(1)` and `below(0)` are always 0.
    #[test]
    fn below_is_uniform_over_its_range() {
        let mut rng = Rng::new(21);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            let k = rng.below(10);
            assert!(k < 10, "{k}");
            counts[k as usize] += 1;
        }
        for (k, &count) in counts.iter().enumerate() {
            assert!(count.abs_diff(10_000) < 475, "{k}: {count}");
        }
        assert!((0..100).all(|_| rng.below(1) == 0 && rng.below(0) == 0));
    }

    /// `uniform`'s 24 bits: every value is a whole number of 2^-24 from 2^-24 to 1, and
    /// over 100,000 draws they average 1/2 (standard error 0.0009) and reach both ends
    /// of the interval within 0.001.
    #[test]
    fn uniform_has_24_bits_and_spans_the_interval() {
        let mut rng = Rng::new(4);
        let (mut sum, mut low, mut high) = (0.0f64, 1.0f32, 0.0f32);
        for _ in 0..100_000 {
            let u = rng.uniform();
            let steps = u * (1u32 << 24) as f32;
            assert!(
                steps == steps.floor() && (1.0..=16_777_216.0).contains(&steps),
                "{u}"
            );
            sum += f64::from(u);
            (low, high) = (low.min(u), high.max(u));
        }
        assert!(
            (sum / 100_000.0 - 0.5).abs() < 0.005,
            "mean {}",
            sum / 100_000.0
        );
        assert!(low < 0.001 && high > 0.999, "{low} {high}");
    }

    #[test]
    fn normal_moments() {
        let mut z = [0.0f32; 20_000];
        Rng::new(11).fill_standard_normal(&mut z);
        let n = z.len() as f32;
        let mean = z.iter().sum::<f32>() / n;
        let var = z.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let within_one = z.iter().filter(|v| v.abs() < 1.0).count() as f32 / n;
        // Standard errors for n = 20,000: mean 0.007, variance 0.01, share 0.003.
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.04, "variance {var}");
        assert!(
            (within_one - 0.6827).abs() < 0.015,
            "P(|z|<1) = {within_one}"
        );
    }
}
