//! Quantized decoders against f32: the same latents decoded with the f16, i8 and f32
//! files of the committed default model.

use vae_core::{to_pixel, Model, PIXELS};
use vae_tests::{decode_latent, default_model_dir, latents};

/// Latents per digit: 100 x 10 digits = 1,000 images, 784,000 pixels.
const PER_DIGIT: usize = 100;

/// How far a quantized decoder's outputs are from the f32 decoder's.
struct Difference {
    images: usize,
    /// Largest and mean |p_quantized - p_f32| over all pixel probabilities.
    max_abs: f32,
    mean_abs: f64,
    /// Largest difference of the u8 pixels, in grey levels.
    max_levels: u8,
    /// Pixels whose u8 value differs at all.
    pixels_off: usize,
}

impl Difference {
    fn pixels(&self) -> usize {
        self.images * PIXELS
    }
}

fn compare_with_f32(file_name: &str) -> Difference {
    let dir = default_model_dir();
    let quantized_bytes = std::fs::read(dir.join(file_name)).unwrap();
    let f32_bytes = std::fs::read(dir.join("decoder-f32.vae")).unwrap();
    let quantized = Model::parse(&quantized_bytes).unwrap();
    let f32 = Model::parse(&f32_bytes).unwrap();
    assert_eq!(quantized.architecture(), f32.architecture());
    assert!(quantized.is_conditional());
    let latent = usize::from(quantized.architecture().latent);

    let (mut max_abs, mut sum_abs, mut max_levels, mut pixels_off) = (0.0f32, 0.0f64, 0u8, 0usize);
    let mut images = 0usize;
    for digit in 0..10u8 {
        for z in latents(latent, PER_DIGIT) {
            let (mut a, mut b) = ([0.0f32; PIXELS], [0.0f32; PIXELS]);
            decode_latent(&quantized, &z, Some(digit), &mut a).unwrap();
            decode_latent(&f32, &z, Some(digit), &mut b).unwrap();
            for (p, q) in a.iter().zip(&b) {
                let d = (p - q).abs();
                max_abs = max_abs.max(d);
                sum_abs += f64::from(d);
                let levels = to_pixel(*p).abs_diff(to_pixel(*q));
                max_levels = max_levels.max(levels);
                pixels_off += usize::from(levels > 0);
            }
            images += 1;
        }
    }
    let diff = Difference {
        images,
        max_abs,
        mean_abs: sum_abs / (images * PIXELS) as f64,
        max_levels,
        pixels_off,
    };
    println!(
        "{file_name}: {images} images: max |p - p32| = {:.2e}, mean = {:.2e}, \
         max u8 difference = {}, pixels differing = {} of {} ({:.2} %)",
        diff.max_abs,
        diff.mean_abs,
        diff.max_levels,
        diff.pixels_off,
        diff.pixels(),
        100.0 * diff.pixels_off as f64 / diff.pixels() as f64
    );
    assert_eq!(images, 1000);
    diff
}

#[test]
fn f16_decoder_matches_f32_within_stated_bounds() {
    let diff = compare_with_f32("decoder-f16.vae");
    // Bounds (see README, "Quantization"): f16 keeps 11 significant bits, so each
    // weight moves by at most 2^-12 of itself (2.4e-4 relative). Over the ~150 terms of
    // a logit these errors add up like a random walk to a few 1e-3 in the logit at
    // worst, and the sigmoid's slope is at most 1/4: probabilities move by at most a
    // few 1e-3. One u8 level is 1/255 = 3.9e-3, so the images differ by at most one
    // level at a handful of pixels. Measured: 1.65e-3, 3.4e-5, 1 level, 0.88 %.
    assert!(diff.max_abs < 4e-3, "max abs error {}", diff.max_abs);
    assert!(diff.mean_abs < 1e-4, "mean abs error {}", diff.mean_abs);
    assert!(
        diff.max_levels <= 1,
        "u8 pixels differ by {} levels",
        diff.max_levels
    );
    assert!(
        diff.pixels_off * 100 < 2 * diff.pixels(),
        "{} pixels differ",
        diff.pixels_off
    );
}

