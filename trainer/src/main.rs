//! `vae`: train a VAE on MNIST, export its decoder, draw digits, inspect model files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use dfdx::prelude::Cpu;
use trainer::checkpoint;
use trainer::checkpoint::RunDir;
use trainer::data::{Dataset, Split};
use trainer::exec::TrainDevice;
use trainer::export::model_file;
use trainer::io::write_atomic;
use trainer::model::Vae;
use trainer::model::{Act, ModelConfig};
use trainer::pictures;
use trainer::render::write_grid;
use trainer::train::{resume, train, Binarize, EpochHook, LrSchedule, RunOptions, TrainConfig};
use vae_core::{Header, Model, Precision, PIXELS};

/// Train a variational autoencoder on MNIST, shrink its decoder to f16, and draw digits.
#[derive(Parser)]
#[command(version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on MNIST; writes config.json, checkpoint.safetensors and
    /// history.json into the run folder after every epoch.
    Train(TrainArgs),
    /// Write a trained decoder as model files (f16 and f32) for `sample` and the firmware.
    Export(ExportArgs),
    /// Draw digits from a model file into a PNG grid.
    Sample(SampleArgs),
    /// Print a model file's header, sizes and checksum status.
    Inspect(InspectArgs),
    /// Evaluate a trained model on the MNIST test set (f32, f16 and i8 decoders) and
    /// write the figures as JSON.
    Eval(EvalArgs),
    /// Draw a run's pictures: loss curves, reconstructions, a morph, the conditional
    /// grid, and for latent-2 models the latent manifold and the test set's latent means.
    Pictures(PicturesArgs),
    /// Train the independent digit classifier `vae eval` judges generated digits with.
    TrainClassifier(TrainClassifierArgs),
    /// Draw the images a firmware run printed (its `pixels` lines) into a PNG grid.
    FirmwarePng(FirmwarePngArgs),
}

#[derive(Args)]
struct TrainArgs {
    /// Folder with the four MNIST IDX files (raw or .gz).
    #[arg(long, default_value = "data/mnist")]
    data_dir: PathBuf,
    /// Run folder for the configuration, checkpoint and history.
    #[arg(long, default_value = "runs/default")]
    out: PathBuf,
    /// Passes over the 60,000 training images [default: 30; with --resume, the run's own].
    #[arg(long, value_parser = positive())]
    epochs: Option<usize>,
    /// Continue the run in --out from its last complete epoch, with its saved settings
    /// (only --epochs may change); the result equals an uninterrupted run.
    #[arg(long)]
    resume: bool,
    /// How grey pixels become targets: none (intensities, PyTorch example), dynamic
    /// (Bernoulli draw every time an image is used, IWAE paper), threshold (at 0.5,
    /// TensorFlow tutorial).
    #[arg(long, value_enum, default_value_t = Binarize::None)]
    binarize: Binarize,
    /// Learning rate over the run: constant, or cosine (annealed to 0 by the last epoch).
    #[arg(long, value_enum, default_value_t = LrSchedule::Constant)]
    lr_schedule: LrSchedule,
    /// Raise the KL term's weight linearly from 0 to 1 over this many epochs.
    #[arg(long, default_value_t = 0)]
    kl_warmup: usize,
    /// Denoising: add Gaussian noise of this standard deviation to the encoder's input
    /// (clipped to [0, 1]) and reconstruct the clean image; 0 is off.
    #[arg(long, default_value_t = 0.0)]
    denoise: f32,
    /// Also draw a sample grid after every epoch (DIR/epochs/epoch-NNN.png) and, at the
    /// end, an animated GIF of them (DIR/epochs.gif).
    #[arg(long)]
    snapshots: bool,
    /// Images per optimization step.
    #[arg(long, default_value_t = 100, value_parser = positive())]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f32,
    /// Size of the latent code z.
    #[arg(long, default_value_t = 10, value_parser = positive())]
    latent: usize,
    /// Encoder hidden widths, comma-separated (the encoder stays on the host).
    #[arg(long, value_delimiter = ',', default_value = "400", value_parser = positive())]
    encoder_hidden: Vec<usize>,
    /// Decoder hidden widths, comma-separated (this part goes to the microcontroller).
    #[arg(long, value_delimiter = ',', default_value = "128", value_parser = positive())]
    decoder_hidden: Vec<usize>,
    /// Classifier hidden widths, comma-separated (conditional models only).
    #[arg(long, value_delimiter = ',', default_value = "256", value_parser = positive())]
    classifier_hidden: Vec<usize>,
    /// Train a plain VAE without labels (it cannot draw a chosen digit).
    #[arg(long)]
    unconditional: bool,
    /// Feed the classifier's class probabilities to the encoder too (conditional models),
    /// so z need not carry the digit and the decoder learns to follow the label.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    encoder_sees_label: bool,
    /// Hidden-layer non-linearity.
    #[arg(long, value_enum, default_value_t = Act::Relu)]
    activation: Act,
    /// Weight of the classifier's cross-entropy in the loss.
    #[arg(long, default_value_t = 10.0)]
    class_weight: f32,
    /// Seed for initialization, shuffling and noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on the first N training images only (quick runs).
    #[arg(long, value_parser = positive())]
    train_limit: Option<usize>,
    /// Evaluate on the first N test images only (quick runs).
    #[arg(long, value_parser = positive())]
    test_limit: Option<usize>,
    /// Hide the progress bars (per-epoch lines are still printed).
    #[arg(long)]
    no_progress: bool,
    /// Where to train: cpu, or cuda (the first NVIDIA GPU; needs a `vae` built with
    /// `--features cuda`).
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    device: DeviceKind,
}

