//! One optimization step: the mini-batch split into shards whose gradients are computed
//! independently, then Adam's update of every layer; [`TrainDevice`], which says how
//! a device runs those independent parts; and [`Training`], the model and optimizer
//! while they train, what the training loop calls.
//! On the CPU the shards run side by side on rayon's threads, on host buffers
//! ([`HostModel`], gradients derived by hand); a CUDA device (whose handles are not
//! `Send`) queues them one after another on its stream, through dfdx's tape.
//!
//! [`TrainDevice`]: crate::train::step::TrainDevice
//! [`Training`]: crate::train::step::Training
//! [`HostModel`]: crate::nn::host::HostModel

use dfdx::prelude::*;
use rand::SeedableRng;
use rayon::prelude::*;

use mnist::Dataset;

use crate::data::batch::Images;
use crate::eval::mean_loss::mean_loss;
use crate::foundation::config::DataOptions;
use crate::nn::adam::{Adam, AdamState, LayerUpdate};
use crate::nn::host::HostModel;
use crate::nn::model::{LossTerms, LossWeights, Vae};
use crate::nn::tape::{tape_gradients, LayerGradient};

/// A dfdx device the trainer can train on. `Synchronize` lets a caller wait for the
/// device's queued work (a GPU runs it asynchronously), for honest timings.
pub trait TrainDevice: Device<f32> + Synchronize {
    /// Shards each mini-batch is split into, computed side by side and summed (see
    /// [`sharded_gradients`]). Results depend on this number, never on the thread
    /// count.
    const SHARDS: usize;

    /// Whether the training images are kept on the device, uploaded once, rather than
    /// copied over for every batch ([`Images`]).
    const KEEPS_IMAGES: bool;

    /// Whether the device computes in the host's own memory, so that its training steps
    /// run on host buffers ([`HostModel`]) rather than through dfdx's operations.
    const ON_HOST: bool;

    /// Runs every shard and returns their results in order.
    fn run_shards(
        dev: &Self,
        vae: &Vae<Self>,
        shards: Vec<Shard<'_, Self>>,
    ) -> Vec<(LossTerms, Vec<LayerGradient<Self>>)> {
        shards.iter().map(|shard| shard.run(dev, vae)).collect()
    }

    /// Applies every layer's optimizer update.
    fn update_layers(work: Vec<LayerUpdate<'_, Self>>) {
        work.into_iter().for_each(LayerUpdate::apply);
    }
}

impl TrainDevice for Cpu {
    /// dfdx runs each elementwise operation on one thread, so two half-batches computed
    /// side by side keep two cores busy all through the step, where one batch keeps them
    /// busy only inside its matrix products. Fixed (not the core count) so that a run
    /// gives the same numbers on any machine.
    const SHARDS: usize = 2;
    /// Nothing to copy: the host's memory is the device's.
    const KEEPS_IMAGES: bool = false;
    /// dfdx's CPU operations each allocate their result and run on one thread, and its
    /// matrix products reach less of the cores' peak (BENCHMARKS.md).
    const ON_HOST: bool = true;

    fn run_shards(
        dev: &Self,
        vae: &Vae<Self>,
        shards: Vec<Shard<'_, Self>>,
    ) -> Vec<(LossTerms, Vec<LayerGradient<Self>>)> {
        // With a shard on each core, a matrix product split across cores only adds
        // hand-overs (measured: about 8 % slower); gemm, dfdx's CPU matmul, is told so
        // for the duration and set back after.
        let threshold = gemm_common::gemm::get_threading_threshold();
        if shards.len() > 1 {
            gemm_common::gemm::set_threading_threshold(usize::MAX);
        }
        let results = shards.par_iter().map(|shard| shard.run(dev, vae)).collect();
        gemm_common::gemm::set_threading_threshold(threshold);
        results
    }

    fn update_layers(work: Vec<LayerUpdate<'_, Self>>) {
        work.into_par_iter().for_each(LayerUpdate::apply);
    }
}

#[cfg(feature = "cuda")]
impl TrainDevice for dfdx::tensor::Cuda {
    /// One: a GPU wants the whole mini-batch in each kernel.
    const SHARDS: usize = 1;
    /// Measured on an H200 (BENCHMARKS.md, "GPU"): converting and copying each batch
    /// from the host cost more than the step's kernels at batch 1024.
    const KEEPS_IMAGES: bool = true;
    /// The GPU's own memory.
    const ON_HOST: bool = false;
}

