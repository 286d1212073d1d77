//! Pixels into image files: grids of 28x28 grey digits and plots as PNG, frames as an
//! animated GIF. What each picture shows is [`crate::output::pictures`]' business.

use std::path::Path;

use anyhow::{Context, Result};
use vae_core::{IMAGE_SIDE, PIXELS};

use crate::foundation::io::write_atomic;

/// Images of 28x28 grey levels laid out in rows and columns.
pub struct Grid {
    /// The images, row by row.
    pub images: Vec<[u8; PIXELS]>,
    /// Rows of the grid.
    pub rows: usize,
    /// Columns of the grid.
    pub cols: usize,
}

impl Grid {
    /// `images` in rows of `cols` (the last row may be short).
    pub fn new(images: Vec<[u8; PIXELS]>, cols: usize) -> Self {
        let cols = cols.clamp(1, images.len().max(1));
        let rows = images.len().div_ceil(cols);
        Grid { images, rows, cols }
    }

    /// Writes the grid as a PNG, each image enlarged `scale` times.
    pub fn write(&self, path: &Path, scale: usize) -> Result<()> {
        write_grid(path, &self.images, self.rows, self.cols, scale)
    }
}

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
    encode_png(
        (width as u32, height as u32),
        png::ColorType::Grayscale,
        &canvas,
    )
}

/// The bytes of an 8-bit PNG of `width` x `height` pixels of `color`, best compression.
pub fn encode_png(
    (width, height): (u32, u32),
    color: png::ColorType,
    data: &[u8],
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(data)?;
    writer.finish()?;
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
pub fn plot_png(
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
    let out = encode_png((width, height), png::ColorType::Rgb, &rgb)?;
    write_atomic(path, &out).with_context(|| format!("cannot write {}", path.display()))
}

pub fn plot_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting failed: {e:?}")
}