/// Where training runs.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DeviceKind {
    /// This machine's CPU cores.
    Cpu,
    /// The first NVIDIA GPU, through dfdx's CUDA backend.
    Cuda,
}

#[derive(Args)]
struct ExportArgs {
    /// Run folder written by `vae train`.
    #[arg(long, default_value = "runs/default")]
    run: PathBuf,
    /// Folder for decoder-f16.vae, decoder-f32.vae and decoder-i8.vae (default: the run folder).
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

#[derive(Args)]
struct SampleArgs {
    /// Model file to draw from.
    #[arg(long, default_value = "models/default/decoder-f16.vae")]
    model: PathBuf,
    /// PNG file to write.
    #[arg(long, default_value = "samples.png")]
    out: PathBuf,
    /// Draw only this digit (conditional models); without it, one row per digit 0-9.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=9))]
    digit: Option<u8>,
    /// Images per digit (or in all, for an unconditional model).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    count: u16,
    /// Seed of the first column; column c uses seed + c.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Enlargement of each 28x28 image in the PNG.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=16))]
    scale: u8,
    /// Also write the raw pixels (784 bytes per image, grid order) to this file.
    #[arg(long)]
    raw: Option<PathBuf>,
}

#[derive(Args)]
struct EvalArgs {
    /// Run folder written by `vae train`.
    #[arg(long, default_value = "runs/default")]
    run: PathBuf,
    /// Folder with the four MNIST IDX files (raw or .gz).
    #[arg(long, default_value = "data/mnist")]
    data_dir: PathBuf,
    /// Importance samples per test image for the IWAE estimate of -log p(x) (5,000 in
    /// the papers; about 30 minutes for f32 and f16 on 2 cores); 0 skips it. Unconditional
    /// models only.
    #[arg(long, default_value_t = 5000)]
    iwae_k: usize,
    /// Samples per digit for label fidelity (conditional models).
    #[arg(long, default_value_t = 1000, value_parser = positive())]
    per_digit: usize,
    /// The independent digit classifier (see `vae train-classifier`).
    #[arg(long, default_value = "models/classifier")]
    classifier: PathBuf,
    /// JSON file to write [default: RUN/eval.json].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Evaluate on the first N test images only (quick checks).
    #[arg(long, value_parser = positive())]
    test_limit: Option<usize>,
    /// Seed of every random draw (the same for f32, f16 and i8).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
struct PicturesArgs {
    /// Run folder written by `vae train`.
    #[arg(long, default_value = "runs/default")]
    run: PathBuf,
    /// Folder with the four MNIST IDX files (raw or .gz).
    #[arg(long, default_value = "data/mnist")]
    data_dir: PathBuf,
    /// Folder for the PNG files [default: RUN/pictures].
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Test image the morph starts from.
    #[arg(long, default_value_t = 3)]
    from: usize,
    /// Test image the morph ends at.
    #[arg(long, default_value_t = 2)]
    to: usize,
}

#[derive(Args)]
struct TrainClassifierArgs {
    /// Folder with the four MNIST IDX files (raw or .gz).
    #[arg(long, default_value = "data/mnist")]
    data_dir: PathBuf,
    /// Folder for classifier.safetensors and classifier.json.
    #[arg(long, default_value = "models/classifier")]
    out: PathBuf,
    /// Passes over the training set.
    #[arg(long, default_value_t = 20, value_parser = positive())]
    epochs: usize,
    /// Seed for initialization, shuffling and dropout.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Hide the progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Args)]
struct FirmwarePngArgs {
    /// The firmware's output, saved to a file (`-` reads standard input).
    log: PathBuf,
    /// PNG file to write.
    #[arg(long, default_value = "firmware.png")]
    out: PathBuf,
    /// Images per row of the grid.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
    columns: u16,
    /// Enlargement of each 28x28 image in the PNG.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=16))]
    scale: u8,
}

#[derive(Args)]
struct InspectArgs {
    /// Model file to inspect.
    model: PathBuf,
}

fn positive() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => run_train(args),
        Command::Export(args) => run_export(args),
        Command::FirmwarePng(args) => run_firmware_png(args),
        Command::TrainClassifier(args) => run_train_classifier(args),
        Command::Eval(args) => run_eval(args),
        Command::Pictures(args) => run_pictures(args),
        Command::Sample(args) => run_sample(args),
        Command::Inspect(args) => run_inspect(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_train(args: TrainArgs) -> Result<()> {
    match args.device {
        DeviceKind::Cpu => train_on(&Cpu::default(), &args),
        DeviceKind::Cuda => train_on_cuda(&args),
    }
}

/// Trains on the first NVIDIA GPU (CUDA device 0).
#[cfg(feature = "cuda")]
fn train_on_cuda(args: &TrainArgs) -> Result<()> {
    let dev = dfdx::tensor::Cuda::try_build(0, args.seed).map_err(|e| {
        anyhow::anyhow!(
            "--device cuda: no usable NVIDIA GPU (CUDA device 0: {e}); check that \
             `nvidia-smi` lists a GPU, or train with --device cpu"
        )
    })?;
    train_on(&dev, args)
}

#[cfg(not(feature = "cuda"))]
fn train_on_cuda(_: &TrainArgs) -> Result<()> {
    bail!(
        "--device cuda: this `vae` was built without CUDA support; build it with \
         `cargo build --release -p trainer --features cuda` on a machine with the CUDA \
         toolkit, or `scripts/build-cuda.sh` (see README, \"Training on an NVIDIA GPU\")"
    )
}

fn train_on<D: TrainDevice>(dev: &D, args: &TrainArgs) -> Result<()> {
    let train_set = Dataset::load(&args.data_dir, Split::Train)?;
    let mut test_set = Dataset::load(&args.data_dir, Split::Test)?;
    if let Some(n) = args.test_limit {
        test_set = test_set.truncated(n);
    }
    let snapshots =
        |epoch: usize, vae: &mut Vae<D>| pictures::epoch_snapshot(&args.out, epoch, vae);
    let opts = RunOptions {
        out: &args.out,
        progress: !args.no_progress,
        after_epoch: args.snapshots.then_some(&snapshots as &EpochHook<D>),
    };
    let (vae, history) = if args.resume {
        let _: TrainConfig = trainer::io::read_json(&RunDir(args.out.clone()).config())
            .with_context(|| format!("--resume: {} is not a run folder", args.out.display()))?;
        resume(dev, args.epochs, &train_set, &test_set, &opts)?
    } else {
        let config = TrainConfig {
            model: ModelConfig {
                latent: args.latent,
                encoder_hidden: args.encoder_hidden.clone(),
                decoder_hidden: args.decoder_hidden.clone(),
                activation: args.activation,
                classes: if args.unconditional { 0 } else { 10 },
                classifier_hidden: args.classifier_hidden.clone(),
                encoder_sees_label: args.encoder_sees_label && !args.unconditional,
            },
            epochs: args.epochs.unwrap_or(30),
            batch_size: args.batch_size,
            learning_rate: args.learning_rate,
            class_weight: args.class_weight,
            seed: args.seed,
            train_limit: args.train_limit,
            binarize: args.binarize,
            kl_warmup: args.kl_warmup,
            denoise: args.denoise,
            lr_schedule: args.lr_schedule,
        };
        train(dev, &config, &train_set, &test_set, &opts)?
    };
    if args.snapshots {
        let gif = pictures::epochs_gif(&args.out, history.len())?;
        println!("wrote {}", gif.display());
    }
    let last = history
        .last()
        .map(|r| r.test.neg_elbo())
        .unwrap_or(f32::NAN);
    println!(
        "trained {} epochs: test loss {last:.2} nats/image; decoder {} parameters; run folder {}",
        history.len(),
        vae.decoder_parameters(),
        args.out.display()
    );
    Ok(())
}

fn run_export(args: ExportArgs) -> Result<()> {
    let dev = Cpu::default();
    let (_, vae) = checkpoint::load(&dev, &args.run)?;
    let out_dir = args.out_dir.unwrap_or_else(|| args.run.clone());
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    for precision in [Precision::F16, Precision::F32, Precision::I8] {
        let bytes = model_file(&vae, precision)?;
        let path = out_dir.join(format!("decoder-{}.vae", precision.name()));
        write_atomic(&path, &bytes)?;
        println!("wrote {} ({} bytes)", path.display(), bytes.len());
    }
    Ok(())
}

fn read_model_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read model file {}", path.display()))
}

fn run_sample(args: SampleArgs) -> Result<()> {
    let bytes = read_model_file(&args.model)?;
    let model = Model::parse(&bytes).with_context(|| format!("{}", args.model.display()))?;
    let count = usize::from(args.count);
    // (seed, digit) of every tile, row by row.
    let tiles: Vec<(u64, Option<u8>)> = match (model.is_conditional(), args.digit) {
        (false, Some(_)) => bail!(
            "{} was trained without labels and cannot draw a chosen digit; leave out --digit",
            args.model.display()
        ),
        (true, None) => (0..10u8)
            .flat_map(|d| (0..count).map(move |c| (args.seed.wrapping_add(c as u64), Some(d))))
            .collect(),
        (_, digit) => (0..count)
            .map(|c| (args.seed.wrapping_add(c as u64), digit))
            .collect(),
    };
    let mut images = Vec::with_capacity(tiles.len());
    for &(seed, digit) in &tiles {
        let mut pixels = [0u8; PIXELS];
        model.generate(seed, digit, &mut pixels)?;
        images.push(pixels);
    }
    let cols = if model.is_conditional() && args.digit.is_none() {
        count
    } else {
        count.min(10)
    };
    let rows = images.len().div_ceil(cols);
    write_grid(&args.out, &images, rows, cols, usize::from(args.scale))?;
    println!(
        "wrote {} ({} images, {rows} x {cols})",
        args.out.display(),
        images.len()
    );
    if let Some(raw) = &args.raw {
        write_atomic(raw, images.as_flattened())?;
        println!("wrote {} ({} bytes)", raw.display(), images.len() * PIXELS);
    }
    Ok(())
}

fn run_inspect(args: InspectArgs) -> Result<()> {
    let bytes = read_model_file(&args.model)?;
    println!(
        "file:        {} ({} bytes)",
        args.model.display(),
        bytes.len()
    );
    let (header, _) = Header::read(&bytes).with_context(|| format!("{}", args.model.display()))?;
    let arch = &header.arch;
    let act = format!("{:?}", arch.activation).to_lowercase();
    let mut shape = format!("[z {} + one-hot {}]", arch.latent, arch.classes);
    for h in &arch.hidden {
        shape.push_str(&format!(" -> {h} {act}"));
    }
    shape.push_str(&format!(" -> {} sigmoid", arch.output));
    println!(
        "format:      {} version {}",
        String::from_utf8_lossy(&header.magic),
        header.version
    );
    println!(
        "decoder:     {shape} ({})",
        if arch.classes > 0 {
            "conditional"
        } else {
            "unconditional"
        }
    );
    println!("parameters:  {}", arch.parameter_count());
    let storage = match header.precision {
        Precision::F32 => "f32 weights and biases",
        Precision::F16 => "f16 weights and biases",
        Precision::I8 => "i8 weights with an f32 scale per row, f32 biases",
    };
    println!(
        "precision:   {} ({storage}), payload {} bytes",
        header.precision.name(),
        header.payload_len
    );
    match Model::parse(&bytes) {
        Ok(_) => {
            println!("checksum:    CRC-32 {:#010x} OK", header.stored_crc());
            Ok(())
        }
        Err(err) => {
            println!("checksum:    FAILED");
            Err(err).with_context(|| format!("{}", args.model.display()))
        }
    }
}

fn run_firmware_png(args: FirmwarePngArgs) -> Result<()> {
    let text = if args.log.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(&args.log)
            .with_context(|| format!("cannot read {}", args.log.display()))?
    };
    let images = parse_pixel_lines(&text).with_context(|| format!("{}", args.log.display()))?;
    let cols = usize::from(args.columns).min(images.len());
    let rows = images.len().div_ceil(cols);
    write_grid(&args.out, &images, rows, cols, usize::from(args.scale))?;
    println!(
        "wrote {} ({} images, {rows} x {cols})",
        args.out.display(),
        images.len()
    );
    Ok(())
}

/// The images in the `pixels N HEX` lines of a firmware log, in order.
fn parse_pixel_lines(text: &str) -> Result<Vec<[u8; PIXELS]>> {
    let mut images = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("pixels ") else {
            continue;
        };
        let hex = rest.split_once(' ').map_or("", |(_, hex)| hex.trim_end());
        let bad = || {
            format!(
                "line {}: expected `pixels N` and 1,568 hex digits",
                number + 1
            )
        };
        if hex.len() != 2 * PIXELS || !hex.is_ascii() {
            bail!(bad());
        }
        let mut pixels = [0u8; PIXELS];
        for (i, pixel) in pixels.iter_mut().enumerate() {
            *pixel = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).with_context(bad)?;
        }
        images.push(pixels);
    }
    if images.is_empty() {
        bail!("no `pixels` lines: is this the output of the firmware?");
    }
    Ok(images)
}