/// What `--device cuda` runs on: dfdx's CUDA device; in a build without the `cuda`
/// feature, `Cpu`, only so that callers type-check (there [`cuda_device`] always fails).
#[cfg(feature = "cuda")]
pub type CudaDevice = dfdx::tensor::Cuda;
/// What `--device cuda` runs on: dfdx's CUDA device; in a build without the `cuda`
/// feature, `Cpu`, only so that callers type-check (there [`cuda_device`] always fails).
#[cfg(not(feature = "cuda"))]
pub type CudaDevice = Cpu;

/// The first NVIDIA GPU (CUDA device 0), its generator seeded with `seed`: the one place
/// `--device cuda` (of `vae` and of the examples) gets its device from.
#[cfg(feature = "cuda")]
pub fn cuda_device(seed: u64) -> anyhow::Result<CudaDevice> {
    use dfdx::tensor::Cache;
    let dev = dfdx::tensor::Cuda::try_build(0, seed).map_err(|e| {
        anyhow::anyhow!(
            "--device cuda: no usable NVIDIA GPU (CUDA device 0: {e}); check that \
             `nvidia-smi` lists a GPU, or use --device cpu"
        )
    })?;
    // Every dfdx operation allocates its result; with the cache (off by default) a freed
    // buffer goes back to the next allocation of its size instead of to the driver, and
    // a step allocates the same sizes every time.
    dev.try_enable_cache()
        .map_err(|e| anyhow::anyhow!("--device cuda: {e}"))?;
    Ok(dev)
}

/// The first NVIDIA GPU: in this build, without the `cuda` feature, an error that says
/// how to build with it.
#[cfg(not(feature = "cuda"))]
pub fn cuda_device(_seed: u64) -> anyhow::Result<CudaDevice> {
    anyhow::bail!(
        "--device cuda: this program was built without CUDA support; build it with \
         `cargo build --release -p trainer --features cuda` on a machine with the CUDA \
         toolkit, or `scripts/build-cuda.sh` (see README, \"Training on an NVIDIA GPU\")"
    )
}

/// One shard of a mini-batch: see [`sharded_gradients`].
pub struct Shard<'a, D: Device<f32>> {
    source: &'a Images<'a, D>,
    indices: &'a [usize],
    seed: u64,
    images: usize,
    weights: LossWeights,
}

impl<D: Device<f32>> Shard<'_, D> {
    /// Draws the shard's batch and returns its loss terms and gradients.
    pub fn run(&self, dev: &D, vae: &Vae<D>) -> (LossTerms, Vec<LayerGradient<D>>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        let batch = self.source.batch(dev, self.indices, &vae.config, &mut rng);
        tape_gradients(vae, &batch, self.images, self.weights)
    }
}

/// Loss terms and gradients of one mini-batch (images `indices` of `images`), split into
/// [`TrainDevice::SHARDS`] near-equal parts that are drawn (binarization, noise) and
/// differentiated independently (in parallel on the CPU), each from its own generator
/// seeded from `rng`.
/// The terms are the mini-batch's; the gradients are one list per shard, to be summed
/// (by [`Adam::layer_updates`]). `weights` are the loss terms' weights.
pub fn sharded_gradients<D: TrainDevice>(
    dev: &D,
    vae: &Vae<D>,
    (images, indices): (&Images<D>, &[usize]),
    rng: &mut impl rand::Rng,
    weights: LossWeights,
) -> (LossTerms, Vec<Vec<LayerGradient<D>>>) {
    let shards: Vec<Shard<D>> = shard_parts::<D>(indices, rng)
        .into_iter()
        .map(|(part, seed)| Shard {
            source: images,
            indices: part,
            seed,
            images: indices.len(),
            weights,
        })
        .collect();
    let (terms, grads): (Vec<LossTerms>, _) = D::run_shards(dev, vae, shards).into_iter().unzip();
    (terms.into_iter().sum(), grads)
}

/// The mini-batch `indices` in [`TrainDevice::SHARDS`] near-equal parts, each with the
/// seed of the generator its batch is drawn with, drawn from `rng` in order.
fn shard_parts<'a, D: TrainDevice>(
    indices: &'a [usize],
    rng: &mut impl rand::Rng,
) -> Vec<(&'a [usize], u64)> {
    let size = indices.len().div_ceil(D::SHARDS.max(1)).max(1);
    indices.chunks(size).map(|part| (part, rng.gen())).collect()
}

