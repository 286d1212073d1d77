//! The integer arithmetic of the i8 decoder: fixed-point values with 16 fraction bits
//! ("Q16": `v / 65536`) between its layers, how f32 numbers and the i8
//! kernels' exact dot products become them, and the grey level of a Q16 logit.
//!
//! From the first layer's input to the last pixel, the i8 decoder runs on integers: on a
//! chip without an FPU every f32 multiply or add is a software call of about a hundred
//! instructions, more than the multiply-accumulates of a whole input row. Only the
//! decoder input (`z`, drawn in f32, and the one-hot label) and each row's f32 scale and
//! bias are read as floats, by their bits ([`scaled`]). Everything here is exact integer
//! arithmetic with one rounding rule, so every target, the host included, gets the same
//! bits without any help from IEEE 754.

/// Largest magnitude a Q16 value takes; results beyond it saturate (symmetric, so that
/// negating never overflows).
const LIMIT: u32 = i32::MAX as u32;

/// `round(v / 2^s)` for a magnitude `v`, ties up (away from zero once the sign is put
/// back): every rounding of the i8 decoder. No overflow: the rounding bit is added after
/// the shift.
fn round_shift(v: u32, s: u32) -> u32 {
    match s {
        0 => v,
        1..=31 => (v >> s) + ((v >> (s - 1)) & 1),
        32 => v >> 31,
        _ => 0,
    }
}

/// [`round_shift`] for a wider magnitude, and a left shift (saturated at [`LIMIT`]) for a
/// negative `s`; the result saturated at [`LIMIT`].
fn round_shift_wide(v: u64, s: i32) -> u32 {
    let v = if s > 0 {
        let s = s.unsigned_abs();
        match s {
            1..=63 => (v >> s) + ((v >> (s - 1)) & 1),
            64 => v >> 63,
            _ => 0,
        }
    } else {
        match v.checked_shl(s.unsigned_abs()) {
            Some(shifted) if shifted >> s.unsigned_abs() == v => shifted,
            _ if v == 0 => 0,
            _ => u64::MAX,
        }
    };
    v.min(u64::from(LIMIT)) as u32
}

/// `magnitude` with the sign of `negative`.
fn signed(magnitude: u32, negative: bool) -> i32 {
    // At most LIMIT = i32::MAX, so both casts are exact.
    let v = magnitude.min(LIMIT) as i32;
    if negative {
        -v
    } else {
        v
    }
}

/// An f32 read from its bits: sign, the 24-bit mantissa (implicit bit included) and the
/// biased exponent `b`, so that `|v| = mantissa * 2^(b - 150)` (subnormals: `b = 1` with
/// no implicit bit). Infinities are `b = 255` with the mantissa `2^23` (beyond every
/// range here, so they saturate); NaN reads as 0.
fn parts(v: f32) -> (bool, u32, u32) {
    let bits = v.to_bits();
    let biased = (bits >> 23) & 0xff;
    let fraction = bits & 0x7f_ffff;
    let negative = bits >> 31 == 1;
    match biased {
        0 => (negative, fraction, 1),
        0xff if fraction != 0 => (false, 0, 0),
        _ => (negative, fraction | 1 << 23, biased),
    }
}

/// `v` in Q16: `round(v * 65536)`, ties away from zero, saturated; NaN gives 0.
///
/// Written for the chips without an FPU, where it runs once per output: the usual
/// magnitudes (2^-24 to 1, a right shift of 1 to 31) take a few integer instructions
/// inline, the rest [`from_f32_general`].
#[inline]
pub(crate) fn from_f32(v: f32) -> i32 {
    let bits = v.to_bits();
    let biased = (bits >> 23) & 0xff;
    if (103..=133).contains(&biased) {
        // |v| * 2^16 = mantissa * 2^(biased - 134), a right shift of 1 to 31.
        let mantissa = (bits & 0x7f_ffff) | 1 << 23;
        return small_signed(round_shift_fast(mantissa, 134 - biased), bits);
    }
    from_f32_general(v)
}

