//! Training throughput of the project's trainer: real MNIST through the training loop's
//! own steps (`trainer::train::step::Steps`: batches, shards, gradients, Adam), for a fixed
//! number of steps, a few times over; prints images per second for each repeat and their
//! median.
//!
//! ```sh
//! cargo run --release -p trainer --example train_bench -- --model classic
//! cargo run --release -p trainer --example train_bench -- --model default
//! cargo run --release -p trainer --features cuda --example train_bench -- --device cuda --batch-size 1000
//! ```
//!
//! The models are `trainer::foundation::config::Preset`'s (`vae config --preset NAME`
//! prints each, and `scripts/bench/pytorch_vae.py` builds the same from that): `classic`
//! is the PyTorch example's VAE, 784-400-20-400-784 at batch 128; `default` is
//! `models/default`'s conditional model and loss at batch 100. `--batch-size` overrides
//! the preset's batch; `--device cuda` times the first NVIDIA
//! GPU (in a build with the `cuda` feature).

use std::time::Instant;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use dfdx::prelude::*;
use mnist::{Dataset, Split};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use trainer::data::batch::Images;
use trainer::foundation::config::{DataOptions, Preset, TrainConfig};
use trainer::nn::adam::Adam;
use trainer::nn::model::Vae;
use trainer::train::step::{cuda_device, Steps, TrainDevice};

#[derive(Parser)]
struct Args {
    /// Which model to time.
    #[arg(long, value_enum, default_value_t = Preset::Classic)]
    model: Preset,
    /// Optimization steps per repeat (after one untimed warm-up step).
    #[arg(long, default_value_t = 300)]
    steps: usize,
    /// Timed repeats; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Folder with the four MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    data_dir: std::path::PathBuf,
    /// Images per step; 0 is the preset's (128 classic, 100 default).
    #[arg(long, default_value_t = 0)]
    batch_size: usize,
    /// Where to train: cpu, or cuda (the first NVIDIA GPU; needs `--features cuda`).
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    device: DeviceKind,
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceKind {
    /// This machine's CPU cores.
    Cpu,
    /// The first NVIDIA GPU.
    Cuda,
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let mut config = args.model.config();
    if args.repeat == 0 {
        anyhow::bail!("--repeat must be at least 1");
    }
    if args.batch_size > 0 {
        config.batch_size = args.batch_size;
    }
    let train = Dataset::load(&args.data_dir, Split::Train)?;
    if config.batch_size > train.len() {
        anyhow::bail!(
            "--batch-size {} is more than the {} training images",
            config.batch_size,
            train.len()
        );
    }
    match args.device {
        DeviceKind::Cpu => bench(&Cpu::seed_from_u64(0), &config, &train, &args),
        DeviceKind::Cuda => bench(&cuda_device(0)?, &config, &train, &args),
    }
}

fn bench<D: TrainDevice>(
    dev: &D,
    config: &TrainConfig,
    train: &Dataset,
    args: &Args,
) -> Result<()> {
    let (batch_size, weights) = (config.batch_size, (config.class_weight, 1.0));
    let mut rates = Vec::with_capacity(args.repeat);
    // Uploaded once where the device keeps it (as `vae train` does), outside the clock.
    let options = DataOptions::default();
    let images = Images::new(dev, train, &config.model, options, D::KEEPS_IMAGES);
    for repeat in 0..args.repeat {
        let mut rng = rand::rngs::StdRng::seed_from_u64(repeat as u64);
        let mut vae = Vae::new(dev, &config.model, &mut rng);
        let mut adam = Adam::new(&vae, config.learning_rate);
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut rng);
        let mut batches = order.chunks_exact(batch_size).cycle();
        let mut steps = Steps::new(&mut vae, &mut adam, options);
        let mut step = || {
            let chunk = batches.next().unwrap_or(&[]);
            steps.step((&images, chunk), &mut rng, weights, config.learning_rate);
        };
        step(); // warm-up: first allocations
                // A GPU runs the queued work asynchronously: wait for it before starting the clock
                // and again before reading it, so that the time covers every step's kernels (on
                // the CPU both waits return at once). A step reads the loss terms back, which
                // waits for the forward pass only, not for Adam's update.
        dev.try_synchronize()
            .map_err(|e| anyhow::anyhow!("device error: {e}"))?;
        let started = Instant::now();
        for _ in 0..args.steps {
            step();
        }
        dev.try_synchronize()
            .map_err(|e| anyhow::anyhow!("device error: {e}"))?;
        let rate = (args.steps * batch_size) as f64 / started.elapsed().as_secs_f64();
        println!("repeat {}: {rate:.0} images/s", repeat + 1);
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2]; // `repeat` is at least 1
    println!(
        "median {median:.0} images/s ({} steps of batch {batch_size}, {} repeats)",
        args.steps, args.repeat
    );
    Ok(())
}
