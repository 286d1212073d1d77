//! The trained decoder in dfdx against `vae-core`'s decoder reading its exported file,
//! and the committed model files against a fresh export of the committed checkpoint.

use dfdx::prelude::*;
use trainer::foundation::run_dir::RunDir;
use trainer::output::export::model_file;
use trainer::train::checkpoint;
use vae_core::{Model, Precision, MAX_WIDTH, PIXELS};
use vae_tests::{default_model_dir, latents, workspace};

#[test]
fn dfdx_forward_matches_vae_core_decode_of_the_f32_export() {
    let dev = Cpu::default();
    let (_, vae) = checkpoint::load(&dev, &RunDir::new(default_model_dir())).unwrap();
    let bytes = model_file(&vae, Precision::F32).unwrap();
    let model = Model::parse(&bytes).unwrap();
    let (latent, classes) = (vae.config.latent, vae.config.classes);
    let width = latent + classes;

    // 100 latents for each digit, as the decoder input [z, one-hot(digit)].
    let mut inputs = Vec::new();
    for digit in 0..10u8 {
        for z in latents(latent, 100) {
            let mut input = [0.0f32; MAX_WIDTH];
            let input = model.input(&z, Some(digit), &mut input).unwrap();
            assert_eq!(input.len(), width);
            inputs.push(input.to_vec());
        }
    }
    let rows = inputs.len();
    let batch = dev.tensor_from_vec(inputs.concat(), (rows, width));
    let reference = vae.decode(batch).as_vec();

    let mut max_abs = 0.0f32;
    let mut scratch = vec![0u32; model.scratch_len()];
    for (input, want) in inputs.iter().zip(reference.chunks_exact(PIXELS)) {
        let mut probs = [0.0f32; PIXELS];
        model.decode(input, &mut scratch, &mut probs).unwrap();
        for (p, q) in probs.iter().zip(want) {
            max_abs = max_abs.max((p - q).abs());
        }
    }
    println!("{rows} images: max |vae-core - dfdx| = {max_abs:.2e}");
    // Same f32 weights, different summation order (dfdx's blocked matrix product, with
    // fused multiply-adds where the CPU has them, against vae-core's plain left-to-right
    // sum): logits of magnitude ~10 agree to a few f32 ulps (~1e-6), and the sigmoid's
    // slope is at most 1/4. 1e-5 leaves a margin of several times that.
    assert!(max_abs < 1e-5, "max abs difference {max_abs}");
}

/// Every committed model folder's model files (the default model and the convolutional
/// ones have all three, the others f16 and i8) are byte for byte what `vae export` writes from its checkpoint; a
/// file of format version 2 (written before version 3) has the same decoder and payload
/// bytes as a fresh export, under its older header.
#[test]
fn committed_model_files_are_the_export_of_the_committed_checkpoint() {
    let mut files = 0;
    for name in [
        "default",
        "latent2",
        "unconditional",
        "iwae",
        "iwae-k5",
        "tutorial",
        "conv",
        "conv-unconditional",
    ] {
        let run = RunDir::new(workspace().join("models").join(name));
        let (_, vae) = checkpoint::load(&Cpu::default(), &run).unwrap();
        for precision in Precision::ALL {
            let path = run.model_file(precision);
            if !path.exists() {
                continue;
            }
            let committed = std::fs::read(&path).unwrap();
            let fresh = model_file(&vae, precision).unwrap();
            let (old, new) = (
                Model::parse(&committed).unwrap(),
                Model::parse(&fresh).unwrap(),
            );
            if old.header().version == vae_core::FORMAT_VERSION {
                assert!(
                    committed == fresh,
                    "{} differs from a fresh export",
                    path.display()
                );
            } else {
                // Written before format version 3: the same decoder and the same payload
                // bytes, under a header of the older version.
                assert_eq!(old.architecture(), new.architecture(), "{}", path.display());
                assert_eq!(old.precision(), new.precision(), "{}", path.display());
                let payload = |file: &[u8]| {
                    let len = old.architecture().payload_len(precision);
                    file[file.len() - len..].to_vec()
                };
                assert!(
                    payload(&committed) == payload(&fresh),
                    "{}: the weights differ from a fresh export",
                    path.display()
                );
            }
            files += 1;
        }
    }
    // 3 for the default model and each of the three convolutional ones, 2 for each of the
    // other four.
    assert_eq!(files, 20, "model files found");
}

/// A convolutional decoder (the tutorial's, and a conditional one with a dense hidden
/// layer) in dfdx against `vae-core`'s streamed decoder reading its f32 export: the
/// same layers, the file's transposed convolutions read as the trainer computes them.
#[test]
fn convolutional_decoders_match_vae_core_decode_of_the_f32_export() {
    use rand::SeedableRng;
    use trainer::foundation::config::{Convolutional, ModelConfig};
    use trainer::nn::model::Vae;

    let dev = Cpu::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(25);
    let tutorial = ModelConfig {
        latent: 2,
        encoder_hidden: vec![],
        decoder_hidden: vec![],
        convolutional: Some(Convolutional::tutorial()),
        ..ModelConfig::default()
    };
    let conditional = ModelConfig {
        decoder_hidden: vec![24],
        ..tutorial.clone()
    };
    for config in [tutorial.unconditional(), conditional] {
        let vae = Vae::new(&dev, &config, &mut rng);
        let bytes = model_file(&vae, Precision::F32).unwrap();
        let model = Model::parse(&bytes).unwrap();
        let width = config.decoder_input();
        let mut inputs = Vec::new();
        for (i, z) in latents(config.latent, 40).into_iter().enumerate() {
            // Latents of every scale, so that logits reach well past the sigmoid's knee.
            let z: Vec<f32> = z.iter().map(|v| v * (1 + i % 4) as f32).collect();
            let digit = (config.classes > 0).then_some((i % 10) as u8);
            let mut input = [0.0f32; MAX_WIDTH];
            inputs.push(model.input(&z, digit, &mut input).unwrap().to_vec());
        }
        let rows = inputs.len();
        let reference = vae
            .decode(dev.tensor_from_vec(inputs.concat(), (rows, width)))
            .as_vec();
        let mut scratch = vec![0u32; model.scratch_len()];
        let mut max_abs = 0.0f32;
        for (input, want) in inputs.iter().zip(reference.chunks_exact(PIXELS)) {
            let mut probs = [0.0f32; PIXELS];
            model.decode(input, &mut scratch, &mut probs).unwrap();
            for (p, q) in probs.iter().zip(want) {
                max_abs = max_abs.max((p - q).abs());
            }
        }
        println!("{rows} images: max |vae-core - dfdx| = {max_abs:.2e}");
        // As for the dense decoder above: the same f32 weights summed in another order.
        assert!(max_abs < 1e-5, "{config:?}: max abs difference {max_abs}");
    }
}
