//! Training throughput of the project's trainer: real MNIST through the training loop's
//! own step (`trainer::step::train_step`: batches, shards, gradients, Adam), for a fixed
//! number of steps, a few times over; prints images per second for each repeat and their
//! median.
//!
//! ```sh
//! cargo run --release -p trainer --example train_bench -- --model classic
//! cargo run --release -p trainer --example train_bench -- --model default
//! ```
//!
//! `classic` is the PyTorch example's VAE: 784-400-20-400-784, Bernoulli likelihood,
//! Adam 1e-3, batch 128. `default` is the committed conditional model's shape, batch 100.

use std::time::Instant;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use dfdx::prelude::*;
use mnist::{Dataset, Split};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use trainer::adam::Adam;
use trainer::config::{DataOptions, TrainConfig};
use trainer::model::Vae;
use trainer::step::train_step;

#[derive(Clone, Copy, ValueEnum)]
enum Preset {
    /// 784-400-20-400-784, unconditional, batch 128 (PyTorch's examples/vae).
    Classic,
    /// The committed default model's shape, batch 100.
    Default,
}

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
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut config = TrainConfig::default();
    if let Preset::Classic = args.model {
        config.model.latent = 20;
        config.model.decoder_hidden = vec![400];
        config.model = config.model.unconditional();
        config.batch_size = 128;
        config.class_weight = 0.0;
    }
    let (batch_size, weights) = (config.batch_size, (config.class_weight, 1.0));
    let train = Dataset::load(&args.data_dir, Split::Train)?;
    let dev = Cpu::seed_from_u64(0);
    let mut rates = Vec::with_capacity(args.repeat);
    for repeat in 0..args.repeat {
        let mut rng = rand::rngs::StdRng::seed_from_u64(repeat as u64);
        let mut vae = Vae::new(&dev, &config.model, &mut rng);
        let mut adam = Adam::new(&vae, config.learning_rate);
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut rng);
        let mut batches = order.chunks_exact(batch_size).cycle();
        let mut step = |vae: &mut Vae<Cpu>, adam: &mut Adam<Cpu>| {
            let chunk = batches.next().unwrap_or(&[]);
            train_step(
                vae,
                adam,
                (&train, chunk),
                DataOptions::default(),
                &mut rng,
                weights,
            );
        };
        step(&mut vae, &mut adam); // warm-up: first allocations
        let started = Instant::now();
        for _ in 0..args.steps {
            step(&mut vae, &mut adam);
        }
        let rate = (args.steps * batch_size) as f64 / started.elapsed().as_secs_f64();
        println!("repeat {}: {rate:.0} images/s", repeat + 1);
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "median {median:.0} images/s ({} steps of batch {batch_size}, {} repeats)",
        args.steps, args.repeat
    );
    Ok(())
}
