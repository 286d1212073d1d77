//! Pictures made while or after training: a sample grid per epoch and their GIF.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dfdx::prelude::*;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use vae_core::PIXELS;

use crate::io::write_atomic;
use crate::model::Vae;
use crate::render::write_grid;

/// Columns of the per-epoch grid (rows: digits 0-9, or 8 rows for a plain VAE).
const SNAPSHOT_COLUMNS: usize = 8;

/// The folder of per-epoch grids in a run folder.
pub fn epochs_dir(run: &Path) -> PathBuf {
    run.join("epochs")
}

/// Decodes decoder inputs `(n, latent + classes)` with the dfdx model into 8-bit images.
pub fn decode_images<D: Device<f32>>(vae: &Vae<D>, input: Vec<f32>) -> Vec<[u8; PIXELS]> {
    let width = vae.config.decoder_input();
    let n = input.len() / width;
    let dev = vae.decoder.layers[0].weight.device().clone();
    let probs = vae.decode(dev.tensor_from_vec(input, (n, width))).as_vec();
    probs
        .chunks_exact(PIXELS)
        .map(|p| {
            let mut image = [0u8; PIXELS];
            for (pixel, &v) in image.iter_mut().zip(p) {
                *pixel = vae_core::to_pixel(v);
            }
            image
        })
        .collect()
}

/// The same grid every epoch: fixed latent codes (seed 0), one column each; for a
/// conditional model one row per digit, for a plain one eight rows of codes.
fn snapshot_images<D: Device<f32>>(vae: &Vae<D>) -> (Vec<[u8; PIXELS]>, usize) {
    let (latent, classes) = (vae.config.latent, vae.config.classes);
    let rows = if classes > 0 { classes } else { 8 };
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let codes: Vec<Vec<f32>> = (0..SNAPSHOT_COLUMNS * if classes > 0 { 1 } else { rows })
        .map(|_| {
            (0..latent)
                .map(|_| StandardNormal.sample(&mut rng))
                .collect()
        })
        .collect();
    let mut input = Vec::new();
    for row in 0..rows {
        for col in 0..SNAPSHOT_COLUMNS {
            if classes > 0 {
                input.extend(&codes[col]);
                input.extend((0..classes).map(|c| f32::from(u8::from(c == row))));
            } else {
                input.extend(&codes[row * SNAPSHOT_COLUMNS + col]);
            }
        }
    }
    (decode_images(vae, input), rows)
}

/// Writes `run/epochs/epoch-NNN.png`: the fixed grid decoded by the model as it is now.
pub fn epoch_snapshot<D: Device<f32>>(run: &Path, epoch: usize, vae: &Vae<D>) -> Result<()> {
    let dir = epochs_dir(run);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (images, rows) = snapshot_images(vae);
    write_grid(
        &dir.join(format!("epoch-{epoch:03}.png")),
        &images,
        rows,
        SNAPSHOT_COLUMNS,
        2,
    )
}

/// Assembles the grids `run/epochs/epoch-001.png` ... `epoch-{epochs}.png` that exist
/// (a resumed run may lack early ones) into `run/epochs.gif` (0.3 s per frame, the last
/// held for 2 s, looping).
pub fn epochs_gif(run: &Path, epochs: usize) -> Result<PathBuf> {
    let dir = epochs_dir(run);
    let mut frames = Vec::new();
    for epoch in 1..=epochs {
        let path = dir.join(format!("epoch-{epoch:03}.png"));
        if path.exists() {
            frames.push(read_grey_png(&path).with_context(|| format!("{}", path.display()))?);
        }
    }
    let out = run.join("epochs.gif");
    write_atomic(&out, &encode_gif(&frames)?)?;
    Ok(out)
}

/// A greyscale PNG as (width, height, pixels).
pub fn read_grey_png(path: &Path) -> Result<(u16, u16, Vec<u8>)> {
    let file = std::fs::File::open(path).context("cannot open")?;
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = decoder.read_info()?;
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf)?;
    if info.color_type != png::ColorType::Grayscale || info.bit_depth != png::BitDepth::Eight {
        anyhow::bail!("not an 8-bit greyscale PNG");
    }
    buf.truncate(info.buffer_size());
    Ok((u16::try_from(info.width)?, u16::try_from(info.height)?, buf))
}

/// An animated GIF of greyscale frames of one size.
pub fn encode_gif(frames: &[(u16, u16, Vec<u8>)]) -> Result<Vec<u8>> {
    let Some(&(width, height, _)) = frames.first() else {
        anyhow::bail!("no frames");
    };
    let palette: Vec<u8> = (0..=255u8).flat_map(|g| [g, g, g]).collect();
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, width, height, &palette)?;
        encoder.set_repeat(gif::Repeat::Infinite)?;
        for (k, (w, h, pixels)) in frames.iter().enumerate() {
            if (*w, *h) != (width, height) {
                anyhow::bail!("frame {} is {w}x{h}, not {width}x{height}", k + 1);
            }
            let mut frame = gif::Frame::from_indexed_pixels(width, height, pixels.clone(), None);
            frame.delay = if k + 1 == frames.len() { 200 } else { 30 };
            encoder.write_frame(&frame)?;
        }
    }
    Ok(out)
}

/// Registers the bundled DejaVu Sans with plotters (once), so plots need no system fonts.
fn fonts() -> Result<()> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(
            "sans-serif",
            plotters::style::FontStyle::Normal,
            dejavu::sans::regular(),
        )
        .is_ok()
    });
    anyhow::ensure!(ok, "the bundled font could not be loaded");
    Ok(())
}

