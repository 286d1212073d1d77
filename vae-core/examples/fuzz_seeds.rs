//! Writes the seed corpus of the `model_parse` fuzz target: small valid model files of
//! every precision, made by the real writer.
//!
//! ```text
//! cargo run -p vae-core --example fuzz_seeds -- fuzz/seeds/model_parse
//! ```

use std::path::PathBuf;

use vae_core::{encode, encoded_len, Activation, Architecture, Precision, Rng, PIXELS};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: fuzz_seeds DIR")?);
    std::fs::create_dir_all(&dir)?;
    for precision in [Precision::F32, Precision::F16, Precision::I8] {
        let mut buf = vec![0u8; 1 << 16];
        let example = vae_core::example_model(precision, &mut buf)?;
        std::fs::write(
            dir.join(format!("example-{}.vae", precision.name())),
            example,
        )?;

        // The smallest shape there is: z1 -> 784, no label, no hidden layer.
        let tiny = Architecture {
            latent: 1,
            classes: 0,
            hidden: heapless::Vec::new(),
            activation: Activation::Sigmoid,
            output: PIXELS as u16,
        };
        let mut rng = Rng::new(7);
        let values = (0..tiny.parameter_count()).map(|_| rng.uniform() - 0.5);
        let mut file = vec![0u8; encoded_len(&tiny, precision)?];
        encode(&tiny, precision, values, &mut file)?;
        std::fs::write(dir.join(format!("tiny-{}.vae", precision.name())), file)?;
    }
    Ok(())
}
