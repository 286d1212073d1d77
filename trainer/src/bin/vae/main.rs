//! `vae`: the command line. Parses the arguments ([`args`]) and hands each command to
//! the library functions that do its work; what it prints is the user's report of it.

mod args;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use dfdx::prelude::Cpu;
use mnist::{Dataset, Split};
use trainer::data::firmware_log::FirmwareLog;
use trainer::device::check as device_check;
use trainer::eval::classifier::Classifier;
use trainer::eval::report::{evaluate_model, EvalOptions};
use trainer::foundation::io::{write_atomic, write_json};
use trainer::foundation::run_dir::RunDir;
use trainer::output::{export, history, pictures};
use trainer::say;
use trainer::train::checkpoint;
use trainer::train::run::{resume, train, EpochHook, RunOptions};
use trainer::train::step::{cuda_device, TrainDevice, Training};
use vae_core::{Header, Model};

use args::*;

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Train(args) => match args.device {
            DeviceKind::Cpu => run_train(&Cpu::default(), &args),
            DeviceKind::Cuda => cuda_device(args.seed()).and_then(|dev| run_train(&dev, &args)),
        },
        Command::Export(args) => run_export(args),
        Command::Sample(args) => run_sample(args),
        Command::Inspect(args) => run_inspect(args),
        Command::Eval(args) => run_eval(args),
        Command::Pictures(args) => run_pictures(args),
        Command::TrainClassifier(args) => run_train_classifier(args),
        Command::FirmwarePng(args) => run_firmware_png(args),
        Command::FirmwareCosts(args) => run_firmware_costs(args),
        Command::Config(args) => serde_json::to_string_pretty(&args.preset.config())
            .map(|json| say!("{json}"))
            .map_err(Into::into),
        Command::DeviceCheck(args) => match args.device {
            DeviceKind::Cpu => run_device_check("the CPU", || Ok(Cpu::default())),
            DeviceKind::Cuda => run_device_check("CUDA device 0", || cuda_device(0)),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_train<D: TrainDevice>(dev: &D, args: &TrainArgs) -> Result<()> {
    let started = std::time::Instant::now();
    // A new run's settings, read once (`--config` is a file); settings no run can train
    // with are refused before MNIST is read.
    let config = if args.resume {
        None
    } else {
        let config = args.config()?;
        config.validate()?;
        Some(config)
    };
    let train_set = Dataset::load(&args.data_dir, Split::Train)?;
    let test_set = Dataset::load(&args.data_dir, Split::Test)?;
    let test_set = test_set.truncated(args.test_limit.unwrap_or(usize::MAX));
    let run = RunDir::new(&args.out);
    let snapshot = |epoch: usize, training: &mut Training<D>| {
        pictures::epoch_snapshot(&run, epoch, &training.model()?)
    };
    let opts = RunOptions {
        run: &run,
        progress: !args.no_progress,
        after_epoch: args.snapshots.then_some(&snapshot as &EpochHook<D>),
    };
    let (vae, history) = if let Some(mut config) = config {
        if let Some(dir) = args.init() {
            let from = checkpoint::read_config(&RunDir::new(dir))?.model;
            config.model = from.with_critic_of(&config.model);
        }
        train(dev, &config, &train_set, &test_set, &opts)?
    } else {
        resume(dev, args.epochs(), &train_set, &test_set, &opts)?
    };
    if args.snapshots {
        say!(
            "wrote {}",
            pictures::epochs_gif(&run, history.len())?.display()
        );
    }
    let last = history.last().map_or(f32::NAN, |r| r.test.neg_elbo());
    say!(
        "trained {} epochs: test loss {last:.2} nats/image; decoder {} parameters; run folder \
         {run}; wall time {:.1} s",
        history.len(),
        vae.decoder_parameters(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run_device_check<D: TrainDevice>(label: &str, create: impl FnOnce() -> Result<D>) -> Result<()> {
    let stages = device_check::check(label, create, |stage| say!("{stage}"));
    let failed: Vec<&str> = stages
        .iter()
        .filter(|s| !s.passed())
        .map(|s| s.name)
        .collect();
    match failed.as_slice() {
        [] => Ok(()),
        [device_check::DEVICE] => anyhow::bail!("device check: no device to check"),
        names => anyhow::bail!("device check: {} failed", names.join(", ")),
    }
}

fn run_export(args: ExportArgs) -> Result<()> {
    let (_, vae) = checkpoint::load(&Cpu::default(), &RunDir::new(&args.run))?;
    let out = RunDir::new(args.out_dir.unwrap_or(args.run));
    for (path, len) in export::write_model_files(&vae, &out)? {
        say!("wrote {} ({len} bytes)", path.display());
    }
    Ok(())
}

fn read_model_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read model file {}", path.display()))
}

fn run_sample(args: SampleArgs) -> Result<()> {
    let bytes = read_model_file(&args.model)?;
    let model = Model::parse(&bytes).with_context(|| format!("{}", args.model.display()))?;
    let grid = pictures::sample_grid(&model, args.digit, args.count.into(), args.seed)
        .with_context(|| format!("{}", args.model.display()))?;
    grid.write(&args.out, args.scale.into())?;
    let (n, rows, cols) = (grid.images.len(), grid.rows, grid.cols);
    say!("wrote {} ({n} images, {rows} x {cols})", args.out.display());
    if let Some(raw) = &args.raw {
        write_atomic(raw, grid.images.as_flattened())?;
        say!("wrote {} ({} bytes)", raw.display(), n * vae_core::PIXELS);
    }
    Ok(())
}

fn run_inspect(args: InspectArgs) -> Result<()> {
    let bytes = read_model_file(&args.model)?;
    say!(
        "file:        {} ({} bytes)",
        args.model.display(),
        bytes.len()
    );
    let (header, _) = Header::read(&bytes).with_context(|| format!("{}", args.model.display()))?;
    say!("{}", header.to_string().trim_end_matches('\n'));
    if let Err(err) = Model::parse(&bytes) {
        say!("checksum:    FAILED");
        return Err(err).with_context(|| format!("{}", args.model.display()));
    }
    say!("checksum:    CRC-32 {:#010x} OK", header.stored_crc());
    Ok(())
}

fn run_eval(args: EvalArgs) -> Result<()> {
    let run = RunDir::new(&args.run);
    let (_, vae) = checkpoint::load(&Cpu::default(), &run)?;
    let test_set = Dataset::load(&args.data_dir, Split::Test)?;
    let test_set = test_set.truncated(args.test_limit.unwrap_or(usize::MAX));
    let train_set = Dataset::load(&args.data_dir, Split::Train)?;
    let (classifier, _) = Classifier::load(&args.classifier)
        .context("the independent classifier is missing: `vae train-classifier` makes one")?;
    let opts = EvalOptions {
        iwae_k: args.iwae_k,
        per_digit: args.per_digit,
        seed: args.seed,
        classifier: Some(&classifier),
        train: Some(&train_set),
    };
    let report = evaluate_model(&vae, &test_set, &opts)?;
    let out = args.out.unwrap_or_else(|| run.eval());
    write_json(&out, &report)?;
    say!(
        "{run} on {} test images; decoder {} parameters, latent {}\n{report}\nwrote {}",
        report.test_images,
        report.decoder_parameters,
        report.latent,
        out.display()
    );
    Ok(())
}

fn run_pictures(args: PicturesArgs) -> Result<()> {
    let run = RunDir::new(&args.run);
    let (_, vae) = checkpoint::load(&Cpu::default(), &run)?;
    let history = history::load(&run)?;
    let test_set = Dataset::load(&args.data_dir, Split::Test)?;
    let out = args.out_dir.unwrap_or_else(|| run.pictures_dir());
    for path in pictures::all(&vae, &history, &test_set, (args.from, args.to), &out)? {
        say!("wrote {}", path.display());
    }
    // A run trained with --snapshots (and perhaps stopped early): its GIF.
    if run.epochs_dir().is_dir() {
        say!(
            "wrote {}",
            pictures::epochs_gif(&run, history.len())?.display()
        );
    }
    Ok(())
}

fn run_train_classifier(args: TrainClassifierArgs) -> Result<()> {
    let train_set = Dataset::load(&args.data_dir, Split::Train)?;
    let test_set = Dataset::load(&args.data_dir, Split::Test)?;
    let progress = !args.no_progress;
    let (_, report) = Classifier::train(
        &train_set,
        &test_set,
        args.epochs,
        args.seed,
        &args.out,
        progress,
    )?;
    say!(
        "classifier: {:.2}% of the 10,000 test images right; saved in {}",
        100.0 * report.test_accuracy,
        args.out.display()
    );
    Ok(())
}

/// A firmware log's text, from a file or (`-`) standard input.
fn read_log(path: &Path) -> Result<String> {
    if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

fn run_firmware_costs(args: FirmwareCostsArgs) -> Result<()> {
    let log = FirmwareLog::parse(&read_log(&args.log)?)
        .with_context(|| format!("{}", args.log.display()))?;
    let (Some(precision), Some(parameters), Some(flash), Some(ram), Some(digit), Some(mac)) = (
        log.precision,
        log.parameters,
        log.flash,
        log.ram,
        log.cost_per_digit,
        log.cost_per_mac,
    ) else {
        bail!(
            "{}: no decoder, cost per digit, flash and ram lines: is this the whole output \
             of the firmware?",
            args.log.display()
        );
    };
    say!("{precision:<4} {parameters:>9} {flash:>7} {ram:>9} {digit:>13} {mac:>9}");
    Ok(())
}

fn run_firmware_png(args: FirmwarePngArgs) -> Result<()> {
    let text = read_log(&args.log)?;
    let grid = pictures::firmware_grid(&text, args.columns.into())
        .with_context(|| format!("{}", args.log.display()))?;
    grid.write(&args.out, args.scale.into())?;
    let (n, rows, cols) = (grid.images.len(), grid.rows, grid.cols);
    say!("wrote {} ({n} images, {rows} x {cols})", args.out.display());
    Ok(())
}