/// Draws with plotters into an RGB canvas of `width` x `height` and writes it as PNG.
fn plot_png(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(
        plotters::drawing::DrawingArea<plotters::backend::BitMapBackend<'_>, plotters::coord::Shift>,
    ) -> Result<()>,
) -> Result<()> {
    use plotters::prelude::*;
    fonts()?;
    let mut rgb = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        draw(root.clone())?;
        root.present().map_err(plot_error)?;
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    write_atomic(path, &out).with_context(|| format!("cannot write {}", path.display()))
}

fn plot_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting failed: {e:?}")
}

/// Training and test loss per epoch (nats per image), from a run's history.
pub fn loss_curves(history: &[crate::train::EpochRecord], path: &Path) -> Result<()> {
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
pub fn latent_scatter(points: &[(f32, f32, u8)], path: &Path) -> Result<()> {
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
pub fn run_pictures(
    vae: &Vae<Cpu>,
    history: &[crate::train::EpochRecord],
    test: &crate::data::Dataset,
    (from, to): (usize, usize),
    out: &Path,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let dev = vae.decoder.layers[0].weight.device().clone();
    let (latent, classes) = (vae.config.latent, vae.config.classes);
    let width = latent + classes;
    let image = |i: usize| -> [u8; PIXELS] {
        let mut im = [0u8; PIXELS];
        im.copy_from_slice(test.image(i));
        im
    };
    // Decoder inputs [mu, class probabilities] of test images.
    let encode = |indices: &[usize]| -> Vec<Vec<f32>> {
        let x: Vec<f32> = indices
            .iter()
            .flat_map(|&i| test.image(i).iter().map(|&p| f32::from(p) / 255.0))
            .collect();
        let (mu, _, probs) = vae.encode(dev.tensor_from_vec(x, (indices.len(), PIXELS)));
        (0..indices.len())
            .map(|k| {
                let mut v = mu[k * latent..(k + 1) * latent].to_vec();
                if let Some(p) = &probs {
                    v.extend_from_slice(&p[k * classes..(k + 1) * classes]);
                }
                v
            })
            .collect()
    };

    let path = out.join("loss.png");
    loss_curves(history, &path)?;
    written.push(path);

    // Reconstructions: rows of originals, each followed by a row of their reconstructions.
    let shown: Vec<usize> = (0..20.min(test.len())).collect();
    let codes = encode(&shown);
    let recon = decode_images(vae, codes.concat());
    let mut tiles = Vec::new();
    for (orig, rec) in shown.chunks(10).zip(recon.chunks(10)) {
        tiles.extend(orig.iter().map(|&i| image(i)));
        tiles.extend_from_slice(rec);
    }
    let path = out.join("reconstructions.png");
    write_grid(&path, &tiles, tiles.len().div_ceil(10), 10, 2)?;
    written.push(path);

    // Morph between two test images' codes (label probabilities too), ends shown.
    anyhow::ensure!(
        from < test.len() && to < test.len(),
        "--from and --to must be test image indices below {}",
        test.len()
    );
    let ends = encode(&[from, to]);
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
    let mut tiles = vec![image(from)];
    tiles.extend(decode_images(vae, line));
    tiles.push(image(to));
    let path = out.join("morph.png");
    write_grid(&path, &tiles, 1, tiles.len(), 2)?;
    written.push(path);

    if classes > 0 {
        // Rows: digits; columns: ten latent codes (seed 0).
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let codes: Vec<Vec<f32>> = (0..10)
            .map(|_| {
                (0..latent)
                    .map(|_| StandardNormal.sample(&mut rng))
                    .collect()
            })
            .collect();
        let mut input = Vec::with_capacity(100 * width);
        for digit in 0..classes {
            for code in &codes {
                input.extend(code);
                input.extend((0..classes).map(|c| f32::from(u8::from(c == digit))));
            }
        }
        let path = out.join("conditional.png");
        write_grid(&path, &decode_images(vae, input), classes, 10, 2)?;
        written.push(path);
    }

    if latent == 2 {
        // The decoded latent plane at normal quantiles 0.05 ... 0.95, z2 upwards.
        const N: usize = 20;
        let q: Vec<f32> = (0..N)
            .map(|k| normal_quantile(0.05 + 0.9 * k as f64 / (N - 1) as f64) as f32)
            .collect();
        let mut input = Vec::with_capacity(N * N * width);
        for row in 0..N {
            for col in 0..N {
                input.extend([q[col], q[N - 1 - row]]);
                if classes > 0 {
                    // A conditional model's plane is drawn for the digit 0 ... hardly
                    // useful; spread the label uniformly instead.
                    input.extend((0..classes).map(|_| 1.0 / classes as f32));
                }
            }
        }
        let path = out.join("manifold.png");
        write_grid(&path, &decode_images(vae, input), N, N, 1)?;
        written.push(path);

        let all: Vec<usize> = (0..test.len()).collect();
        let mut points = Vec::with_capacity(test.len());
        for chunk in all.chunks(1000) {
            for (code, &i) in encode(chunk).iter().zip(chunk) {
                points.push((code[0], code[1], test.labels[i]));
            }
        }
        let path = out.join("latent-scatter.png");
        latent_scatter(&points, &path)?;
        written.push(path);
    }
    Ok(written)
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
