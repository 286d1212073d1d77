//! Firmware for a Cortex-M4F that draws digits by itself.
//!
//! For now this crate embeds the committed default model and checks that `vae-core`
//! parses and runs it on the target; the `no_main` binary that prints digits under QEMU
//! and on a board comes with the firmware issue.
#![no_std]

use vae_core::{Error, Model, PIXELS};

/// The committed default model (f16), placed in flash.
pub static MODEL: &[u8] = include_bytes!("../../models/default/decoder-f16.vae");

/// Parses the embedded model and draws `digit` from `seed` into `pixels`.
pub fn draw(seed: u64, digit: u8, pixels: &mut [u8; PIXELS]) -> Result<(), Error> {
    Model::parse(MODEL)?.generate(seed, Some(digit), pixels)?;
    Ok(())
}
