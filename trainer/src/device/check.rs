//! `vae device-check`: a smoke test of every code path training takes on a device, each
//! compared with the same computation on the CPU from the same inputs: creating the
//! device, the matrix product (cuBLAS on CUDA), the training step's kernels (the
//! gradients through dfdx's tape, [`crate::nn::tape`]) and Adam's update
//! ([`crate::nn::adam`], run as [`TrainDevice::update_layers`] runs it). Generic over
//! [`TrainDevice`], so it is built and tested on the CPU too, where it compares the CPU
//! with itself.
//!
//! dfdx's CUDA backend reports many failures by panicking (an `unwrap` inside dfdx):
//! every stage runs inside `catch_unwind`, with the panic message kept from the terminal,
//! and a panic becomes that stage's failure, with a hint where the cause is a known one.
//!
//! [`TrainDevice`]: crate::train::step::TrainDevice
//! [`TrainDevice::update_layers`]: crate::train::step::TrainDevice::update_layers

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use dfdx::prelude::*;
use mnist::Dataset;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vae_core::PIXELS;

use crate::data::batch::{Batch, HostBatch, Images};
use crate::foundation::config::{DataOptions, ModelConfig, Preset, TrainConfig};
use crate::nn::adam::{Adam, AdamState};
use crate::nn::model::{LossTerms, LossWeights, Vae};
use crate::nn::tape::{tape_gradients, LayerGradient};
use crate::train::step::TrainDevice;

/// Tolerance of the matrix product, relative to the largest magnitude of the CPU's
/// result. Each entry is a sum of 784 products of values in [-1, 1], which the device
/// may add in another order (cuBLAS splits the sum into tiles; the CPU's gemm into its
/// own blocks): f32 rounding then differs by a few ulps of the partial sums, about
/// sqrt(784) x 6e-8 ~ 2e-6 of a typical entry at worst in practice, less relative to the
/// largest. 1e-5 leaves room for that and still catches a reduced-precision product
/// (TF32 keeps 10 mantissa bits: errors near 1e-3) or a wrong one (errors near 1).
pub const MATMUL_TOLERANCE: f32 = 1e-5;

/// Tolerance of the loss terms, gradients and updated weights, relative to each tensor's
/// largest magnitude (a loss term's: its own, or 1 if smaller). A training step chains
/// about ten matrix products (sums of up to 784 terms in another order) with exp, ln
/// and sigmoid, whose CUDA versions differ from the CPU's by an ulp or two; forward and
/// backward through the whole network these differences grow to around 1e-5 of a
/// tensor's scale. 1e-3 leaves two orders of magnitude for that, while a wrong kernel
/// (a wrong index, a missing term, a stale buffer) is off by far more than 1e-3.
pub const STEP_TOLERANCE: f32 = 1e-3;

/// Images in the check's batch.
const BATCH: usize = 64;

/// Stage names, in the order they run.
pub const DEVICE: &str = "device";
/// See [`DEVICE`].
pub const MATRIX_PRODUCT: &str = "matrix product (cuBLAS on CUDA)";
/// See [`DEVICE`].
pub const TRAINING_STEP: &str = "training step kernels (precompiled)";
/// See [`DEVICE`].
pub const ADAM: &str = "Adam update";
/// See [`DEVICE`].
pub const GATHERED_BATCH: &str = "batches gathered on the device";

/// One stage's outcome.
pub struct Stage {
    /// What was checked (one of the names above).
    pub name: &'static str,
    /// How closely the device agreed with the CPU, or why the stage failed.
    pub outcome: Result<String, String>,
}

impl Stage {
    /// Whether the stage passed.
    pub fn passed(&self) -> bool {
        self.outcome.is_ok()
    }
}

impl fmt::Display for Stage {
    /// `ok   <stage>: <detail>` or `FAIL <stage>: <message>`, on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (status, text) = match &self.outcome {
            Ok(detail) => ("ok  ", detail),
            Err(message) => ("FAIL", message),
        };
        write!(f, "{status} {}: {}", self.name, text.replace('\n', " "))
    }
}