/// [`from_f32`] for every f32.
#[cold]
#[inline(never)]
fn from_f32_general(v: f32) -> i32 {
    let (negative, mantissa, biased) = parts(v);
    // |v| * 2^16 = mantissa * 2^(biased - 134).
    let magnitude = match biased {
        0..=133 => round_shift(mantissa, 134 - biased),
        134..=141 => mantissa << (biased - 134), // below 2^24 * 2^7 = 2^31
        _ => LIMIT,
    };
    signed(magnitude, negative)
}

/// [`round_shift`] for a shift known to be 1 to 31.
#[inline]
fn round_shift_fast(v: u32, s: u32) -> u32 {
    (v >> s) + ((v >> (s.wrapping_sub(1) & 31)) & 1)
}

/// A magnitude below 2^31 with the sign of bit 31 of `sign`.
#[inline]
fn small_signed(magnitude: u32, sign: u32) -> i32 {
    let minus = 0u32.wrapping_sub(sign >> 31); // all ones for a negative sign
    ((magnitude ^ minus).wrapping_sub(minus)) as i32
}

/// `round(value * factor * 2^shift)` (ties away from zero) in Q16's range, saturated:
/// the one product of the i8 decoder with a float, a row's scale, read by its bits and
/// rounded to a 15-bit mantissa `m` (relative step 2^-15, far below the i8 weights' own
/// 2^-8), so that `|value| * m` splits into two 32-bit products: `|value| < 2^31`,
/// `m < 2^15`. NaN counts as 0.
///
/// Inline for the usual case, a normal factor and a right shift `s` of 16 to 47 (every
/// row of the committed models: scales near 2^-8, input shifts below 8); [`scaled_general`]
/// for the rest. `m` may be 2^15 itself there (a mantissa that rounds up): the same
/// product as 2^14 one shift further, and within the two products' bounds.
#[inline]
pub(crate) fn scaled(value: i32, factor: f32, shift: i32) -> i32 {
    let bits = factor.to_bits();
    let biased = (bits >> 23) & 0xff;
    let s = 141 - biased as i32 - shift;
    if biased != 0 && biased != 0xff && (16..=47).contains(&s) {
        let m = round_shift_fast((bits & 0x7f_ffff) | 1 << 23, 9); // <= 2^15
        let a = value.unsigned_abs(); // <= 2^31
        let low = (a & 0xffff) * m; // < 2^31
        let q = (a >> 16) * m + (low >> 16); // <= 2^30 + 2^15
                                             // t = floor(|value| * m / 2^(s - 1)): q shifted, or for s = 16 q and the top bit
                                             // of the low half; the bits below cannot change the rounding.
        let t = if s > 16 {
            q >> ((s - 17) as u32 & 31)
        } else {
            (q << 1) | ((low >> 15) & 1)
        };
        return small_signed((t >> 1) + (t & 1), bits ^ value as u32);
    }
    scaled_general(value, factor, shift)
}

/// [`scaled`] for every factor and shift.
#[cold]
#[inline(never)]
fn scaled_general(value: i32, factor: f32, shift: i32) -> i32 {
    let (negative, mantissa, biased) = parts(factor);
    let (m, biased) = match round_shift(mantissa, 9) {
        0x8000 => (0x4000, biased + 1),
        m => (m, biased),
    };
    // |value * factor| * 2^shift = |value| * m * 2^(biased - 141 + shift), rounded by
    // shifting right by s.
    let s = 141 - biased as i32 - shift;
    let a = value.unsigned_abs();
    let magnitude = if s >= 0 {
        // |value| * m = q * 2^16 + r with r < 2^16, in two 32-bit products.
        let low = (a & 0xffff) * m; // < 2^31
        let q = (a >> 16) * m + (low >> 16); // < 2^30 + 2^15
        let r = low & 0xffff;
        match s.unsigned_abs() {
            16 => q + ((r >> 15) & 1),
            // The r bits cannot change round((q * 2^16 + r) / 2^s) when s > 16.
            s @ 17.. => round_shift(q, s - 16),
            // q * 2^(16 - s) + round(r / 2^s), saturated.
            s => match q.checked_shl(16 - s) {
                Some(high) if high >> (16 - s) == q => high.saturating_add(round_shift(r, s)),
                _ => LIMIT,
            },
        }
    } else {
        round_shift_wide(u64::from(a) * u64::from(m), s)
    };
    signed(magnitude, negative != (value < 0))
}

