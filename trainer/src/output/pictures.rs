//! The pictures a run is looked at with, each drawn by its own function: a sample grid
//! per epoch and their GIF, loss curves, reconstructions, a morph, the conditional grid,
//! the latent manifold and scatter of latent-2 models; and the grids of `vae sample`
//! and of a firmware's output.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use dfdx::prelude::*;
use mnist::Dataset;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use vae_core::PIXELS;

use crate::data::firmware_log::FirmwareLog;
use crate::foundation::io::write_atomic;
use crate::foundation::run_dir::RunDir;
use crate::nn::model::Vae;
use crate::output::history::EpochRecord;
use crate::output::render::{encode_gif, plot_error, plot_png, read_grey_png, Grid};

/// Columns of the per-epoch grid (rows: digits 0-9, or 8 rows for a plain VAE).
const SNAPSHOT_COLUMNS: usize = 8;

/// Enlargement of the 28x28 tiles in a run's pictures.
const SCALE: usize = 2;

/// `n` latent codes z ~ N(0, I) drawn from seed 0: the same columns in every picture.
fn fixed_codes(latent: usize, n: usize) -> Vec<Vec<f32>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    (0..n)
        .map(|_| {
            (0..latent)
                .map(|_| StandardNormal.sample(&mut rng))
                .collect()
        })
        .collect()
}

/// Decoder inputs `[code, one-hot(digit)]`: a row per digit, a column per code.
fn digit_rows(classes: usize, codes: &[Vec<f32>]) -> Vec<f32> {
    let mut input = Vec::new();
    for digit in 0..classes {
        for code in codes {
            input.extend(code);
            input.extend((0..classes).map(|c| f32::from(u8::from(c == digit))));
        }
    }
    input
}

/// The same grid every epoch: fixed latent codes, one column each; for a conditional
/// model one row per digit, for a plain one eight rows of codes.
fn snapshot_images<D: Device<f32>>(vae: &Vae<D>) -> (Vec<[u8; PIXELS]>, usize) {
    let (latent, classes) = (vae.config.latent, vae.config.classes);
    let (input, rows) = if classes > 0 {
        let codes = fixed_codes(latent, SNAPSHOT_COLUMNS);
        (digit_rows(classes, &codes), classes)
    } else {
        (fixed_codes(latent, 8 * SNAPSHOT_COLUMNS).concat(), 8)
    };
    (vae.decode_images(input), rows)
}

/// Writes the run's grid of epoch `epoch`: the fixed grid decoded by the model as it is
/// now.
pub fn epoch_snapshot<D: Device<f32>>(run: &RunDir, epoch: usize, vae: &Vae<D>) -> Result<()> {
    let dir = run.epochs_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (images, rows) = snapshot_images(vae);
    crate::output::render::write_grid(
        &run.epoch_grid(epoch),
        &images,
        rows,
        SNAPSHOT_COLUMNS,
        SCALE,
    )
}

/// Assembles the grids of epochs 1 to `epochs` that exist (a resumed run may lack early
/// ones) into the run's GIF (0.3 s per frame, the last held for 2 s, looping).
pub fn epochs_gif(run: &RunDir, epochs: usize) -> Result<PathBuf> {
    let mut frames = Vec::new();
    for epoch in 1..=epochs {
        let path = run.epoch_grid(epoch);
        if path.exists() {
            frames.push(read_grey_png(&path).with_context(|| format!("{}", path.display()))?);
        }
    }
    let out = run.epochs_gif();
    write_atomic(&out, &encode_gif(&frames)?)?;
    Ok(out)
}