/// Runs every stage on the device `create` makes (described as `label` when it works),
/// handing each stage to `report` as soon as it is done, and returns them all. When the
/// device cannot be made, that is the only stage.
pub fn check<D: TrainDevice>(
    label: &str,
    create: impl FnOnce() -> anyhow::Result<D>,
    mut report: impl FnMut(&Stage),
) -> Vec<Stage> {
    let mut stages = Vec::new();
    let mut done = |stage: Stage| {
        report(&stage);
        stages.push(stage);
    };
    let mut made = None;
    let stage = run_stage(DEVICE, || {
        made = Some(create().map_err(|e| format!("{e:#}"))?);
        Ok(format!("{label} ready"))
    });
    done(stage);
    let Some(dev) = made else {
        return stages;
    };
    done(run_stage(MATRIX_PRODUCT, || matrix_product(&dev)));
    done(run_stage(TRAINING_STEP, || training_step(&dev)));
    done(run_stage(ADAM, || adam_update(&dev)));
    done(run_stage(GATHERED_BATCH, || gathered_batch(&dev)));
    stages
}

/// Runs one stage, turning a panic into its failure; a failure gets a hint where its
/// cause is a known one.
pub fn run_stage(name: &'static str, f: impl FnOnce() -> Result<String, String>) -> Stage {
    let outcome = quietly(f)
        .and_then(|r| r)
        .map_err(|message| match hint(&message) {
            Some(hint) => format!("{message} (hint: {hint})"),
            None => message,
        });
    Stage { name, outcome }
}

thread_local! {
    /// Whether this thread is inside [`quietly`].
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// Where the last quiet panic of this thread happened.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// `f()`, or its panic's message. While `f` runs, this thread's panics are not printed
/// (the hook installed once here passes other threads' panics, and this thread's outside
/// `quietly`, to the hook that was there before).
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.get() {
                let place = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()));
                LOCATION.set(place);
            } else {
                previous(info);
            }
        }));
    });
    QUIET.set(true);
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.set(false);
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string());
        match LOCATION.take() {
            Some(place) => format!("panicked at {place}: {message}"),
            None => format!("panicked: {message}"),
        }
    })
}

/// What to do about a failure whose message names a known cause.
fn hint(message: &str) -> Option<&'static str> {
    let known: [(&[&str], &str); 5] = [
        (
            &["UNSUPPORTED_PTX_VERSION"],
            "the PTX was built for a newer CUDA than this GPU's driver supports; rebuild \
             with CUDA_VERSION=<the CUDA version `nvidia-smi` shows> scripts/build-cuda.sh, \
             or update the driver",
        ),
        (
            &["NO_BINARY_FOR_GPU", "INVALID_PTX", "INVALID_IMAGE"],
            "the kernels were compiled for another GPU generation; rebuild with this GPU's \
             CUDA_COMPUTE_CAP (e.g. 80 for A100, 90 for H100) scripts/build-cuda.sh",
        ),
        (
            &["CUDA_ERROR_NO_DEVICE", "not found"],
            "no NVIDIA GPU found: check that `nvidia-smi` lists one and that \
             CUDA_VISIBLE_DEVICES does not hide it",
        ),
        (
            &["OUT_OF_MEMORY"],
            "the GPU is out of memory: see `nvidia-smi` for other processes holding it",
        ),
        (
            &["nvrtc", "NVRTC"],
            "a kernel compiled at run time failed; the trainer should use none (see \
             clippy.toml): report which operation",
        ),
    ];
    known
        .into_iter()
        .find(|(needles, _)| needles.iter().any(|n| message.contains(n)))
        .map(|(_, hint)| hint)
}