/// A row's output in Q16 from its exact sum `acc` over inputs quantized with `shift`:
/// `scaled(acc, scale, shift) + from_f32(bias)`, saturated, with the row's f32 scale and
/// bias read from their little-endian bytes.
pub(crate) fn output(acc: i32, scale: &[u8; 4], bias: &[u8; 4], shift: u32) -> i32 {
    let scale = read_f32(scale);
    let bias = read_f32(bias);
    scaled(acc, scale, shift as i32).saturating_add(from_f32(bias))
}

/// A row's f32 bias, read from its little-endian bytes, in Q16: where the sums of a
/// transposed convolution's output start.
#[cfg(feature = "transposed-conv")]
pub(crate) fn bias(bias: &[u8; 4]) -> i32 {
    from_f32(read_f32(bias))
}

/// One term of a transposed convolution's output in Q16: the exact sum `acc` over one
/// input pixel quantized with `shift`, times its output channel's f32 scale,
/// `scaled(acc, scale, shift)`.
#[cfg(feature = "transposed-conv")]
pub(crate) fn term(acc: i32, scale: &[u8; 4], shift: u32) -> i32 {
    scaled(acc, read_f32(scale), shift as i32)
}

/// The little-endian f32 in `bytes`: one word load where the bytes are word-aligned (as
/// in every committed model file), byte loads elsewhere (ARMv6-M faults on an unaligned
/// word load, and the compiler cannot know).
fn read_f32(bytes: &[u8; 4]) -> f32 {
    let at = bytes.as_ptr();
    let word = if (at as usize).is_multiple_of(4) {
        // SAFETY: `at` points at 4 readable bytes and is word-aligned; any bits are a u32.
        // Volatile, or the compiler, seeing both branches give the same value, keeps only
        // the byte loads.
        u32::from_le(unsafe { at.cast::<u32>().read_volatile() })
    } else {
        u32::from_le_bytes(*bytes)
    };
    f32::from_bits(word)
}

/// A Q16 value as f32 (exact up to 2^24 / 65536 = 256 in magnitude, rounded beyond).
pub(crate) fn to_f32(v: i32) -> f32 {
    v as f32 * (1.0 / 65536.0)
}

/// The right shift `j` that brings every value of `values` into i16 with 15 bits for the
/// largest: `max |v| < 2^(15 + j)`, 0 when they already fit.
pub(crate) fn input_shift(values: &[i32]) -> u32 {
    let max = values.iter().fold(0u32, |m, v| m.max(v.unsigned_abs()));
    (u32::BITS - max.leading_zeros()).saturating_sub(15)
}

/// `round(v / 2^shift)` (ties away from zero), within `[-32767, 32767]` (rounding can
/// reach 32768).
pub(crate) fn quantize(v: i32, shift: u32) -> i32 {
    signed(round_shift(v.unsigned_abs(), shift).min(32767), v < 0)
}

