//! Writes a model file of the tutorial's convolutional decoder (latent 2, a 7x7x32 map,
//! transposed convolutions to 64, 32 and 1 channels) with made-up weights, in each
//! precision, as `DIR/decoder-{f32,f16,i8}.vae`: for running the firmware and the web
//! page with transposed convolutions until a trained model is committed.
//!
//! ```text
//! cargo run -p vae-core --example conv_model -- /tmp/conv
//! cd firmware && VAE_MODEL=/tmp/conv/decoder-i8.vae cargo run-m0
//! ```

use std::path::PathBuf;

use vae_core::Precision;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: conv_model DIR")?);
    std::fs::create_dir_all(&dir)?;
    for precision in Precision::ALL {
        let mut buf = vec![0u8; 1 << 18];
        let file = vae_core::example_conv_model(precision, &mut buf)?;
        let path = dir.join(format!("decoder-{}.vae", precision.name()));
        std::fs::write(&path, file)?;
        println!("{} ({} bytes)", path.display(), file.len());
    }
    Ok(())
}