/// One optimization step on the mini-batch `indices` of `images`: its gradients
/// ([`sharded_gradients`]), then Adam's update of every layer, run by the device.
/// Returns the mini-batch's loss terms; when its objective is not finite the model is
/// left as it was, for the caller to stop.
pub fn train_step<D: TrainDevice>(
    vae: &mut Vae<D>,
    adam: &mut Adam<D>,
    batch: (&Images<D>, &[usize]),
    rng: &mut impl rand::Rng,
    weights: LossWeights,
) -> LossTerms {
    let dev = vae.device();
    let (terms, grads) = sharded_gradients(&dev, vae, batch, rng, weights);
    if terms.objective(&weights).is_finite() {
        D::update_layers(adam.layer_updates(vae, grads));
        if vae.config.critic_spectral_norm {
            if let Some(critic) = &mut vae.critic {
                critic.normalize_spectra();
            }
        }
    }
    terms
}

/// A model and its optimizer while they train: the one owner of the weights and of
/// Adam's state from the first step to the last. On the CPU they live in host buffers
/// ([`HostModel`]: the hand-derived gradients, both cores); on any other device in its
/// dfdx tensors, trained through the tape ([`train_step`]). Either way the same shards
/// and draws. Whatever reads the model (evaluation, checkpoints, pictures) asks for it
/// ([`Self::model`]).
#[allow(clippy::large_enum_variant)] // one a run, made once: its size costs nothing
pub enum Training<D: TrainDevice> {
    /// On the host's buffers.
    Host {
        /// The weights and Adam's state.
        host: HostModel,
        /// The device [`Training::model`] puts the model on.
        dev: D,
    },
    /// On the device, in dfdx tensors.
    Device {
        /// The weights.
        vae: Vae<D>,
        /// Adam's state.
        adam: Adam<D>,
    },
}

impl<D: TrainDevice> Training<D> {
    /// `vae` trained by Adam from `adam`: on host buffers where the device computes in
    /// the host's memory ([`TrainDevice::ON_HOST`]), else through dfdx's tape.
    pub fn new(vae: Vae<D>, adam: AdamState) -> anyhow::Result<Self> {
        if D::ON_HOST {
            adam.check(&vae)?;
            let dev = vae.device();
            return Ok(Training::Host {
                host: HostModel::new(&vae, Some(adam)),
                dev,
            });
        }
        Self::through_the_tape(vae, adam)
    }

    /// `vae` trained by Adam from `adam` through dfdx's tape and tensor operations,
    /// whatever the device ([`Self::new`] chooses this for every device but the CPU).
    pub fn through_the_tape(vae: Vae<D>, adam: AdamState) -> anyhow::Result<Self> {
        let adam = Adam::new(&vae, adam)?;
        Ok(Training::Device { vae, adam })
    }

    /// One optimization step on the mini-batch `indices` of `images` at learning rate
    /// `lr`, with the loss terms' weights `weights`. Returns the mini-batch's
    /// loss terms; when its objective is not finite the model is left as it was.
    pub fn step(
        &mut self,
        (images, indices): (&Images<D>, &[usize]),
        rng: &mut impl rand::Rng,
        weights: LossWeights,
        lr: f32,
    ) -> LossTerms {
        match self {
            Training::Host { host, .. } => {
                // The shards and their generators' seeds, as `sharded_gradients` makes them.
                let parts = shard_parts::<D>(indices, rng);
                host.step(images.on_host(), &parts, weights, lr)
            }
            Training::Device { vae, adam } => {
                adam.settings.lr = lr;
                train_step(vae, adam, (images, indices), rng, weights)
            }
        }
    }

    /// The device the model is given on.
    pub fn device(&self) -> D {
        match self {
            Training::Host { dev, .. } => dev.clone(),
            Training::Device { vae, .. } => vae.device(),
        }
    }

    /// The model as it stands.
    pub fn model(&self) -> anyhow::Result<Vae<D>> {
        match self {
            Training::Host { host, dev } => host.model(dev),
            Training::Device { vae, .. } => Ok(vae.clone()),
        }
    }

    /// Replaces the weights with `vae`'s (of the same shape), Adam's state kept.
    pub fn set_weights(&mut self, weights: &Vae<D>) -> anyhow::Result<()> {
        match self {
            Training::Host { host, .. } => host.set_weights(weights),
            Training::Device { vae, .. } => {
                if weights.config != vae.config {
                    anyhow::bail!("the weights given are not of the model's shape");
                }
                *vae = weights.clone();
                Ok(())
            }
        }
    }

