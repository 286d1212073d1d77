//! What the firmware prints (`firmware/src/main.rs`), read back: the images it drew and
//! its own measurements. The one reader of that output: `vae firmware-png`, `vae
//! firmware-costs` (behind `scripts/firmware-report.sh`) and the firmware tests use it.

use anyhow::{bail, Context, Result};
use vae_core::PIXELS;

/// One image the firmware drew.
pub struct DrawnImage {
    /// What its `image N: ...` line said it is (empty without one).
    pub description: String,
    /// Its `pixels N HEX` line's grey levels.
    pub pixels: [u8; PIXELS],
}

/// A firmware run's output: the images in order, and its measurements where it printed
/// them.
#[derive(Default)]
pub struct FirmwareLog {
    /// Every `pixels` line, in order.
    pub images: Vec<DrawnImage>,
    /// The decoder's weight precision (`decoder: f16 weights, ...`).
    pub precision: Option<String>,
    /// The decoder's parameters.
    pub parameters: Option<u64>,
    /// Mean cost of a digit (of a sample, for an unconditional model) in the clock's
    /// unit (instructions under QEMU), everything included.
    pub cost_per_digit: Option<u64>,
    /// The same per multiply-accumulate, as printed (two decimals).
    pub cost_per_mac: Option<String>,
    /// Bytes of flash used, model included.
    pub flash: Option<u64>,
    /// Bytes of RAM used: statics and the peak stack.
    pub ram: Option<u64>,
}

impl FirmwareLog {
    /// Reads the firmware's output; lines it does not know are skipped. A `pixels` line
    /// that is not `pixels N` and 1,568 hex digits, or numbered out of order, is an
    /// error naming its line.
    pub fn parse(text: &str) -> Result<Self> {
        let mut log = FirmwareLog::default();
        let mut description = None;
        for (number, line) in text.lines().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let number_at = |i: usize| words.get(i).and_then(|w| w.parse().ok());
            if let Some(rest) = line.strip_prefix("image ") {
                description = rest.split_once(": ").map(|(_, text)| text.to_string());
            } else if let Some(rest) = line.strip_prefix("pixels ") {
                let pixels = pixels_line(rest, log.images.len())
                    .with_context(|| format!("line {}", number + 1))?;
                let description = description.take().unwrap_or_default();
                log.images.push(DrawnImage {
                    description,
                    pixels,
                });
            } else if line.starts_with("decoder: ") {
                log.precision = words.get(1).map(|w| w.to_string());
                log.parameters = number_at(3);
            } else if line.starts_with("cost per digit: ") || line.starts_with("cost per sample: ")
            {
                log.cost_per_digit = number_at(3);
                log.cost_per_mac = words.get(5).map(|w| w.trim_start_matches('(').to_string());
            } else if line.starts_with("flash: ") {
                log.flash = number_at(1);
            } else if line.starts_with("ram: ") {
                log.ram = number_at(1);
            }
        }
        Ok(log)
    }
}

/// The grey levels of the `pixels` line numbered `expected` (what follows `pixels `).
fn pixels_line(rest: &str, expected: usize) -> Result<[u8; PIXELS]> {
    let (index, hex) = rest.split_once(' ').unwrap_or((rest, ""));
    let hex = hex.trim_end();
    let bad = || "expected `pixels N` and 1,568 hex digits";
    if hex.len() != 2 * PIXELS || !hex.is_ascii() {
        bail!(bad());
    }
    if index.parse::<usize>().ok() != Some(expected) {
        bail!("expected image {expected}, found `pixels {index}`");
    }
    let mut pixels = [0u8; PIXELS];
    for (i, pixel) in pixels.iter_mut().enumerate() {
        *pixel = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).context(bad())?;
    }
    Ok(pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as the firmware prints them (`firmware/src/main.rs`'s `say!`s).
    #[test]
    fn reads_the_images_and_the_measurements() {
        let hex: String = (0..PIXELS).map(|i| format!("{:02x}", i % 251)).collect();
        let text = format!(
            "vae firmware on QEMU\n\
             model: models/default/decoder-f16.vae (207160 bytes)\n\
             decoder: f16 weights, 103568 parameters, 102400 multiply-accumulates per image\n\
             image 0: digit 7, seed 3\n  ..#..\npixels 0 {hex}\ncost 0 318000 instructions\n\
             pixels 1 {hex}\n\
             cost per digit: 318768 instructions (3.10 per multiply-accumulate, everything \
             included)\n\
             flash: 249488 bytes used of 256 KiB (model 207160 bytes)\n\
             ram: 9120 bytes used of 16 KiB (static 1000 + peak stack 8120)\ndone\n"
        );
        let log = FirmwareLog::parse(&text).unwrap();
        assert_eq!(log.images.len(), 2);
        assert_eq!(log.images[0].description, "digit 7, seed 3");
        assert_eq!(log.images[1].description, "");
        assert_eq!(log.images[1].pixels[300], (300 % 251) as u8);
        assert_eq!(log.precision.as_deref(), Some("f16"));
        assert_eq!(log.parameters, Some(103_568));
        assert_eq!(log.cost_per_digit, Some(318_768));
        assert_eq!(log.cost_per_mac.as_deref(), Some("3.10"));
        assert_eq!((log.flash, log.ram), (Some(249_488), Some(9120)));
    }

    #[test]
    fn a_broken_or_misnumbered_pixels_line_is_an_error_naming_it() {
        let hex = "00".repeat(PIXELS);
        for (text, message) in [
            ("pixels 0 00ff\n".to_string(), "line 1: expected `pixels N`"),
            (format!("x\npixels 1 {hex}\n"), "line 2: expected image 0"),
            (
                format!("pixels 0 {}zz\n", &hex[2..]),
                "line 1: expected `pixels N`",
            ),
        ] {
            let err = format!("{:#}", FirmwareLog::parse(&text).err().unwrap());
            assert!(err.starts_with(message), "{err}");
        }
    }
}
