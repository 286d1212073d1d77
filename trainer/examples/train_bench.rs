//! Training throughput of the project's trainer: real MNIST through the training loop's
//! own steps (`trainer::train::step::Training`: batches, shards, gradients, Adam), for a fixed
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
use trainer::foundation::matmul::matmul_totals;
use trainer::nn::adam::AdamState;
use trainer::nn::model::{LossWeights, Vae};
use trainer::train::step::{cuda_device, TrainDevice, Training};

#[derive(Parser)]
struct Args {
    /// Which model to time.
    #[arg(long, default_value = "classic", value_parser = |name: &str| name.parse::<Preset>())]
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
    let (batch_size, weights) = (config.batch_size, LossWeights::of(config));
    let mut rates = Vec::with_capacity(args.repeat);
    let mut products = Vec::new();
    // Uploaded once where the device keeps it (as `vae train` does), outside the clock.
    let options = DataOptions::default();
    let images = Images::new(dev, train, &config.model, options, D::KEEPS_IMAGES);
    for repeat in 0..args.repeat {
        let mut rng = rand::rngs::StdRng::seed_from_u64(repeat as u64);
        let vae = Vae::new(dev, &config.model, &mut rng);
        let adam = AdamState::new(&vae, config.learning_rate);
        let mut training = Training::new(vae, adam)?;
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut rng);
        let mut batches = order.chunks_exact(batch_size).cycle();
        let mut step = || {
            let chunk = batches.next().unwrap_or(&[]);
            training.step((&images, chunk), &mut rng, weights, config.learning_rate);
        };
        step(); // warm-up: first allocations
                // A GPU runs the queued work asynchronously: wait for it before starting the clock
                // and again before reading it, so that the time covers every step's kernels (on
                // the CPU both waits return at once). A step reads the loss terms back, which
                // waits for the forward pass only, not for Adam's update.
        dev.try_synchronize()
            .map_err(|e| anyhow::anyhow!("device error: {e}"))?;
        let (flops_before, busy_before) = matmul_totals();
        let started = Instant::now();
        for _ in 0..args.steps {
            step();
        }
        dev.try_synchronize()
            .map_err(|e| anyhow::anyhow!("device error: {e}"))?;
        let seconds = started.elapsed().as_secs_f64();
        let rate = (args.steps * batch_size) as f64 / seconds;
        let (flops, busy) = matmul_totals();
        let (flops, busy) = ((flops - flops_before) as f64, busy - busy_before);
        if flops > 0.0 {
            // The host's products, timed call by call on each thread.
            let per_core = flops / busy / 1e9;
            let share = busy / (seconds * rayon::current_num_threads() as f64);
            println!(
                "repeat {}: {rate:.0} images/s; matrix products {per_core:.1} GFLOP/s per \
                 core while they run, {:.0} % of the cores' time",
                repeat + 1,
                100.0 * share
            );
            products.push(per_core);
        } else {
            println!("repeat {}: {rate:.0} images/s", repeat + 1);
        }
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2]; // `repeat` is at least 1
    println!(
        "median {median:.0} images/s ({} steps of batch {batch_size}, {} repeats)",
        args.steps, args.repeat
    );
    if !products.is_empty() {
        products.sort_by(f64::total_cmp);
        let per_core = products[products.len() / 2];
        match fma_peak() {
            Some(peak) => println!(
                "matrix products: median {per_core:.1} GFLOP/s per core while they run, \
                 {:.0} % of the FP32 peak measured on every core at once ({peak:.1} GFLOP/s \
                 per core)",
                100.0 * per_core / peak
            ),
            None => {
                println!("matrix products: median {per_core:.1} GFLOP/s per core while they run")
            }
        }
    }
    Ok(())
}

/// The FP32 peak of one core, in GFLOP/s, measured with every core of rayon's pool
/// busy at once (as in a training step, and at the clock that load gets): 12
/// independent chains of 8-lane fused multiply-adds, enough to keep two FMA units
/// with a latency of 4 to 5 cycles full. That is 2 units x 8 lanes x 2 operations = 32
/// per cycle on the x86-64 cores with AVX2 this runs on (Zen 2 to 4, Skylake and later
/// client cores); `None` without AVX2 and FMA.
fn fma_peak() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return None;
        }
        let rates = rayon::broadcast(|_| {
            let iterations = 100_000_000u64;
            let started = Instant::now();
            // SAFETY: AVX2 and FMA are present (checked above).
            let sum = unsafe { fma_chains(iterations) };
            std::hint::black_box(sum);
            (iterations * 12 * 16) as f64 / started.elapsed().as_secs_f64() / 1e9
        });
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        Some(mean)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// `iterations` rounds of 12 independent 8-lane fused multiply-adds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_chains(iterations: u64) -> f32 {
    use std::arch::x86_64::{_mm256_cvtss_f32, _mm256_fmadd_ps, _mm256_set1_ps};
    let mut acc = [_mm256_set1_ps(0.0); 12];
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    for _ in 0..iterations {
        for r in acc.iter_mut() {
            *r = _mm256_fmadd_ps(*r, a, b);
        }
    }
    acc.iter().map(|&r| _mm256_cvtss_f32(r)).sum()
}