    /// Adam's state as it stands.
    pub fn adam_state(&self) -> anyhow::Result<AdamState> {
        match self {
            Training::Host { host, .. } => host
                .adam_state()
                .ok_or_else(|| anyhow::anyhow!("this model has no optimizer")),
            Training::Device { adam, .. } => Ok(adam.state()),
        }
    }

    /// The mean loss terms on `data` prepared as `options` say, one z sample per image,
    /// noise drawn from `seed`: what training reports after each epoch.
    pub fn mean_loss(&mut self, data: &Dataset, options: DataOptions, seed: u64) -> LossTerms {
        match self {
            Training::Host { host, .. } => host.mean_loss(data, options, seed),
            Training::Device { vae, .. } => mean_loss(vae, data, options, seed),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::foundation::config::ModelConfig;
    use crate::foundation::testing::{
        conv_model_kinds, model_kinds, random_dataset, relative_error,
    };
    use crate::nn::spectral::spectral_norm;

    /// Ten training steps on the host leave the weights and Adam's state where ten
    /// steps through dfdx's tape leave them (same shards, same draws), to 1e-4
    /// relative: the gradients agree to rounding (`nn::host`'s tests), which Adam's
    /// division by the root of the second moment amplifies where that moment is small.
    /// Every kind of model, convolutional ones included, and one with a spectrally
    /// normalized critic (each step moves its spectral norms off 1, and both paths bring
    /// them back). Not the
    /// importance-weighted
    /// bound: its gradients agree to 1e-5 rather than 1e-7 (each draw's weight is the
    /// exponential of a sum of 784 f32 terms, rounded in another order), and Adam's first
    /// step, a step of the learning rate in the direction of each gradient's sign,
    /// turns that into a difference of 7e-3 in the weights whose gradients are near 0;
    /// `nn::host`'s tests hold its gradients to the tape's.
    #[test]
    fn steps_match_the_tape_steps() {
        let dev = Cpu::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let data = random_dataset(40, &mut rng);
        let critic = ModelConfig {
            critic_hidden: vec![16],
            critic_spectral_norm: true,
            ..model_kinds()[2].clone()
        };
        let kinds = model_kinds().into_iter().chain(conv_model_kinds());
        for config in kinds.chain([critic]) {
            let options = DataOptions {
                prior: !config.critic_hidden.is_empty(),
                ..DataOptions::default()
            };
            let images = Images::new(&dev, &data, &config, options, false);
            let start = Vae::new(&dev, &config, &mut rng);
            let [tape, host] = [false, true].map(|on_host| {
                let adam = AdamState::new(&start, 1e-3);
                let mut training = if on_host {
                    Training::new(start.clone(), adam).unwrap()
                } else {
                    Training::through_the_tape(start.clone(), adam).unwrap()
                };
                assert_eq!(matches!(training, Training::Host { .. }), on_host);
                let mut rng = rand::rngs::StdRng::seed_from_u64(5);
                for s in 0..10 {
                    let indices: Vec<usize> = (s..s + 9).collect();
                    let weights = LossWeights {
                        kl: 1.0,
                        classifier: 2.0,
                        adversarial: 3.0,
                        features: 0.5,
                    };
                    training.step((&images, &indices), &mut rng, weights, 1e-3);
                }
                (training.model().unwrap(), training.adam_state().unwrap())
            });
            let ((tape_vae, tape_adam), (host_vae, host_adam)) = (tape, host);
            for layer in host_vae.critic.iter().flat_map(|c| &c.layers) {
                let sigma = spectral_norm(&layer.weight.as_vec(), *layer.weight.shape());
                assert!(
                    (sigma - 1.0).abs() < 1e-4,
                    "the critic's spectral norm is {sigma}"
                );
            }
            assert_eq!(tape_adam.settings.steps(), host_adam.settings.steps());
            for ((name, a), (_, b)) in tape_vae.layers().iter().zip(host_vae.layers()) {
                let w = relative_error(&b.weight.as_vec(), &a.weight.as_vec());
                assert!(w < 1e-4, "{config:?} {name}: {w:e}");
            }
            for (a, b) in tape_adam.moments.iter().zip(&host_adam.moments) {
                for (a, b) in a.iter().zip(b) {
                    assert!(relative_error(b, a) < 1e-4, "{config:?}");
                }
            }
        }
    }
}
