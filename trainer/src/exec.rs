//! How a device runs the independent parts of a training step: the shards of a
//! mini-batch and the per-layer optimizer updates. On the CPU they run side by side on
//! rayon's threads (dfdx runs each elementwise operation on one thread); a CUDA device
//! (whose handles are not `Send`) queues them one after another on its stream.

use dfdx::prelude::*;
use rayon::prelude::*;

use crate::adam::LayerUpdate;
use crate::grad::DenseGrad;
use crate::model::{LossTerms, Vae};
use crate::train::ShardJob;

/// A dfdx device the trainer can train on.
pub trait TrainDevice: Device<f32> {
    /// Shards each mini-batch is split into, computed side by side and summed (see
    /// [`crate::train::sharded_gradients`]). Results depend on this number, never on
    /// the thread count.
    const SHARDS: usize;

    /// Runs every shard's job and returns their results in order.
    fn run_shards(
        dev: &Self,
        vae: &Vae<Self>,
        jobs: Vec<ShardJob<'_>>,
    ) -> Vec<(LossTerms, Vec<DenseGrad<Self>>)> {
        jobs.iter().map(|job| job.run(dev, vae)).collect()
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

    fn run_shards(
        dev: &Self,
        vae: &Vae<Self>,
        jobs: Vec<ShardJob<'_>>,
    ) -> Vec<(LossTerms, Vec<DenseGrad<Self>>)> {
        // With a shard on each core, a matrix product split across cores only adds
        // hand-overs (measured: about 8 % slower); gemm, dfdx's CPU matmul, is told so
        // for the duration and set back after.
        let threshold = gemm_common::gemm::get_threading_threshold();
        if jobs.len() > 1 {
            gemm_common::gemm::set_threading_threshold(usize::MAX);
        }
        let results = jobs.par_iter().map(|job| job.run(dev, vae)).collect();
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
}
