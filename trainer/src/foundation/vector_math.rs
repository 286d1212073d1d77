//! `exp` and `ln` for f32 written without branches or library calls, so that a loop
//! over a buffer that uses them compiles to vector instructions (the standard
//! library's `f32::exp` and `f32::ln` call libm once per element). Cephes' single
//! precision algorithms (Moshier): a power of two times a polynomial on a reduced range.
//! Both are within 2 ulp of the correctly rounded result on the ranges they are used on,
//! tested against f64.

/// 1.5 x 2^23: an f32 near it has no fraction bits left, so adding it to `x` (|x| < 2^22)
/// rounds `x` to the nearest integer, ties to even, and leaves that integer plus 2^22 in
/// the sum's low mantissa bits.
const SHIFTER: f32 = 12_582_912.0;

/// e^x, for x in [-87, 88] (clamped to it: e^-87 is about 1.6e-38, the smallest normal
/// f32 is 1.2e-38; e^88 is 1.65e38, below f32's largest).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + SHIFTER;
    let n = shifted - SHIFTER;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * (r * r) + r + 1.0;
    // 2^n from its exponent bits; n is in [-126, 127]. Read from the shifted sum's bits
    // rather than by `n as i32`, whose saturating conversion does not vectorize.
    let n_bits = shifted.to_bits().wrapping_sub(SHIFTER.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    e * scale
}

/// ln x, for x a positive normal f32.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    const HALF_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits();
    // x = m 2^e with m in [0.5, 1).
    let e = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    // m in [sqrt(1/2), sqrt(2)) after moving a factor 2 between m and 2^e; then m - 1.
    let low = m < HALF_SQRT_2;
    let e = (e - i32::from(low)) as f32;
    let m = if low { m + m } else { m } - 1.0;
    let z = m * m;
    let p = 7.037_683_6e-2;
    let p = p * m - 1.151_461e-1;
    let p = p * m + 1.167_699_9e-1;
    let p = p * m - 1.242_014_1e-1;
    let p = p * m + 1.424_932_3e-1;
    let p = p * m - 1.666_805_8e-1;
    let p = p * m + 2.000_071_4e-1;
    let p = p * m - 2.499_999_4e-1;
    let p = p * m + 3.333_333e-1;
    let y = m * z * p - 2.121_944_4e-4 * e - 0.5 * z;
    m + y + 0.693_359_4 * e
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between `ours` and the f64 result rounded to
    /// f32.
    fn ulps(ours: f32, exact: f64) -> u32 {
        let want = exact as f32;
        (ours.to_bits() as i64 - want.to_bits() as i64).unsigned_abs() as u32
    }

    /// Every `step`th f32 from `from` to `to` (of one sign), and the ends.
    fn sweep(from: f32, to: f32, step: usize) -> impl Iterator<Item = f32> {
        (from.to_bits()..=to.to_bits())
            .step_by(step)
            .map(f32::from_bits)
            .chain([from, to])
    }

    #[test]
    fn exp_is_within_2_ulp() {
        let mut worst = 0;
        // Every 13th f32 of magnitude 1e-3 to 1 (where the training step's arguments
        // mostly are), every 1,009th of the rest.
        let dense = sweep(1e-3, 1.0, 13).chain(sweep(-1e-3, -1.0, 13));
        let sparse = sweep(0.0, 87.0, 1009).chain(sweep(-0.0, -87.0, 1009));
        for x in dense.chain(sparse) {
            let u = ulps(exp(x), f64::from(x).exp());
            assert!(
                u <= 2,
                "exp({x:e}): {} against {}",
                exp(x),
                f64::from(x).exp()
            );
            worst = worst.max(u);
        }
        assert!(worst >= 1, "the sweep should meet some rounding error");
        // Clamped outside its range, never infinite or zero.
        assert_eq!(exp(1000.0), exp(88.0));
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert!(exp(-1000.0) > 0.0 && exp(1000.0).is_finite());
    }

    #[test]
    fn ln_is_within_2_ulp() {
        // Every f32 in [1, 2] (the training step's arguments), every 1,009th of the rest.
        for x in sweep(1.0, 2.0, 1).chain(sweep(f32::MIN_POSITIVE, f32::MAX, 1009)) {
            let u = ulps(ln(x), f64::from(x).ln());
            assert!(u <= 2, "ln({x:e}): {} against {}", ln(x), f64::from(x).ln());
        }
        assert_eq!(ln(1.0), 0.0);
    }
}
