//! The command line's arguments: one struct per command, every flag's help and
//! default. The defaults of `vae train` are [`TrainConfig::default`]'s.

use std::path::PathBuf;
use std::sync::LazyLock;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use trainer::eval::report::EvalOptions;
use trainer::foundation::config::{Binarize, LrSchedule, Preset, TrainConfig};
use trainer::foundation::io::read_json;
use vae_core::Activation;

/// The defaults every flag of `vae train` starts from.
static DEFAULT: LazyLock<TrainConfig> = LazyLock::new(TrainConfig::default);

/// Train a variational autoencoder on MNIST, shrink its decoder to f16, and draw digits.
#[derive(Parser)]
#[command(version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a model on MNIST; after every epoch writes config.json, history.json,
    /// resume.safetensors and checkpoint.safetensors into the run folder.
    Train(TrainArgs),
    /// Write a trained decoder as model files (f16, f32 and i8) for `sample` and the
    /// firmware.
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
    /// Train the independent digit classifier (a small CNN) that `vae eval` judges
    /// generated digits with: label fidelity, and the Fréchet distance on its features.
    TrainClassifier(TrainClassifierArgs),
    /// Draw the images a firmware run printed (its `pixels` lines) into a PNG grid.
    FirmwarePng(FirmwarePngArgs),
    /// Print a firmware run's own measurements on one line: precision, parameters,
    /// flash and RAM bytes, instructions per digit and per multiply-accumulate.
    FirmwareCosts(FirmwareCostsArgs),
    /// Print the settings `vae train` records in config.json for a new run: the
    /// defaults, or a preset's.
    Config(ConfigArgs),
    /// Check every code path training takes on a device against the CPU (matrix
    /// product, gradients, Adam); prints one line per stage, fails if any fails.
    DeviceCheck(DeviceCheckArgs),
}

#[derive(Args)]
pub struct ConfigArgs {
    /// The preset to print.
    #[arg(long, value_enum, default_value_t = Preset::Default)]
    pub preset: Preset,
}

#[derive(Args)]
pub struct DeviceCheckArgs {
    /// The device to check: cuda (the first NVIDIA GPU; needs a `vae` built with
    /// `--features cuda`), or cpu (compared with itself: a check of the check).
    #[arg(long, value_enum, default_value_t = DeviceKind::Cuda)]
    pub device: DeviceKind,
}