/// `T[p - 1]` for `p` in 1..=255: the smallest Q16 logit whose pixel is at least `p`,
/// `ceil(65536 * ln((p - 0.5) / (255.5 - p)))`, where `255 * sigmoid(logit)` reaches
/// `p - 0.5`. Checked against that formula in f64, with the distance of each value to
/// the nearest integer, by `thresholds_are_the_rounding_points_of_the_sigmoid`.
#[rustfmt::skip]
const THRESHOLDS: [i32; 255] = [
    -408449, -336193, -302456, -280145, -263414, -250000, -238789, -229147,
    -220679, -213123, -206296, -200066, -194332, -189017, -184062, -179418,
    -175047, -170915, -166997, -163269, -159713, -156311, -153051, -149918,
    -146904, -143997, -141190, -138475, -135845, -133295, -130819, -128412,
    -126070, -123789, -121565, -119394, -117274, -115202, -113176, -111192,
    -109249, -107344, -105476, -103642, -101842, -100074, -98335, -96626,
    -94944, -93288, -91658, -90051, -88468, -86907, -85368, -83848,
    -82349, -80868, -79405, -77960, -76532, -75120, -73723, -72341,
    -70974, -69621, -68281, -66954, -65640, -64338, -63048, -61768,
    -60500, -59242, -57994, -56756, -55528, -54309, -53098, -51896,
    -50703, -49517, -48339, -47168, -46005, -44848, -43698, -42555,
    -41418, -40287, -39161, -38041, -36927, -35818, -34714, -33614,
    -32519, -31429, -30343, -29261, -28182, -27108, -26037, -24970,
    -23905, -22844, -21786, -20731, -19678, -18628, -17580, -16535,
    -15491, -14450, -13410, -12372, -11336, -10301, -9267, -8234,
    -7203, -6172, -5142, -4113, -3084, -2056, -1028, 0,
    1029, 2057, 3085, 4114, 5143, 6173, 7204, 8235,
    9268, 10302, 11337, 12373, 13411, 14451, 15492, 16536,
    17581, 18629, 19679, 20732, 21787, 22845, 23906, 24971,
    26038, 27109, 28183, 29262, 30344, 31430, 32520, 33615,
    34715, 35819, 36928, 38042, 39162, 40288, 41419, 42556,
    43699, 44849, 46006, 47169, 48340, 49518, 50704, 51897,
    53099, 54310, 55529, 56757, 57995, 59243, 60501, 61769,
    63049, 64339, 65641, 66955, 68282, 69622, 70975, 72342,
    73724, 75121, 76533, 77961, 79406, 80869, 82350, 83849,
    85369, 86908, 88469, 90052, 91659, 93289, 94945, 96627,
    98336, 100075, 101843, 103643, 105477, 107345, 109250, 111193,
    113177, 115203, 117275, 119395, 121566, 123790, 126071, 128413,
    130820, 133296, 135846, 138476, 141191, 143998, 146905, 149919,
    153052, 156312, 159714, 163270, 166998, 170916, 175048, 179419,
    184063, 189018, 194333, 200067, 206297, 213124, 220680, 229148,
    238790, 250001, 263415, 280146, 302457, 336194, 408450,
];

/// Where each 4096-wide bucket of logits from `THRESHOLDS[0]` up starts: the number of
/// thresholds at or below its first logit. At most 5 thresholds fall into one bucket (the
/// sigmoid is steepest at 0: 255 / 4 levels per unit of logit, 4096 / 65536 of a unit per
/// bucket), so a pixel is found in a few steps from its bucket's start.
const BUCKET_BITS: u32 = 12;
#[allow(clippy::indexing_slicing)] // evaluated by the compiler: an index out of range fails the build
const BUCKETS: [u8; 200] = {
    let mut buckets = [0u8; 200];
    let mut b = 0;
    while b < buckets.len() {
        let start = THRESHOLDS[0] + ((b as i32) << BUCKET_BITS);
        let mut p = 0;
        while p < THRESHOLDS.len() && THRESHOLDS[p] <= start {
            p += 1;
        }
        buckets[b] = p as u8;
        b += 1;
    }
    buckets
};
const _: () = assert!(
    (THRESHOLDS[254] - THRESHOLDS[0]) >> BUCKET_BITS < BUCKETS.len() as i32,
    "the buckets cover every logit between the first and the last threshold"
);