/// The largest difference between `ours` and `reference`, relative to the largest
/// magnitude in `reference`; an error naming `what` when that exceeds `tolerance`, when
/// the lengths differ or when a value is not finite.
pub fn compare(what: &str, ours: &[f32], reference: &[f32], tolerance: f32) -> Result<f32, String> {
    if ours.len() != reference.len() {
        return Err(format!(
            "{what}: {} values, the CPU {}",
            ours.len(),
            reference.len()
        ));
    }
    let pairs = || ours.iter().zip(reference);
    if let Some(i) = pairs().position(|(a, b)| !a.is_finite() || !b.is_finite()) {
        return Err(format!(
            "{what}: value {i} is {} (CPU: {})",
            ours[i], reference[i]
        ));
    }
    let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let (worst, diff) = pairs()
        .map(|(a, b)| (a - b).abs())
        .enumerate()
        .fold((0, 0.0f32), |w, (i, d)| if d > w.1 { (i, d) } else { w });
    let error = if diff == 0.0 {
        0.0
    } else if scale == 0.0 {
        f32::INFINITY
    } else {
        diff / scale
    };
    if error <= tolerance {
        Ok(error)
    } else {
        Err(format!(
            "{what}: relative error {error:.1e} > {tolerance:.0e} (value {worst}: {} here, \
             {} on the CPU)",
            ours[worst], reference[worst]
        ))
    }
}

/// Uniform values in [-1, 1).
fn uniform(n: usize, rng: &mut impl Rng) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

fn product<E: Device<f32>>(
    dev: &E,
    a: &[f32],
    b: &[f32],
    (m, k, n): (usize, usize, usize),
) -> Vec<f32> {
    let a = dev.tensor_from_vec(a.to_vec(), (m, k));
    let b = dev.tensor_from_vec(b.to_vec(), (k, n));
    a.matmul(b).as_vec()
}

/// (64 x 784) x (784 x 400) on the device and on the CPU.
fn matrix_product<D: TrainDevice>(dev: &D) -> Result<String, String> {
    let shape = (BATCH, PIXELS, 400);
    let mut rng = StdRng::seed_from_u64(1);
    let a = uniform(shape.0 * shape.1, &mut rng);
    let b = uniform(shape.1 * shape.2, &mut rng);
    let ours = product(dev, &a, &b, shape);
    let reference = product(&Cpu::default(), &a, &b, shape);
    let error = compare("product", &ours, &reference, MATMUL_TOLERANCE)?;
    Ok(format!(
        "({BATCH}x{PIXELS})x({PIXELS}x400), max relative error {error:.1e} \
         (tolerance {MATMUL_TOLERANCE:.0e})"
    ))
}

/// Batches of both models, drawn from a made-up dataset kept on the device ([`Images`],
/// as `vae train` keeps MNIST where [`TrainDevice::KEEPS_IMAGES`]), against the same
/// batches made on the CPU: equal bit for bit, since gathering only copies.
fn gathered_batch<D: TrainDevice>(dev: &D) -> Result<String, String> {
    let mut rng = StdRng::seed_from_u64(3);
    let n = 300;
    let data = Dataset {
        pixels: (0..n * PIXELS).map(|_| rng.gen()).collect(),
        labels: (0..n).map(|_| rng.gen_range(0..10)).collect(),
    };
    let indices: Vec<usize> = (0..BATCH).map(|_| rng.gen_range(0..n)).collect();
    let options = DataOptions::default();
    for (name, config) in models() {
        let cpu = Cpu::default();
        let host = Batch::new(
            &cpu,
            &data,
            &indices,
            &config,
            options,
            &mut StdRng::seed_from_u64(4),
        );
        let ours = Images::new(dev, &data, &config, options, true).batch(
            dev,
            &indices,
            &config,
            &mut StdRng::seed_from_u64(4),
        );
        let pairs = ours.parts().into_iter().zip(host.parts());
        for ((what, a), (_, b)) in pairs {
            if a != b {
                return Err(format!(
                    "{name} model: the gathered batch's {what} differs from the CPU's"
                ));
            }
        }
    }
    Ok(format!(
        "default and classic models, {BATCH} of {n} images: equal to the CPU's batches bit for bit"
    ))
}

