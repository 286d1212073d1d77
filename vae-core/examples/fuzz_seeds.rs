//! Writes the seed corpus of the `model_parse` fuzz target: small valid model files of
//! every precision, made by the real writer: dense ones, and one with transposed
//! convolutions (a map of 7x7x4, then 4 channels at stride 2, 2 at stride 2, 1 at stride
//! 1) per precision.
//!
//! ```text
//! cargo run -p vae-core --example fuzz_seeds -- fuzz/seeds/model_parse
//! ```

use std::path::PathBuf;

use vae_core::{encode, encoded_len, Activation, Architecture, Precision, Rng, PIXELS};
use vae_core::{TransposedConv, TransposedConvs};

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
        let tiny = Architecture::dense(1, 0, heapless::Vec::new(), Activation::Sigmoid);
        let mut rng = Rng::new(7);
        let values = (0..tiny.parameter_count()).map(|_| rng.uniform() - 0.5);
        let mut file = vec![0u8; encoded_len(&tiny, precision)?];
        encode(&tiny, precision, values, &mut file)?;
        std::fs::write(dir.join(format!("tiny-{}.vae", precision.name())), file)?;

        let conv = |channels, stride| TransposedConv {
            channels,
            kernel: 3,
            stride,
        };
        let layers = heapless::Vec::from_slice(&[conv(4, 2), conv(2, 2), conv(1, 1)])
            .map_err(|_| "three layers fit")?;
        let small_conv = Architecture {
            latent: 2,
            classes: 10,
            hidden: heapless::Vec::new(),
            activation: Activation::Relu,
            transposed_convs: Some(TransposedConvs {
                side: 7,
                channels: 4,
                layers,
            }),
            output: PIXELS as u16,
        };
        let values = (0..small_conv.parameter_count()).map(|_| rng.uniform() - 0.5);
        let mut file = vec![0u8; encoded_len(&small_conv, precision)?];
        encode(&small_conv, precision, values, &mut file)?;
        std::fs::write(dir.join(format!("conv-{}.vae", precision.name())), file)?;
    }
    Ok(())
}
