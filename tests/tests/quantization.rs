//! f16 against f32: the same latents decoded with the f16 and the f32 file of the
//! committed default model.

use vae_core::{to_pixel, Model, PIXELS};
use vae_tests::{default_model_dir, latents};

/// Latents per digit: 100 x 10 digits = 1,000 images, 784,000 pixels.
const PER_DIGIT: usize = 100;

#[test]
fn f16_decoder_matches_f32_within_stated_bounds() {
    let dir = default_model_dir();
    let f16_bytes = std::fs::read(dir.join("decoder-f16.vae")).unwrap();
    let f32_bytes = std::fs::read(dir.join("decoder-f32.vae")).unwrap();
    let f16 = Model::parse(&f16_bytes).unwrap();
    let f32 = Model::parse(&f32_bytes).unwrap();
    assert_eq!(f16.architecture(), f32.architecture());
    assert!(f16.is_conditional());
    let latent = usize::from(f16.architecture().latent);

    let (mut max_abs, mut sum_abs, mut max_levels, mut pixels_off) = (0.0f32, 0.0f64, 0u8, 0usize);
    let mut count = 0usize;
    for digit in 0..10u8 {
        for z in latents(latent, PER_DIGIT) {
            let (mut a, mut b) = ([0.0f32; PIXELS], [0.0f32; PIXELS]);
            f16.decode_latent(&z, Some(digit), &mut a).unwrap();
            f32.decode_latent(&z, Some(digit), &mut b).unwrap();
            for (p, q) in a.iter().zip(&b) {
                let d = (p - q).abs();
                max_abs = max_abs.max(d);
                sum_abs += f64::from(d);
                let levels = to_pixel(*p).abs_diff(to_pixel(*q));
                max_levels = max_levels.max(levels);
                pixels_off += usize::from(levels > 0);
            }
            count += 1;
        }
    }
    let mean_abs = sum_abs / (count * PIXELS) as f64;
    println!(
        "{count} images: max |p16 - p32| = {max_abs:.2e}, mean = {mean_abs:.2e}, \
         max u8 difference = {max_levels}, pixels differing = {pixels_off} of {}",
        count * PIXELS
    );
    assert_eq!(count, 1000);
    // Bounds (see README, "f16 against f32"): f16 keeps 11 significant bits, so each
    // weight moves by at most 2^-12 of itself (2.4e-4 relative). Over the ~150 terms of
    // a logit these errors add up like a random walk to a few 1e-3 in the logit at
    // worst, and the sigmoid's slope is at most 1/4: probabilities move by at most a
    // few 1e-3. One u8 level is 1/255 = 3.9e-3, so the images differ by at most one
    // level at a handful of pixels.
    assert!(max_abs < 4e-3, "max abs error {max_abs}");
    assert!(mean_abs < 1e-4, "mean abs error {mean_abs}");
    assert!(max_levels <= 1, "u8 pixels differ by {max_levels} levels");
    assert!(
        pixels_off * 100 < count * PIXELS,
        "{pixels_off} pixels differ"
    );
}
