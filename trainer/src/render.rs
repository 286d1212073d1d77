//! Grids of 28x28 grey images as PNG files.

use std::path::Path;

use anyhow::{Context, Result};
use vae_core::{IMAGE_SIDE, PIXELS};

use crate::io::write_atomic;

/// Lays `images` (each 784 grey levels) out in `rows` x `cols` tiles, each enlarged
/// `scale` times, separated by a 2-pixel grey gutter, and writes a greyscale PNG.
pub fn write_grid(
    path: &Path,
    images: &[[u8; PIXELS]],
    rows: usize,
    cols: usize,
    scale: usize,
) -> Result<()> {
    let bytes = encode_grid(images, rows, cols, scale)?;
    write_atomic(path, &bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// The PNG bytes of the grid [`write_grid`] writes.
pub fn encode_grid(
    images: &[[u8; PIXELS]],
    rows: usize,
    cols: usize,
    scale: usize,
) -> Result<Vec<u8>> {
    const GUTTER: usize = 2;
    const GUTTER_GREY: u8 = 96;
    let tile = IMAGE_SIDE * scale;
    let width = cols * tile + (cols + 1) * GUTTER;
    let height = rows * tile + (rows + 1) * GUTTER;
    let mut canvas = vec![GUTTER_GREY; width * height];
    for (k, image) in images.iter().enumerate().take(rows * cols) {
        let (r, c) = (k / cols, k % cols);
        let (top, left) = (GUTTER + r * (tile + GUTTER), GUTTER + c * (tile + GUTTER));
        for y in 0..tile {
            for x in 0..tile {
                let grey = image[(y / scale) * IMAGE_SIDE + x / scale];
                canvas[(top + y) * width + left + x] = grey;
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&canvas)?;
    writer.finish()?;
    Ok(out)
}