/// Training and test loss per epoch (nats per image), from a run's history.
pub fn loss_curves(history: &[EpochRecord], path: &Path) -> Result<()> {
    use plotters::prelude::*;
    anyhow::ensure!(!history.is_empty(), "the run has no finished epoch");
    let train: Vec<(f32, f32)> = history
        .iter()
        .map(|r| (r.epoch as f32, r.train.neg_elbo()))
        .collect();
    let test: Vec<(f32, f32)> = history
        .iter()
        .map(|r| (r.epoch as f32, r.test.neg_elbo()))
        .collect();
    // The first epoch's loss is far above the rest; the range starts from the second.
    let shown = |v: &&(f32, f32)| history.len() < 3 || v.0 >= 2.0;
    let values = train.iter().chain(&test).filter(shown).map(|p| p.1);
    let (lo, hi) = values.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let pad = ((hi - lo) * 0.05).max(0.5);
    let last = history.len() as f32;
    plot_png(path, (800, 500), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption("Loss per epoch (nats per image)", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(1f32..last.max(2.0), (lo - pad)..(hi + pad))
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("-ELBO (reconstruction + KL)")
            .draw()
            .map_err(plot_error)?;
        for (points, colour, name) in [(&train, BLUE, "training"), (&test, RED, "test")] {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(plot_error)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(plot_error)?;
        Ok(())
    })
}

/// The test set's latent means, coloured by digit (latent-2 models).
fn latent_scatter(points: &[(f32, f32, u8)], path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let extent = points
        .iter()
        .fold(1.0f32, |m, p| m.max(p.0.abs()).max(p.1.abs()))
        .min(6.0);
    plot_png(path, (720, 720), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption("Test images' latent means, by digit", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(-extent..extent, -extent..extent)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("z1")
            .y_desc("z2")
            .draw()
            .map_err(plot_error)?;
        for digit in 0..10u8 {
            let colour = Palette99::pick(usize::from(digit)).to_rgba();
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| p.2 == digit)
                        .map(|p| Circle::new((p.0, p.1), 2, colour.filled())),
                )
                .map_err(plot_error)?
                .label(digit.to_string())
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, colour.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.85))
            .draw()
            .map_err(plot_error)?;
        Ok(())
    })
}

/// Inverse of the standard normal CDF (Acklam's rational approximation, relative error
/// below 1.2e-9), for the manifold grid's quantiles. The coefficients are the published
/// ones, digit for digit.
#[allow(clippy::excessive_precision)]
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Every picture of a run, written into `out`; returns the files written.
pub fn all(
    vae: &Vae<Cpu>,
    history: &[EpochRecord],
    test: &Dataset,
    morph_ends: (usize, usize),
    out: &Path,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut written = vec![out.join("loss.png"), out.join("reconstructions.png")];
    loss_curves(history, &written[0])?;
    reconstructions(vae, test, &written[1])?;
    let path = out.join("morph.png");
    morph(vae, test, morph_ends, &path)?;
    written.push(path);
    if vae.config.classes > 0 {
        let path = out.join("conditional.png");
        conditional_grid(vae, &path)?;
        written.push(path);
    }
    if vae.config.latent == 2 {
        let path = out.join("manifold.png");
        manifold(vae, &path)?;
        written.push(path);
        let path = out.join("latent-scatter.png");
        latent_scatter(&latent_means(vae, test), &path)?;
        written.push(path);
    }
    Ok(written)
}

/// Decoder inputs `[mean of q(z|x), class probabilities]` of test images `indices`.
fn codes(vae: &Vae<Cpu>, test: &Dataset, indices: &[usize]) -> Vec<Vec<f32>> {
    let (latent, classes) = (vae.config.latent, vae.config.classes);
    let x = test.intensities(indices.iter().copied());
    let (mu, _, probs) = vae.encode(&x);
    (0..indices.len())
        .map(|k| {
            let mut v = mu[k * latent..(k + 1) * latent].to_vec();
            if let Some(p) = &probs {
                v.extend_from_slice(&p[k * classes..(k + 1) * classes]);
            }
            v
        })
        .collect()
}

/// Test image `i` as a tile.
fn tile(test: &Dataset, i: usize) -> [u8; PIXELS] {
    let mut image = [0u8; PIXELS];
    image.copy_from_slice(test.image(i));
    image
}

/// The first 20 test images, each row of ten followed by a row of their reconstructions
/// (decoded from their latent means).
pub fn reconstructions(vae: &Vae<Cpu>, test: &Dataset, path: &Path) -> Result<()> {
    let shown: Vec<usize> = (0..20.min(test.len())).collect();
    let recon = vae.decode_images(codes(vae, test, &shown).concat());
    let mut tiles = Vec::new();
    for (orig, rec) in shown.chunks(10).zip(recon.chunks(10)) {
        tiles.extend(orig.iter().map(|&i| tile(test, i)));
        tiles.extend_from_slice(rec);
    }
    Grid::new(tiles, 10).write(path, SCALE)
}