/// The two models the check trains: the default conditional one and the classic
/// 784-400-20-400-784 unconditional VAE.
fn models() -> [(&'static str, ModelConfig); 2] {
    [Preset::Default, Preset::Classic].map(|preset| (preset.name(), preset.config().model))
}

/// A batch of `BATCH` images for a model of shape `config`, with `samples` draws of
/// noise per image: pixels uniform in [0, 1], random labels, noise uniform in [-1, 1].
fn random_batch(config: &ModelConfig, samples: usize, rng: &mut impl Rng) -> HostBatch {
    let target = (0..BATCH * PIXELS).map(|_| rng.gen()).collect();
    let labels = match config.classes {
        0 => Vec::new(),
        classes => (0..BATCH)
            .map(|_| rng.gen_range(0..classes as u8))
            .collect(),
    };
    HostBatch {
        len: BATCH,
        target,
        noisy: None,
        labels,
        noise: uniform(BATCH * samples * config.latent, rng),
        prior: match config.critic_hidden.is_empty() {
            true => Vec::new(),
            false => uniform(BATCH * config.latent, rng),
        },
    }
}

/// A model of shape `config` on the CPU and its random batch with `samples` draws of
/// noise per image, the same every time.
fn setup(config: &ModelConfig, samples: usize) -> (Vae<Cpu>, HostBatch) {
    let mut rng = StdRng::seed_from_u64(2);
    let vae = Vae::new(&Cpu::default(), config, &mut rng);
    let batch = random_batch(config, samples, &mut rng);
    (vae, batch)
}

/// Loss terms and gradients of `vae` on `batch` through dfdx's tape (the step of every
/// device but the CPU), with the default loss weights and, for a model with a critic,
/// the critic's terms weighted 30 and 1: the ELBO's, or the importance-weighted bound's
/// for a batch of several draws an image.
fn gradients<E: Device<f32>>(
    vae: &Vae<E>,
    batch: &HostBatch,
) -> (LossTerms, Vec<LayerGradient<E>>) {
    let weights = LossWeights {
        adversarial: 30.0,
        features: 1.0,
        ..LossWeights::of(&TrainConfig::default())
    };
    let batch = Batch::upload(&vae.device(), batch.clone(), &vae.config);
    tape_gradients(vae, &batch, BATCH, weights)
}

/// Every model's loss terms and gradients on the device against the CPU's, from the same
/// weights and batch; for the classic model also those of the importance-weighted bound
/// (`--importance-samples`), with 3 draws an image; the conditional convolutional
/// model's (`--preset conv`); and the default model's with a critic (`--critic-hidden`).
fn training_step<D: TrainDevice>(dev: &D) -> Result<String, String> {
    let (mut worst, mut terms, mut tensors) = (0.0f32, 0, 0);
    let [default, classic] = models();
    let importance = ("classic importance-weighted", classic.1.clone());
    let conv = (Preset::Conv.name(), Preset::Conv.config().model);
    let critic = ModelConfig {
        critic_hidden: vec![256],
        ..default.1.clone()
    };
    let critic = ("default with a critic", critic);
    let cases = [
        (default, 1),
        (classic, 1),
        (importance, 3),
        (conv, 1),
        (critic, 1),
    ];
    for ((name, config), samples) in cases {
        let (reference, batch) = setup(&config, samples);
        let ours = reference.to_device(dev);
        let (ref_terms, ref_grads) = gradients(&reference, &batch);
        let (our_terms, our_grads) = gradients(&ours, &batch);
        for (term, a, b) in [
            (
                "reconstruction",
                our_terms.reconstruction,
                ref_terms.reconstruction,
            ),
            ("KL", our_terms.kl, ref_terms.kl),
            ("classifier", our_terms.classifier, ref_terms.classifier),
            ("critic", our_terms.critic, ref_terms.critic),
            ("adversarial", our_terms.adversarial, ref_terms.adversarial),
            ("feature matching", our_terms.features, ref_terms.features),
        ] {
            // Relative to the term itself, or to 1 for a term near 0.
            let error = (a - b).abs() / b.abs().max(1.0);
            if error.is_nan() || error > STEP_TOLERANCE {
                return Err(format!(
                    "{name} model, {term} loss: {a} here, {b} on the CPU (relative error \
                     {error:.1e} > {STEP_TOLERANCE:.0e})"
                ));
            }
            worst = worst.max(error);
            terms += 1;
        }
        if our_grads.len() != ref_grads.len() {
            return Err(format!(
                "{name} model: {} gradients, the CPU {}",
                our_grads.len(),
                ref_grads.len()
            ));
        }
        let layers = reference.layers();
        for (((layer, _), g), r) in layers.iter().zip(&our_grads).zip(&ref_grads) {
            for (part, a, b) in [
                ("weight", g.weight.as_vec(), r.weight.as_vec()),
                ("bias", g.bias.as_vec(), r.bias.as_vec()),
            ] {
                let what = format!("{name} model, gradient of {layer}.{part}");
                worst = worst.max(compare(&what, &a, &b, STEP_TOLERANCE)?);
                tensors += 1;
            }
        }
    }
    Ok(format!(
        "default, classic and conv models (ELBO), classic (importance-weighted, 3 draws), \
         default with a critic, {BATCH} images: {terms} loss terms and {tensors} \
         gradients, max relative error {worst:.1e} (tolerance {STEP_TOLERANCE:.0e})"
    ))
}

/// Two Adam steps with the CPU's gradients on the device and on the CPU, from the same
/// weights: the change of every weight and bias compared (two steps, so that the second
/// reads the moments the first stored).
fn adam_update<D: TrainDevice>(dev: &D) -> Result<String, String> {
    let (mut worst, mut tensors) = (0.0f32, 0);
    let lr = TrainConfig::default().learning_rate;
    for (name, config) in models() {
        let (mut reference, batch) = setup(&config, 1);
        let (_, grads) = gradients(&reference, &batch);
        let start = reference.clone();
        let mut ours = reference.to_device(dev);
        let (mut ref_adam, mut our_adam) = (fresh_adam(&reference, lr)?, fresh_adam(&ours, lr)?);
        for _ in 0..2 {
            let ref_grads = grads
                .iter()
                .map(|g| copy_grad(g, &Cpu::default()))
                .collect();
            let our_grads = grads.iter().map(|g| copy_grad(g, dev)).collect();
            Cpu::update_layers(ref_adam.layer_updates(&mut reference, vec![ref_grads]));
            D::update_layers(our_adam.layer_updates(&mut ours, vec![our_grads]));
        }
        let layers = start.layers();
        let after = reference.layers();
        let moved = ours.layers();
        for (((layer, s), r), o) in layers.iter().zip(&after).zip(&moved) {
            for (part, before, r, o) in [
                (
                    "weight",
                    s.weight.as_vec(),
                    r.1.weight.as_vec(),
                    o.1.weight.as_vec(),
                ),
                (
                    "bias",
                    s.bias.as_vec(),
                    r.1.bias.as_vec(),
                    o.1.bias.as_vec(),
                ),
            ] {
                let delta = |v: Vec<f32>| -> Vec<f32> {
                    v.iter().zip(&before).map(|(a, b)| a - b).collect()
                };
                let what = format!("{name} model, update of {layer}.{part}");
                worst = worst.max(compare(&what, &delta(o), &delta(r), STEP_TOLERANCE)?);
                tensors += 1;
            }
        }
    }
    Ok(format!(
        "2 steps of default and classic models: {tensors} parameter updates, max relative \
         error {worst:.1e} (tolerance {STEP_TOLERANCE:.0e})"
    ))
}

/// Adam at learning rate `lr` with no step taken, for `model`.
fn fresh_adam<E: Device<f32>>(model: &Vae<E>, lr: f32) -> Result<Adam<E>, String> {
    Adam::new(model, AdamState::new(model, lr)).map_err(|e| e.to_string())
}

fn copy_grad<E: Device<f32>>(g: &LayerGradient<Cpu>, dev: &E) -> LayerGradient<E> {
    LayerGradient {
        weight: dev.tensor_from_vec(g.weight.as_vec(), *g.weight.shape()),
        bias: dev.tensor_from_vec(g.bias.as_vec(), *g.bias.shape()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On the CPU, compared with itself, every stage runs and passes. This checks the
    /// stages' code and their order, not that a difference is caught: that the
    /// comparison fails on an injected fault is `a_perturbed_tensor_fails_the_comparison`.
    #[test]
    fn every_stage_passes_on_the_cpu() {
        let mut lines = Vec::new();
        let stages = check("CPU", || Ok(Cpu::default()), |s| lines.push(s.to_string()));
        let names: Vec<_> = stages.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [DEVICE, MATRIX_PRODUCT, TRAINING_STEP, ADAM, GATHERED_BATCH]
        );
        assert_eq!(lines.len(), stages.len());
        for line in &lines {
            assert!(line.starts_with("ok   "), "{lines:#?}");
        }
    }

    /// A real gradient, perturbed by a little more than the tolerance in one entry, fails
    /// the comparison; so do a NaN, an infinity, a wrong length, and a non-zero tensor
    /// where the CPU has zeros. The unperturbed one passes exactly.
    #[test]
    fn a_perturbed_tensor_fails_the_comparison() {
        let (vae, batch) = setup(&ModelConfig::default(), 1);
        let (_, grads) = gradients(&vae, &batch);
        let reference = grads[0].weight.as_vec();
        assert_eq!(
            compare("g", &reference, &reference, STEP_TOLERANCE),
            Ok(0.0)
        );

        let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let mut perturbed = reference.clone();
        perturbed[123] += 2.0 * STEP_TOLERANCE * scale;
        let err = compare("g", &perturbed, &reference, STEP_TOLERANCE).unwrap_err();
        assert!(err.contains("value 123"), "{err}");

        for bad in [f32::NAN, f32::INFINITY] {
            let mut broken = reference.clone();
            broken[7] = bad;
            let err = compare("g", &broken, &reference, STEP_TOLERANCE).unwrap_err();
            assert!(err.contains("value 7"), "{err}");
        }
        assert!(compare("g", &reference[1..], &reference, STEP_TOLERANCE).is_err());
        assert!(compare("g", &[1e-30], &[0.0], STEP_TOLERANCE).is_err());
    }

    /// A stage that panics (as dfdx's CUDA backend does) fails with the panic's message
    /// and the hint for its cause, and the check goes on; a device that cannot be made
    /// is the one failing stage.
    #[test]
    fn panics_and_missing_devices_are_failures() {
        let stage = run_stage(TRAINING_STEP, || {
            panic!(
                "called `Result::unwrap()` on an `Err` value: CUDA_ERROR_UNSUPPORTED_PTX_VERSION"
            )
        });
        let line = stage.to_string();
        assert!(line.starts_with("FAIL training step"), "{line}");
        assert!(line.contains("UNSUPPORTED_PTX_VERSION"), "{line}");
        assert!(
            line.contains("hint: the PTX was built for a newer CUDA"),
            "{line}"
        );
        assert!(line.contains("device/check.rs"), "{line}");

        let stages = check::<Cpu>("none", || anyhow::bail!("no such device"), |_| {});
        assert_eq!(stages.len(), 1);
        assert_eq!(stages[0].outcome, Err("no such device".to_string()));
    }
}