#[derive(Args)]
pub struct TrainArgs {
    /// Folder with the four MNIST IDX files (raw or .gz).
    #[arg(long, default_value = "data/mnist")]
    pub data_dir: PathBuf,
    /// Run folder for the configuration, checkpoint and history.
    #[arg(long, default_value = "runs/default")]
    pub out: PathBuf,
    #[arg(long, value_parser = positive(), help = format!(
        "Passes over the 60,000 training images [default: {}; with --resume, the run's own]",
        DEFAULT.epochs
    ))]
    pub epochs: Option<usize>,
    /// Continue the run in --out from its last complete epoch, with its saved settings
    /// (only --epochs may change); the result equals an uninterrupted run.
    #[arg(long)]
    pub resume: bool,
    /// Start from the weights of the run in DIR (fine-tuning) instead of a fresh
    /// initialization; the model's shape is DIR's, while the optimizer and the
    /// learning-rate schedule start afresh.
    #[arg(long, value_name = "DIR", conflicts_with_all = [
        "resume", "latent", "encoder_hidden", "decoder_hidden", "classifier_hidden",
        "unconditional", "encoder_sees_label", "activation",
    ])]
    pub init: Option<PathBuf>,
    /// Train a named model and loss: default (the defaults, `models/default`'s), classic
    /// (the VAE of PyTorch's examples/vae) or quick (the quick start's 30-epoch model);
    /// `vae config --preset NAME` prints it.
    /// It fixes the shape, batch size, class weight and schedule: those flags conflict.
    #[arg(long, value_enum, conflicts_with_all = [
        "resume", "init", "latent", "encoder_hidden", "decoder_hidden", "classifier_hidden",
        "unconditional", "encoder_sees_label", "activation", "batch_size", "class_weight",
        "lr_schedule",
    ])]
    pub preset: Option<Preset>,
    /// Train with every setting recorded in FILE: a run's config.json, or `vae config`'s
    /// output (how scripts/reproduce.sh retrains a committed model); only --epochs may
    /// change, for a run that stopped early. The other setting flags conflict with it.
    #[arg(long = "config", value_name = "FILE", conflicts_with_all = [
        "resume", "init", "preset", "importance_samples", "binarize",
        "lr_schedule", "kl_warmup", "denoise", "batch_size", "learning_rate", "latent",
        "encoder_hidden", "decoder_hidden", "classifier_hidden", "unconditional",
        "encoder_sees_label", "activation", "class_weight", "seed", "train_limit",
    ])]
    pub config_file: Option<PathBuf>,
    /// Draws of z per image in the objective: 1 is the ELBO; K > 1 the tighter
    /// importance-weighted bound (IWAE), which trains towards a higher likelihood for
    /// K decoder passes per image (unconditional models).
    #[arg(long, default_value_t = DEFAULT.importance_samples, value_parser = positive())]
    pub importance_samples: usize,
    /// How grey pixels become targets: none (intensities, PyTorch example), dynamic
    /// (Bernoulli draw every time an image is used, IWAE paper), threshold (at 0.5,
    /// TensorFlow tutorial). [default: none; with --preset, the preset's]
    #[arg(long, value_enum)]
    pub binarize: Option<Binarize>,
    /// Learning rate over the run: constant, or cosine (annealed to 0 by the last epoch).
    #[arg(long, value_enum, default_value_t = DEFAULT.lr_schedule)]
    pub lr_schedule: LrSchedule,
    /// Raise the KL term's weight linearly from 0 to 1 over this many epochs.
    #[arg(long, default_value_t = DEFAULT.kl_warmup)]
    pub kl_warmup: usize,
    /// Denoising: add Gaussian noise of this standard deviation to the encoder's input
    /// (clipped to [0, 1]) and reconstruct the clean image; 0 is off.
    #[arg(long, default_value_t = DEFAULT.denoise)]
    pub denoise: f32,
    /// Also draw a sample grid after every epoch (DIR/epochs/epoch-NNN.png) and, at the
    /// end, an animated GIF of them (DIR/epochs.gif).
    #[arg(long)]
    pub snapshots: bool,
    /// Images per optimization step.
    #[arg(long, default_value_t = DEFAULT.batch_size, value_parser = positive())]
    pub batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = DEFAULT.learning_rate)]
    pub learning_rate: f32,
    /// Size of the latent code z.
    #[arg(long, default_value_t = DEFAULT.model.latent, value_parser = positive())]
    pub latent: usize,
    /// Encoder hidden widths, comma-separated (the encoder stays on the host).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT.model.encoder_hidden.clone(), value_parser = positive())]
    pub encoder_hidden: Vec<usize>,
    /// Decoder hidden widths, comma-separated (this part goes to the microcontroller).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT.model.decoder_hidden.clone(), value_parser = positive())]
    pub decoder_hidden: Vec<usize>,
    /// Classifier hidden widths, comma-separated (conditional models only).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT.model.classifier_hidden.clone(), value_parser = positive())]
    pub classifier_hidden: Vec<usize>,
    /// Train a plain VAE without labels (it cannot draw a chosen digit).
    #[arg(long)]
    pub unconditional: bool,
    /// Feed the classifier's class probabilities to the encoder too (conditional models),
    /// so z need not carry the digit and the decoder learns to follow the label.
    #[arg(long, default_value_t = DEFAULT.model.encoder_sees_label, action = clap::ArgAction::Set)]
    pub encoder_sees_label: bool,
    /// Hidden-layer non-linearity.
    #[arg(long, default_value = DEFAULT.model.activation.name(), value_parser = activation())]
    pub activation: Activation,
    /// Weight of the classifier's cross-entropy in the loss.
    #[arg(long, default_value_t = DEFAULT.class_weight)]
    pub class_weight: f32,
    /// Seed for initialization, shuffling and noise.
    #[arg(long, default_value_t = DEFAULT.seed)]
    pub seed: u64,
    /// Train on the first N training images only (quick runs).
    #[arg(long, value_parser = positive())]
    pub train_limit: Option<usize>,
    /// Evaluate on the first N test images only (quick runs).
    #[arg(long, value_parser = positive())]
    pub test_limit: Option<usize>,
    /// Hide the progress bars (per-epoch lines are still printed).
    #[arg(long)]
    pub no_progress: bool,
    /// Where to train: cpu, or cuda (the first NVIDIA GPU; needs a `vae` built with
    /// `--features cuda`).
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    pub device: DeviceKind,
}

