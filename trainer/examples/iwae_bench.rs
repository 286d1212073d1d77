//! Speed of the importance-weighted estimate of -log p(x) that `vae eval --iwae-k`
//! reports (`trainer::eval::iwae::iwae_nll`), on a run's own weights: the first
//! `--images` test images, `--k` draws each, `--repeat` times; prints images per second
//! for each repeat and their median. `scripts/bench-iwae.sh` runs it beside PyTorch's
//! computation of the same bound on the same weights (`scripts/bench/pytorch_iwae.py`).
//!
//! ```sh
//! cargo run --release -p trainer --example iwae_bench -- --run models/iwae-k5 --k 5000 --images 20
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use dfdx::prelude::*;
use mnist::{Dataset, Split};
use trainer::eval::iwae::iwae_nll;
use trainer::foundation::run_dir::RunDir;
use trainer::train::checkpoint;

#[derive(Parser)]
struct Args {
    /// The run folder whose checkpoint is measured (an unconditional model).
    #[arg(long)]
    run: PathBuf,
    /// Draws of z per image.
    #[arg(long, default_value_t = 5000)]
    k: usize,
    /// Test images per repeat (the first ones).
    #[arg(long, default_value_t = 20)]
    images: usize,
    /// Timed repeats.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// MNIST's folder.
    #[arg(long, default_value = "data/mnist")]
    data_dir: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (_, vae) = checkpoint::load(&Cpu::default(), &RunDir::new(&args.run))?;
    if vae.config.classes > 0 {
        anyhow::bail!("--run: a conditional model's bound is not an estimate of p(x)");
    }
    let test = Dataset::load(&args.data_dir, Split::Test)?.truncated(args.images);
    let mut rates = Vec::with_capacity(args.repeat);
    for repeat in 1..=args.repeat.max(1) {
        let started = Instant::now();
        let value = iwae_nll(&vae, &test, args.k, 0);
        let rate = test.len() as f64 / started.elapsed().as_secs_f64();
        println!("repeat {repeat}: {rate:.2} images/s, estimate {value:.3}");
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "median {median:.2} images/s (trainer, {threads} threads, k {}, {} images)",
        args.k,
        test.len()
    );
    Ok(())
}