#[test]
fn i8_decoder_matches_f32_within_stated_bounds() {
    let diff = compare_with_f32("decoder-i8.vae");
    // Bounds (see README, "Quantization"): with one scale per output row, each weight
    // moves by at most half a step, max|row| / 254, and the errors of a logit's ~130 terms
    // add up like a random walk: typically a few 1e-2 in the logit, times the sigmoid's
    // slope (at most 1/4). Mean error is therefore about 1e-3 (measured 2.25e-3: most
    // pixels sit in the flat ends of the sigmoid), and the worst pixel of 784,000, on a
    // stroke edge where the slope is steepest, moves by about a tenth (measured 0.133,
    // 34 grey levels). The bounds leave about 2x room; that the digits still read as
    // asked is checked in conditional.rs.
    assert!(diff.max_abs < 0.25, "max abs error {}", diff.max_abs);
    assert!(diff.mean_abs < 5e-3, "mean abs error {}", diff.mean_abs);
    assert!(
        diff.max_levels <= 64,
        "u8 pixels differ by {} levels",
        diff.max_levels
    );
    assert!(
        diff.pixels_off * 100 < 35 * diff.pixels(),
        "{} pixels differ",
        diff.pixels_off
    );
}

/// The i8 decoder computes what its file says: the same latents decoded by `vae-core`
/// and by an f64 reference over the dequantized weights `q * scale` (the file read here
/// by hand, not through the crate).
#[test]
fn i8_decoder_computes_its_dequantized_weights_exactly() {
    let bytes = std::fs::read(default_model_dir().join("decoder-i8.vae")).unwrap();
    let model = Model::parse(&bytes).unwrap();
    let arch = model.architecture().clone();
    let payload = &bytes[bytes.len() - arch.payload_len(vae_core::Precision::I8)..];
    let f32_at =
        |b: &[u8], i: usize| f64::from(f32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()));
    let mut max_abs = 0.0f64;
    for digit in 0..10u8 {
        for z in latents(usize::from(arch.latent), 20) {
            let mut x: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
            x.extend((0..10).map(|d| f64::from(u8::from(d == digit))));
            let mut offset = 0;
            let layers: Vec<_> = arch.layers().collect();
            for (index, &(n_in, n_out)) in layers.iter().enumerate() {
                let weights = &payload[offset..offset + n_in * n_out];
                let scales = &payload[offset + n_in * n_out..offset + n_in * n_out + 4 * n_out];
                let biases = &payload[offset + n_in * n_out + 4 * n_out..][..4 * n_out];
                offset += n_in * n_out + 8 * n_out;
                x = (0..n_out)
                    .map(|o| {
                        let row = &weights[o * n_in..(o + 1) * n_in];
                        let dot: f64 = row
                            .iter()
                            .zip(&x)
                            .map(|(&q, v)| f64::from(q as i8) * v)
                            .sum();
                        let y = f32_at(biases, o) + f32_at(scales, o) * dot;
                        if index + 1 == layers.len() {
                            1.0 / (1.0 + (-y).exp())
                        } else {
                            y.max(0.0)
                        }
                    })
                    .collect();
            }
            let mut probs = [0.0f32; PIXELS];
            decode_latent(&model, &z, Some(digit), &mut probs).unwrap();
            for (p, want) in probs.iter().zip(&x) {
                max_abs = max_abs.max((f64::from(*p) - want).abs());
            }
        }
    }
    println!("i8 decoder against its f64 reference: max |dp| = {max_abs:.2e}");
    // The only differences are the decoder's integer arithmetic: each layer's input
    // quantized to i16 with a power-of-two step (at most 2^-14 of the largest input, so
    // each term moves by at most 3e-5 of it times its weight), the Q16 values between
    // layers (steps of 1.5e-5), each row's scale rounded to 15 bits (3e-5 relative); over
    // ~130 terms that is ~2e-4 in a logit, times the sigmoid's slope (at most 1/4).
    // Measured 2.31e-4; a wrong scale, a misread row or a sum that overflows is off by far
    // more.
    assert!(max_abs < 1e-3, "max abs error {max_abs}");
}