/// Where training runs.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceKind {
    /// This machine's CPU cores.
    Cpu,
    /// The first NVIDIA GPU, through dfdx's CUDA backend.
    Cuda,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Run folder written by `vae train`.
    #[arg(long, default_value = "runs/default")]
    pub run: PathBuf,
    /// Folder for decoder-f16.vae, decoder-f32.vae and decoder-i8.vae (default: the run folder).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct SampleArgs {
    /// Model file to draw from.
    #[arg(long, default_value = "models/default/decoder-f16.vae")]
    pub model: PathBuf,
    /// PNG file to write (its name must end in .png).
    #[arg(long, default_value = "samples.png", value_parser = png_path())]
    pub out: PathBuf,
    /// Draw only this digit (conditional models); without it, one row per digit 0-9.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=9))]
    pub digit: Option<u8>,
    /// Images per digit (or in all, for an unconditional model).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub count: u16,
    /// Seed of the first column; column c uses seed + c.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Enlargement of each 28x28 image in the PNG.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub scale: u8,
    /// Also write the raw pixels (784 bytes per image, grid order) to this file.
    #[arg(long)]
    pub raw: Option<PathBuf>,
}

#[derive(Args)]
pub struct EvalArgs {
    /// Run folder written by `vae train`.
    #[arg(long, default_value = "runs/default")]
    pub run: PathBuf,
    /// Folder with the four MNIST IDX files (raw or .gz).
    #[arg(long, default_value = "data/mnist")]
    pub data_dir: PathBuf,
    /// Importance samples per test image for the IWAE estimate of -log p(x) (5,000 in
    /// the papers; about 30 minutes for f32 and f16 on 2 cores); 0 skips it. Unconditional
    /// models only.
    #[arg(long, default_value_t = EvalOptions::default().iwae_k)]
    pub iwae_k: usize,
    /// Samples per digit for label fidelity (conditional models).
    #[arg(long, default_value_t = EvalOptions::default().per_digit, value_parser = positive())]
    pub per_digit: usize,
    /// The independent digit classifier (see `vae train-classifier`).
    #[arg(long, default_value = "models/classifier")]
    pub classifier: PathBuf,
    /// JSON file to write [default: RUN/eval.json].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Evaluate on the first N test images only (quick checks).
    #[arg(long, value_parser = positive())]
    pub test_limit: Option<usize>,
    /// Seed of every random draw (the same for f32, f16 and i8).
    #[arg(long, default_value_t = EvalOptions::default().seed)]
    pub seed: u64,
}

#[derive(Args)]
pub struct PicturesArgs {
    /// Run folder written by `vae train`.
    #[arg(long, default_value = "runs/default")]
    pub run: PathBuf,
    /// Folder with the four MNIST IDX files (raw or .gz).
    #[arg(long, default_value = "data/mnist")]
    pub data_dir: PathBuf,
    /// Folder for the PNG files [default: RUN/pictures].
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Test image the morph starts from.
    #[arg(long, default_value_t = 3)]
    pub from: usize,
    /// Test image the morph ends at.
    #[arg(long, default_value_t = 2)]
    pub to: usize,
}