/// Decoding along the straight line between two test images' codes (label
/// probabilities too), with the two images at the ends.
pub fn morph(
    vae: &Vae<Cpu>,
    test: &Dataset,
    (from, to): (usize, usize),
    path: &Path,
) -> Result<()> {
    if from >= test.len() || to >= test.len() {
        bail!(
            "--from and --to must be test image indices below {}",
            test.len()
        );
    }
    let ends = codes(vae, test, &[from, to]);
    const STEPS: usize = 10;
    let line: Vec<f32> = (0..STEPS)
        .flat_map(|s| {
            let t = s as f32 / (STEPS - 1) as f32;
            ends[0]
                .iter()
                .zip(&ends[1])
                .map(move |(a, b)| a + t * (b - a))
        })
        .collect();
    let mut tiles = vec![tile(test, from)];
    tiles.extend(vae.decode_images(line));
    tiles.push(tile(test, to));
    let cols = tiles.len();
    Grid::new(tiles, cols).write(path, SCALE)
}

/// A conditional model's digits: rows 0 to 9, columns ten latent codes (seed 0).
pub fn conditional_grid(vae: &Vae<Cpu>, path: &Path) -> Result<()> {
    let codes = fixed_codes(vae.config.latent, 10);
    let input = digit_rows(vae.config.classes, &codes);
    Grid::new(vae.decode_images(input), 10).write(path, SCALE)
}

/// A latent-2 model's decoded plane at normal quantiles 0.05 ... 0.95, z2 upwards.
pub fn manifold(vae: &Vae<Cpu>, path: &Path) -> Result<()> {
    const N: usize = 20;
    let classes = vae.config.classes;
    let q: Vec<f32> = (0..N)
        .map(|k| normal_quantile(0.05 + 0.9 * k as f64 / (N - 1) as f64) as f32)
        .collect();
    let mut input = Vec::with_capacity(N * N * (2 + classes));
    for row in 0..N {
        for col in 0..N {
            input.extend([q[col], q[N - 1 - row]]);
            // A conditional model's plane is drawn for no digit in particular: the label
            // spread uniformly.
            input.extend((0..classes).map(|_| 1.0 / classes as f32));
        }
    }
    Grid::new(vae.decode_images(input), N).write(path, 1)
}

/// The first two latent coordinates of every test image's code, with its digit.
fn latent_means(vae: &Vae<Cpu>, test: &Dataset) -> Vec<(f32, f32, u8)> {
    let all: Vec<usize> = (0..test.len()).collect();
    let mut points = Vec::with_capacity(test.len());
    for chunk in all.chunks(1000) {
        for (code, &i) in codes(vae, test, chunk).iter().zip(chunk) {
            points.push((code[0], code[1], test.labels[i]));
        }
    }
    points
}

/// `vae sample`'s grid, drawn by `vae-core` from a model file: one row per digit 0-9
/// (`digit` None, conditional model) or `count` images of `digit`, or of a plain
/// model, in rows of at most ten; column c uses seed `seed + c`.
pub fn sample_grid(
    model: &vae_core::Model,
    digit: Option<u8>,
    count: usize,
    seed: u64,
) -> Result<Grid> {
    let seeds = (0..count).map(|c| seed.wrapping_add(c as u64));
    let (tiles, cols): (Vec<(u64, Option<u8>)>, usize) = match (model.is_conditional(), digit) {
        (false, Some(_)) => bail!(
            "the model was trained without labels and cannot draw a chosen digit; leave out --digit"
        ),
        (true, None) => (
            (0..10u8)
                .flat_map(|d| seeds.clone().map(move |s| (s, Some(d))))
                .collect(),
            count,
        ),
        (_, digit) => (seeds.map(|s| (s, digit)).collect(), count.min(10)),
    };
    let mut images = Vec::with_capacity(tiles.len());
    let mut scratch = vec![0u32; model.scratch_len()];
    for (seed, digit) in tiles {
        let mut pixels = [0u8; PIXELS];
        model.generate(
            vae_core::Sample::new(seed, digit),
            &mut scratch,
            &mut pixels,
        )?;
        images.push(pixels);
    }
    Ok(Grid::new(images, cols))
}

/// The images a firmware run printed (its `pixels N HEX` lines, in order) in rows of
/// `cols`.
pub fn firmware_grid(log: &str, cols: usize) -> Result<Grid> {
    let images: Vec<_> = FirmwareLog::parse(log)?
        .images
        .into_iter()
        .map(|image| image.pixels)
        .collect();
    if images.is_empty() {
        bail!("no `pixels` lines: is this the output of the firmware?");
    }
    Ok(Grid::new(images, cols))
}

#[cfg(test)]
mod tests {
    use super::normal_quantile;

    #[test]
    fn normal_quantiles_match_tables() {
        // Standard normal table values.
        for (p, z) in [
            (0.5, 0.0),
            (0.95, 1.644_853_6),
            (0.05, -1.644_853_6),
            (0.975, 1.959_964),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-6, "p = {p}");
        }
    }
}