fn run_train_classifier(args: TrainClassifierArgs) -> Result<()> {
    let train_set = Dataset::load(&args.data_dir, Split::Train)?;
    let test_set = Dataset::load(&args.data_dir, Split::Test)?;
    let (_, report) = trainer::classifier::Classifier::train(
        &train_set,
        &test_set,
        args.epochs,
        args.seed,
        &args.out,
        !args.no_progress,
    )?;
    println!(
        "classifier: {:.2}% of the 10,000 test images right; saved in {}",
        100.0 * report.test_accuracy,
        args.out.display()
    );
    Ok(())
}

fn run_eval(args: EvalArgs) -> Result<()> {
    let dev = Cpu::default();
    let (_, vae) = checkpoint::load(&dev, &args.run)?;
    let mut test_set = Dataset::load(&args.data_dir, Split::Test)?;
    if let Some(n) = args.test_limit {
        test_set = test_set.truncated(n);
    }
    let (classifier, _) =
        trainer::classifier::Classifier::load(&args.classifier).with_context(|| {
            "the independent classifier is missing: `vae train-classifier` makes one"
        })?;
    let opts = trainer::eval::EvalOptions {
        iwae_k: args.iwae_k,
        per_digit: args.per_digit,
        seed: args.seed,
        classifier: Some(&classifier),
    };
    let report = trainer::eval::evaluate_model(&vae, &test_set, &opts)?;
    let out = args.out.unwrap_or_else(|| args.run.join("eval.json"));
    trainer::io::write_json(&out, &report)?;

    let pct = |v: Option<f32>| v.map_or("-".to_string(), |v| format!("{:.2} %", 100.0 * v));
    let nats = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    println!(
        "{} on {} test images; decoder {} parameters, latent {}",
        args.run.display(),
        report.test_images,
        report.decoder_parameters,
        report.latent
    );
    println!("{:<46} {:>10} {:>10} {:>10}", "", "f32", "f16", "i8");
    type Metrics = trainer::eval::Metrics;
    let cells = |f: &dyn Fn(&Metrics) -> String| [f(&report.f32), f(&report.f16), f(&report.i8)];
    let share = |v: Option<f32>| v.map_or("-".into(), |v| format!("{:.2} %", 100.0 * v));
    let rows = [
        (
            "test loss, continuous pixels (nats)",
            cells(&|m| format!("{:.3}", m.test_loss)),
        ),
        (
            "test ELBO, pixels binarized at 0.5",
            cells(&|m| format!("{:.3}", m.test_elbo_binarized)),
        ),
        (
            "IWAE -log p(x), stochastic binarization",
            cells(&|m| m.iwae_nll.map_or("-".into(), |v| format!("{v:.3}"))),
        ),
        (
            "label fidelity T=1 (independent classifier)",
            cells(&|m| share(m.label_fidelity)),
        ),
        (
            "label fidelity T=0.5 (independent classifier)",
            cells(&|m| share(m.label_fidelity_t05)),
        ),
        (
            "label fidelity T=1 (model's own head)",
            cells(&|m| share(m.label_fidelity_head)),
        ),
    ];
    for (name, [a, b, c]) in rows {
        println!("{name:<46} {a:>10} {b:>10} {c:>10}");
    }
    println!(
        "f16 - f32: test loss {:+.4}, binarized ELBO {:+.4}, IWAE {}",
        report.f16_minus_f32.test_loss,
        report.f16_minus_f32.test_elbo_binarized,
        nats(report.f16_minus_f32.iwae_nll)
    );
    println!(
        "classifier accuracy on the test set: independent {}, model's head {}",
        pct(report.classifier_accuracy),
        pct(report.head_accuracy)
    );
    println!("wrote {}", out.display());
    Ok(())
}

fn run_pictures(args: PicturesArgs) -> Result<()> {
    let dev = Cpu::default();
    let (_, vae) = checkpoint::load(&dev, &args.run)?;
    let history: Vec<trainer::train::EpochRecord> =
        trainer::io::read_json(&RunDir(args.run.clone()).history())?;
    let test_set = Dataset::load(&args.data_dir, Split::Test)?;
    let out = args.out_dir.unwrap_or_else(|| args.run.join("pictures"));
    for path in pictures::run_pictures(&vae, &history, &test_set, (args.from, args.to), &out)? {
        println!("wrote {}", path.display());
    }
    // A run trained with --snapshots (and perhaps stopped early): its GIF.
    if pictures::epochs_dir(&args.run).is_dir() {
        println!(
            "wrote {}",
            pictures::epochs_gif(&args.run, history.len())?.display()
        );
    }
    Ok(())
}