#[derive(Args)]
pub struct TrainClassifierArgs {
    /// Folder with the four MNIST IDX files (raw or .gz).
    #[arg(long, default_value = "data/mnist")]
    pub data_dir: PathBuf,
    /// Folder for classifier.safetensors and classifier.json.
    #[arg(long, default_value = "models/classifier")]
    pub out: PathBuf,
    /// Passes over the training set (12 give the committed judge's 99.3 %+).
    #[arg(long, default_value_t = 12, value_parser = positive())]
    pub epochs: usize,
    /// Seed for initialization, shuffling and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Hide the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Args)]
pub struct FirmwarePngArgs {
    /// The firmware's output, saved to a file (`-` reads standard input).
    pub log: PathBuf,
    /// PNG file to write (its name must end in .png).
    #[arg(long, default_value = "firmware.png", value_parser = png_path())]
    pub out: PathBuf,
    /// Images per row of the grid.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub columns: u16,
    /// Enlargement of each 28x28 image in the PNG.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub scale: u8,
}

#[derive(Args)]
pub struct FirmwareCostsArgs {
    /// The firmware's output, saved to a file (`-` reads standard input).
    pub log: PathBuf,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Model file to inspect.
    pub model: PathBuf,
}

fn positive() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
}

/// A path whose name ends in `.png`: the only image format the CLI writes, so that a
/// name asking for another is refused rather than given a PNG under that name.
fn png_path() -> impl TypedValueParser<Value = PathBuf> {
    clap::builder::PathBufValueParser::new().try_map(|path: PathBuf| {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"))
        {
            Ok(path)
        } else {
            Err(format!(
                "{} does not end in .png: images are written as PNG only",
                path.display()
            ))
        }
    })
}

fn activation() -> impl TypedValueParser<Value = Activation> {
    PossibleValuesParser::new(Activation::ALL.map(Activation::name))
        .try_map(|name| name.parse::<Activation>())
}

impl TrainArgs {
    /// The run these flags describe, for a new run: `--config`'s file, or the defaults
    /// (or a preset's) changed where a flag says so.
    pub fn config(&self) -> anyhow::Result<TrainConfig> {
        if let Some(file) = &self.config_file {
            let mut config: TrainConfig = read_json(file)?;
            config.epochs = self.epochs.unwrap_or(config.epochs);
            return Ok(config);
        }
        let mut config = match self.preset {
            Some(preset) => preset.config(),
            None => self.shape(),
        };
        config.epochs = self.epochs.unwrap_or(config.epochs);
        config.learning_rate = self.learning_rate;
        config.seed = self.seed;
        config.train_limit = self.train_limit;
        config.binarize = self.binarize.unwrap_or(config.binarize);
        config.kl_warmup = self.kl_warmup;
        config.denoise = self.denoise;
        config.importance_samples = self.importance_samples;
        config.init.clone_from(&self.init);
        Ok(config)
    }

    /// The defaults with the flags a preset would fix: shape, batch size, class weight
    /// and schedule.
    fn shape(&self) -> TrainConfig {
        let mut config = TrainConfig::default();
        let model = &mut config.model;
        model.latent = self.latent;
        model.encoder_hidden.clone_from(&self.encoder_hidden);
        model.decoder_hidden.clone_from(&self.decoder_hidden);
        model.activation = self.activation;
        model.classifier_hidden.clone_from(&self.classifier_hidden);
        model.encoder_sees_label = self.encoder_sees_label;
        if self.unconditional {
            config.model = config.model.unconditional();
        }
        config.batch_size = self.batch_size;
        config.class_weight = self.class_weight;
        config.lr_schedule = self.lr_schedule;
        config
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command, Preset};

    /// `vae train --preset NAME` trains what `vae config --preset NAME` prints: no flag's
    /// default overrides a preset's setting (as `--binarize` once did the tutorial's
    /// threshold).
    #[test]
    fn a_preset_trains_its_own_configuration() {
        for &preset in <Preset as clap::ValueEnum>::value_variants() {
            let cli = Cli::try_parse_from(["vae", "train", "--preset", preset.name()]).unwrap();
            let Command::Train(args) = cli.command else {
                panic!("not a train command")
            };
            let trained = serde_json::to_value(args.config().unwrap()).unwrap();
            let printed = serde_json::to_value(preset.config()).unwrap();
            assert_eq!(trained, printed, "{}", preset.name());
        }
    }
}
