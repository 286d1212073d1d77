//! What the workspace-level tests in `tests/tests/` share.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The MNIST folder the tests read (`data/mnist`, fetched by `scripts/fetch-mnist.sh`).
pub fn mnist_dir() -> PathBuf {
    workspace().join("data/mnist")
}

/// The first `n` images of one split of real MNIST; panics, naming the fix, when
/// `data/mnist` is missing.
pub fn load_mnist(split: mnist::Split, n: usize) -> mnist::Dataset {
    mnist::Dataset::load(&mnist_dir(), split)
        .unwrap_or_else(|e| panic!("{e:#} (the tests need real MNIST)"))
        .truncated(n)
}

/// The committed default model's folder; or, where `VAE_TEST_MODEL_DIR` names another run
/// folder, that one: how `scripts/gpu/compare.sh` puts a CUDA-trained model through the
/// same quantization and label tests.
pub fn default_model_dir() -> PathBuf {
    match std::env::var_os("VAE_TEST_MODEL_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace().join("models/default"),
    }
}

/// A fresh, empty scratch folder for one test.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vae-tests-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch folder");
    dir
}

/// `count` latent codes drawn with the crate's own sampler, one per seed `0..count`.
pub fn latents(latent: usize, count: usize) -> Vec<Vec<f32>> {
    (0..count as u64)
        .map(|seed| {
            let mut z = vec![0.0f32; latent];
            vae_core::Rng::new(seed).fill_standard_normal(&mut z);
            z
        })
        .collect()
}

/// Decodes the latent code `z` with `digit` into `image`, as the web page's latent plane
/// does: [`Model::input`](vae_core::Model::input), then
/// [`Model::decode`](vae_core::Model::decode) in scratch of the model's length.
pub fn decode_latent(
    model: &vae_core::Model<'_>,
    z: &[f32],
    digit: Option<u8>,
    image: &mut impl vae_core::Canvas,
) -> Result<(), vae_core::Error> {
    let mut input = [0.0f32; vae_core::MAX_WIDTH];
    let input = model.input(z, digit, &mut input)?;
    model.decode(input, &mut vec![0u32; model.scratch_len()], image)
}
