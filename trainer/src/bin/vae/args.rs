//! The command line's arguments: one struct per command, every flag's help and
//! default. `vae train`'s settings are built from their one description,
//! [`SETTINGS`], with the defaults of [`TrainConfig::default`].

use std::path::{Path, PathBuf};

use clap::builder::{
    BoolValueParser, PossibleValue, PossibleValuesParser, RangedU64ValueParser, TypedValueParser,
};
use clap::parser::ValueSource;
use clap::{
    value_parser, Arg, ArgAction, ArgGroup, ArgMatches, Args, FromArgMatches, Parser, Subcommand,
};
use trainer::eval::report::EvalOptions;
use trainer::foundation::config::{setting, Preset, Setting, TrainConfig, Value, SETTINGS};
use trainer::foundation::io::read_json;

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
    /// resume.safetensors and checkpoint.safetensors into the run folder. A setting not
    /// given is the default shown, or the preset's, the file's (--config) or the stopped
    /// run's (--resume).
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
    #[arg(long, value_parser = preset(), default_value = Preset::Default.name())]
    pub preset: Preset,
}

#[derive(Args)]
pub struct DeviceCheckArgs {
    /// The device to check: cuda (the first NVIDIA GPU; needs a `vae` built with
    /// `--features cuda`), or cpu (compared with itself: a check of the check).
    #[arg(long, value_enum, default_value_t = DeviceKind::Cuda)]
    pub device: DeviceKind,
}

/// `vae train`'s flags: where the data and the run go, what the run starts from, and
/// every setting of [`SETTINGS`] (flattened in as [`Settings`]).
#[derive(Args)]
#[command(group(ArgGroup::new("start").args(["resume", "init", "preset", "config"])))]
pub struct TrainArgs {
    /// Folder with the four MNIST IDX files (raw or .gz).
    #[arg(long, default_value = "data/mnist")]
    pub data_dir: PathBuf,
    /// Run folder for the configuration, checkpoint and history.
    #[arg(long, default_value = "runs/default")]
    pub out: PathBuf,
    /// Continue the run in --out from its last complete epoch, with its saved settings
    /// (only --epochs may change); the result equals an uninterrupted run.
    #[arg(long)]
    pub resume: bool,
    #[arg(long, value_parser = preset(), help = format!(
        "Train a named model and loss (`vae config --preset NAME` prints it); it decides {}, \
         whose flags conflict with it",
        flags(|s| s.scope.decided_by().contains(&"preset")),
    ))]
    pub preset: Option<Preset>,
    #[arg(long = "config", id = "config", value_name = "FILE", help = format!(
        "Train with every setting recorded in FILE: a run's config.json, or `vae config`'s \
         output (how scripts/reproduce.sh retrains a committed model); only {} may change, \
         the other setting flags conflict with it",
        flags(|s| !s.scope.decided_by().contains(&"config")),
    ))]
    pub config_file: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
    /// Also draw a sample grid after every epoch (DIR/epochs/epoch-NNN.png) and, at the
    /// end, an animated GIF of them (DIR/epochs.gif).
    #[arg(long)]
    pub snapshots: bool,
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

impl TrainArgs {
    /// The run these flags describe, for a new run: the defaults, a preset's or
    /// `--config`'s file, changed where a setting's flag says so.
    pub fn config(&self) -> anyhow::Result<TrainConfig> {
        let mut config = match (&self.config_file, self.preset) {
            (Some(file), _) => read_json(file)?,
            (None, preset) => preset.unwrap_or(Preset::Default).config(),
        };
        for (setting, value) in &self.settings.given {
            (setting.set)(&mut config, value).map_err(anyhow::Error::msg)?;
        }
        Ok(config)
    }

    /// `--epochs`, if given (a resumed run's own otherwise).
    pub fn epochs(&self) -> Option<usize> {
        self.given("epochs").and_then(|n| n.parse().ok())
    }

    /// `--seed`, or the default's.
    pub fn seed(&self) -> u64 {
        let seed = self.given("seed").and_then(|n| n.parse().ok());
        seed.unwrap_or(TrainConfig::default().seed)
    }

    /// `--init`'s run folder, if given.
    pub fn init(&self) -> Option<&Path> {
        self.given("init").map(Path::new)
    }