/// The grey level of a Q16 logit: `255 * sigmoid(logit)` rounded to nearest (ties up),
/// computed exactly, as the number of thresholds the logit reaches: no exponential, two
/// comparisons for a black or white pixel, and for a grey one a table look-up and a few
/// comparisons from there.
pub(crate) fn pixel(logit: i32) -> u8 {
    let (black, white) = (THRESHOLDS[0], THRESHOLDS[254]);
    if logit < black {
        return 0;
    }
    if logit >= white {
        return 255;
    }
    let bucket = (logit - black) >> BUCKET_BITS; // in 0..200, checked above
    let mut p = BUCKETS.get(bucket as usize).map_or(0, |&p| usize::from(p));
    while let Some(&t) = THRESHOLDS.get(p) {
        if logit < t {
            break;
        }
        p += 1;
    }
    p as u8
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    /// Each threshold is the rounding point of `255 * sigmoid`, computed here in f64
    /// (error about 1e-16 relative, so 1e-10 absolute at 65536 * 6.3), and none lies
    /// within 1e-6 of an integer, where f64's error could move the ceiling; p = 128 is
    /// exactly 0 (ln 1).
    #[test]
    fn thresholds_are_the_rounding_points_of_the_sigmoid() {
        for (i, &t) in THRESHOLDS.iter().enumerate() {
            let p = i as f64 + 1.0;
            let exact = 65536.0 * ((p - 0.5) / (255.5 - p)).ln();
            if p == 128.0 {
                assert_eq!((exact, t), (0.0, 0));
                continue;
            }
            assert!((exact - exact.round()).abs() > 1e-6, "p = {p}: {exact}");
            assert_eq!(t, exact.ceil() as i32, "p = {p}");
        }
    }

    /// Each bucket starts where its documentation says, at the number of thresholds at or
    /// below its first logit (counted here over the whole table), and holds at most 5
    /// thresholds, so that `pixel` takes a few steps from there.
    #[test]
    fn buckets_count_the_thresholds_below_each_start() {
        for (b, &start_index) in BUCKETS.iter().enumerate() {
            let start = THRESHOLDS[0] + ((b as i32) << BUCKET_BITS);
            let below = THRESHOLDS.iter().filter(|&&t| t <= start).count();
            assert_eq!(usize::from(start_index), below, "bucket {b}");
            let end = start + (1 << BUCKET_BITS);
            let inside = THRESHOLDS
                .iter()
                .filter(|&&t| start < t && t <= end)
                .count();
            assert!(inside <= 5, "bucket {b}: {inside}");
        }
    }

    /// Every Q16 logit from below the black threshold to above the white one gives the
    /// grey level of its sigmoid, computed in f64 as `floor(255 * sigmoid + 0.5)`.
    #[test]
    fn pixels_are_the_rounded_sigmoid_of_every_logit() {
        for logit in -420_000..=420_000 {
            let sigmoid = 1.0 / (1.0 + (-f64::from(logit) / 65536.0).exp());
            let want = (255.0 * sigmoid + 0.5).floor() as u8;
            assert_eq!(pixel(logit), want, "logit {logit}");
        }
        assert_eq!((pixel(i32::MIN), pixel(i32::MAX)), (0, 255));
    }

    #[test]
    fn floats_become_rounded_saturated_q16() {
        assert_eq!(from_f32(1.0), 65536);
        assert_eq!(from_f32(-2.5), -163_840);
        assert_eq!(from_f32(1.5 / 65536.0), 2); // ties away from zero
        assert_eq!(from_f32(-1.5 / 65536.0), -2);
        assert_eq!(from_f32(-2.5 / 65536.0), -3);
        assert_eq!(from_f32(32767.99), 2_147_483_008); // 32767.990234375 in f32
        assert_eq!(from_f32(32768.0), i32::MAX);
        assert_eq!(from_f32(0.4 / 65536.0), 0);
        assert_eq!(from_f32(f32::from_bits(1)), 0); // the smallest subnormal
        assert_eq!(from_f32(1e9), i32::MAX);
        assert_eq!(from_f32(-1e9), -i32::MAX);
        assert_eq!(from_f32(f32::INFINITY), i32::MAX);
        assert_eq!(from_f32(f32::NEG_INFINITY), -i32::MAX);
        assert_eq!(from_f32(f32::NAN), 0);
        assert_eq!(to_f32(from_f32(-3.25)), -3.25);
    }

    /// `scaled` against the product computed in f64 with the factor's mantissa rounded
    /// to 15 bits (exact in f64 for these magnitudes), rounded half away from zero,
    /// across the shifts of both code paths (the two 32-bit products for a right shift of
    /// 16 or more, the 64-bit one below), ties and saturation included.
    #[test]
    fn scaled_products_round_the_exact_product() {
        let mut rng = crate::Rng::new(5);
        let mut ties = 0;
        for _ in 0..200_000 {
            let value = rng.next_u32() as i32 >> (rng.next_u32() % 31);
            let factor =
                (rng.uniform() - 0.5) * f32::from_bits(((rng.next_u32() % 40) << 23) | 0x3000_0000);
            let shift = (rng.next_u32() % 40) as i32 - 8;
            let (m, e) = libm::frexp(f64::from(factor)); // factor = m * 2^e, 0.5 <= |m| < 1
            let m15 = (m * 32768.0).abs().round().copysign(m) / 32768.0;
            let exact = f64::from(value) * m15 * f64::from(e + shift).exp2();
            ties += usize::from(exact.fract().abs() == 0.5);
            let rounded = exact.abs().round().copysign(exact); // half away from zero
            let want = rounded.clamp(-f64::from(i32::MAX), f64::from(i32::MAX));
            let got = f64::from(scaled(value, factor, shift));
            assert_eq!(got, want, "{value} * {factor} * 2^{shift}");
        }
        assert!(ties > 100, "{ties} ties");
        assert_eq!(scaled(i32::MIN, -f32::MAX, 200), i32::MAX);
        assert_eq!(scaled(0, f32::INFINITY, 0), 0);
        assert_eq!(scaled(7, f32::NAN, 0), 0);
    }

    /// `from_f32` against f64 (exact for every f32 times 2^16) rounded half away from
    /// zero and clamped, for f32s of every exponent, through both of its paths.
    #[test]
    fn every_exponent_rounds_to_q16() {
        let mut rng = crate::Rng::new(8);
        for _ in 0..200_000 {
            let v = f32::from_bits(rng.next_u32());
            if v.is_nan() {
                continue;
            }
            let exact = f64::from(v) * 65536.0;
            let want = exact
                .abs()
                .round()
                .copysign(exact)
                .clamp(-f64::from(i32::MAX), f64::from(i32::MAX));
            assert_eq!(f64::from(from_f32(v)), want, "{v:e}");
            // The general path is the definition for every f32, the usual ones included.
            assert_eq!(f64::from(from_f32_general(v)), want, "general: {v:e}");
        }
    }

    /// `scaled` for factors of every exponent, subnormals included, and every right or
    /// left shift `s` of the product from -40 to 70, so that both paths and each arm of
    /// `scaled_general` run (the committed models only reach the inline path). The
    /// reference reads the factor by the IEEE 754 layout: `|f| = k * u` with `u` its ulp
    /// (`2^(b - 150)`, or `2^-149` for a subnormal), rounds `k` to a multiple of 2^9 (the
    /// documented 15-bit mantissa; halves away from zero) and takes the product in f64,
    /// exact here (`|value| * k < 2^55`), rounded half away from zero and clamped.
    #[test]
    fn scaled_rounds_the_exact_product_for_every_factor() {
        let mut rng = crate::Rng::new(9);
        for _ in 0..300_000 {
            let value = match rng.below(8) {
                0 => i32::MIN,
                1 => i32::MAX,
                _ => rng.next_u32() as i32 >> rng.below(32),
            };
            let biased = rng.below(255); // finite factors
            let fraction = rng.next_u32() & 0x7f_ffff;
            let negative = rng.below(2) == 1;
            let bits = u32::from(negative) << 31 | biased << 23 | fraction;
            let factor = f32::from_bits(bits);
            let s = rng.below(111) as i32 - 40;
            let shift = 141 - biased as i32 - s;
            let (k, ulp) = match biased {
                0 => (fraction, -149),
                b => (fraction | 1 << 23, b as i32 - 150),
            };
            let k = (f64::from(k) / 512.0).round() * 512.0;
            let exact = f64::from(value) * k * f64::from(ulp + shift).exp2();
            let exact = if negative { -exact } else { exact };
            let want = exact
                .abs()
                .round()
                .copysign(exact)
                .clamp(-f64::from(i32::MAX), f64::from(i32::MAX));
            let got = scaled(value, factor, shift);
            assert_eq!(f64::from(got), want, "{value} * {factor:e} * 2^{shift}");
            assert_eq!(scaled_general(value, factor, shift), got, "general path");
        }
    }

    /// A row's output: its scaled sum plus its bias in Q16, saturated, with the f32s read
    /// from little-endian bytes at any alignment: `1000 * 2.0 * 2^3 = 16000` and a bias
    /// of 0.5, `32768`, make 48768.
    #[test]
    fn outputs_add_the_bias_to_the_scaled_sum() {
        let mut bytes = [0u8; 12];
        for at in 0..4 {
            bytes[at..at + 4].copy_from_slice(&2.0f32.to_le_bytes());
            let scale: &[u8; 4] = bytes[at..at + 4].try_into().unwrap();
            let bias = 0.5f32.to_le_bytes();
            assert_eq!(output(1000, scale, &bias, 3), 16_000 + 32_768, "at {at}");
            assert_eq!(output(-1000, scale, &bias, 3), -16_000 + 32_768);
        }
        let (one, big) = (1.0f32.to_le_bytes(), 30_000.0f32.to_le_bytes());
        assert_eq!(output(i32::MAX, &one, &big, 0), i32::MAX);
    }

    /// Magnitudes at the edges of u32 and u64 and of the rounding bit, and some between.
    const EDGES: [u64; 14] = [
        0,
        1,
        2,
        3,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_8000_0000,
        0x0123_4567_89ab_cdef,
        u64::MAX / 3,
        1 << 63,
        u64::MAX - 1,
        u64::MAX,
    ];

    /// `round_shift(v, s) = round(v / 2^s)`, ties up, for every shift a u32 can be given
    /// (0 to 40), against the same rounding done in u128 where nothing overflows:
    /// `floor((v + 2^(s - 1)) / 2^s)`.
    #[test]
    fn round_shift_rounds_half_up_at_every_shift() {
        for v in EDGES
            .map(|v| v as u32)
            .into_iter()
            .chain([5, 6, 7, 0x1234_5678])
        {
            for s in 0..=40u32 {
                let want = if s == 0 {
                    u128::from(v)
                } else {
                    (u128::from(v) + (1u128 << (s - 1))) >> s
                };
                assert_eq!(u128::from(round_shift(v, s)), want, "{v} >> {s}");
            }
        }
    }

    /// `round_shift_wide(v, s)`: for `s > 0`, `round(v / 2^s)` (ties up), for `s <= 0`
    /// `v * 2^-s`, saturated at `LIMIT` either way; checked in u128 for every shift from
    /// -70 to 70, across both ends of the right shifts (1 and 64 and beyond, where
    /// `u64::MAX` still rounds to 1 at 64 and to 0 past it) and left shifts that
    /// overflow u64 (or not, for 0).
    #[test]
    fn round_shift_wide_rounds_or_saturates_at_every_shift() {
        let limit = u128::from(LIMIT);
        for v in EDGES {
            for s in -70..=70i32 {
                let wide = u128::from(v);
                let want = if s > 0 {
                    // (v + 2^(s-1)) / 2^s; for s >= 66 the sum is below 2^65 < 2^(s-1).
                    match s {
                        1..=127 => (wide + (1u128 << (s - 1))) >> s,
                        _ => 0,
                    }
                } else if v == 0 {
                    0
                } else if -s >= 64 {
                    limit // at least 2^64
                } else {
                    wide << -s // below 2^128
                };
                let got = round_shift_wide(v, s);
                assert_eq!(u128::from(got), want.min(limit), "{v:#x}, shift {s}");
            }
        }
    }

    #[test]
    fn inputs_quantize_to_15_bits() {
        assert_eq!(input_shift(&[0, 0]), 0);
        assert_eq!(input_shift(&[32767, -5]), 0);
        assert_eq!(input_shift(&[-32768]), 1);
        assert_eq!(input_shift(&[65536 * 3]), 3);
        assert_eq!(input_shift(&[i32::MIN]), 17);
        assert_eq!(quantize(65535, 1), 32767); // rounds to 32768, clamped
        assert_eq!(quantize(-65535, 1), -32767);
        assert_eq!(quantize(i32::MIN, 17), -16384);
        assert_eq!(quantize(5, 1), 3);
        assert_eq!(quantize(-5, 1), -3);
    }
}
