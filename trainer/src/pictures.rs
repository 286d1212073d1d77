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