    /// The value given to the setting `--name`, if given.
    fn given(&self, name: &str) -> Option<&str> {
        let name = setting(name).name;
        let mut given = self.settings.given.iter();
        given
            .find(|(s, _)| s.name == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The flags of [`SETTINGS`], each built from its description, and the values given on
/// the command line (in that list's order, the order they are applied in).
pub struct Settings {
    given: Vec<(&'static Setting, String)>,
}

impl Args for Settings {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let defaults = TrainConfig::default();
        cmd.args(SETTINGS.iter().map(|setting| flag(setting, &defaults)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for Settings {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let given = SETTINGS.iter().filter_map(|setting| {
            if matches.value_source(setting.name) != Some(ValueSource::CommandLine) {
                return None;
            }
            let value = match setting.value {
                Value::Switch => "true".to_owned(),
                _ => matches
                    .get_many::<String>(setting.name)?
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            };
            Some((setting, value))
        });
        Ok(Settings {
            given: given.collect(),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// A setting's flag: its help, its values (checked by clap's parsers, each given to
/// `set` as text), the default's value, and the flags that decide it as conflicts.
fn flag(setting: &'static Setting, defaults: &TrainConfig) -> Arg {
    let arg = Arg::new(setting.name)
        .long(setting.name)
        .help(setting.help)
        .value_name(setting.name.to_uppercase().replace('-', "_"))
        .conflicts_with_all(setting.scope.decided_by());
    let arg = match (setting.get)(defaults) {
        Some(default) if setting.value != Value::Switch => arg.default_value(default),
        _ => arg,
    };
    let count = |min| {
        RangedU64ValueParser::<u64>::new()
            .range(min..)
            .map(|n| n.to_string())
    };
    match setting.value {
        Value::Count { min } => arg.value_parser(count(min)),
        Value::Number => arg.value_parser(|x: &str| x.parse::<f32>().map(|x| x.to_string())),
        Value::Widths => arg
            .value_parser(count(1))
            .value_delimiter(',')
            .action(ArgAction::Append),
        Value::OneOf(names) => arg.value_parser(PossibleValuesParser::new(names)),
        Value::Bool => arg.value_parser(BoolValueParser::new().map(|b| b.to_string())),
        Value::Switch => arg.action(ArgAction::SetTrue),
        Value::Dir => arg.value_name("DIR").value_parser(value_parser!(String)),
    }
}

/// The flags of the settings `which` picks, for a help line.
fn flags(which: impl Fn(&Setting) -> bool) -> String {
    let names: Vec<String> = SETTINGS
        .iter()
        .filter(|s| which(s))
        .map(|s| format!("--{}", s.name))
        .collect();
    names.join(", ")
}

/// A preset's name; `--help` lists every preset with its summary.
fn preset() -> impl TypedValueParser<Value = Preset> {
    let names = Preset::ALL.map(|p| PossibleValue::new(p.name()).help(p.summary()));
    PossibleValuesParser::new(names).try_map(|name| name.parse::<Preset>())
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
    /// the papers; about 5 minutes for f32 and f16 of a dense decoder on 2 cores); 0
    /// skips it. Unconditional models only.
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::{CommandFactory, Parser};
    use trainer::foundation::config::{LrSchedule, SETTINGS};

    use super::{Cli, Command, Preset, TrainArgs, TrainConfig};

    fn train(args: &[&str]) -> TrainArgs {
        let args = ["vae", "train"].iter().chain(args);
        match Cli::try_parse_from(args).unwrap().command {
            Command::Train(args) => args,
            _ => panic!("not a train command"),
        }
    }

    /// The flags built from the settings' description are a valid command line.
    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// `vae train --preset NAME` trains what `vae config --preset NAME` prints: no flag's
    /// default overrides a preset's setting (as `--binarize` once did the tutorial's
    /// threshold).
    #[test]
    fn a_preset_trains_its_own_configuration() {
        for preset in Preset::ALL {
            let trained =
                serde_json::to_value(train(&["--preset", preset.name()]).config().unwrap());
            let printed = serde_json::to_value(preset.config()).unwrap();
            assert_eq!(trained.unwrap(), printed, "{}", preset.name());
        }
        let tutorial = train(&["--preset", "tutorial", "--seed", "3", "--epochs", "2"]);
        let expected = TrainConfig {
            seed: 3,
            epochs: 2,
            ..Preset::Tutorial.config()
        };
        assert_eq!(tutorial.config().unwrap(), expected);
    }

    /// A setting's flag given its default's own value trains the defaults; given another,
    /// it changes that setting.
    #[test]
    fn each_flag_sets_its_setting() {
        let defaults = TrainConfig::default();
        for setting in SETTINGS {
            if let Some(value) = (setting.get)(&defaults) {
                let flag = format!("--{}", setting.name);
                let config = train(&[&flag, &value]).config().unwrap();
                assert_eq!(config, defaults, "{flag} {value}");
            }
        }
        let config = train(&["--lr-schedule", "constant", "--encoder-hidden", "64,32"]);
        let config = config.config().unwrap();
        assert_eq!(config.lr_schedule, LrSchedule::Constant);
        assert_eq!(config.model.encoder_hidden, [64, 32]);
        let repeated = train(&["--decoder-hidden", "64", "--decoder-hidden", "32"]);
        assert_eq!(repeated.config().unwrap().model.decoder_hidden, [64, 32]);
        let fine_tuning = train(&["--init", "models/iwae", "--seed", "3", "--epochs", "5"]);
        assert_eq!(fine_tuning.init(), Some(Path::new("models/iwae")));
        assert_eq!((fine_tuning.seed(), fine_tuning.epochs()), (3, Some(5)));
        let resumed = train(&["--resume"]);
        assert_eq!(
            (resumed.init(), resumed.seed(), resumed.epochs()),
            (None, 0, None)
        );
        let unconditional = train(&["--unconditional", "--encoder-sees-label", "true"]);
        let model = unconditional.config().unwrap().model;
        assert_eq!((model.classes, model.encoder_sees_label), (0, false));
    }
}
