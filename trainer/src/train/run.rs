//! The training loop: shuffled mini-batches, one optimization step each, a test-set
//! evaluation and the run folder's files after every epoch; and resuming a stopped run
//! exactly where it stopped.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use mnist::Dataset;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::data::batch::Images;
use crate::eval::fidelity::label_fidelity;
use crate::foundation::config::TrainConfig;
use crate::foundation::io::write_json;
use crate::foundation::progress;
use crate::foundation::run_dir::RunDir;
use crate::nn::adam::AdamState;
use crate::nn::model::Vae;
use crate::nn::model::{LossWeights, MeanLoss};
use crate::output::history::{self, EpochRecord};
use crate::train::checkpoint;
use crate::train::step::{TrainDevice, Training};

/// Where a run's output goes and how chatty it is.
pub struct RunOptions<'a, D: TrainDevice> {
    /// The run folder (created if needed).
    pub run: &'a RunDir,
    /// Show progress bars (off for tests and non-interactive logs).
    pub progress: bool,
    /// Called after each epoch's checkpoint is written, with the model as it trains
    /// (pictures per epoch; tests use it to tamper with the weights).
    pub after_epoch: Option<&'a EpochHook<'a, D>>,
}

/// See [`RunOptions::after_epoch`].
pub type EpochHook<'a, D> = dyn Fn(usize, &mut Training<D>) -> Result<()> + 'a;

/// Trains a model from scratch on `train`, evaluating on `test` after every epoch.
/// Returns the model and its per-epoch history, both also written to the run folder.
pub fn train<D: TrainDevice>(
    dev: &D,
    config: &TrainConfig,
    train: &Dataset,
    test: &Dataset,
    opts: &RunOptions<D>,
) -> Result<(Vae<D>, Vec<EpochRecord>)> {
    config.validate()?;
    opts.run.create()?;
    write_json(&opts.run.config(), config)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let vae = match &config.init {
        Some(dir) => initial_weights(dev, config, dir, &mut rng)?,
        None => Vae::new(dev, &config.model, &mut rng),
    };
    let adam = AdamState::new(&vae, config.learning_rate);
    run_epochs(
        config,
        Training::new(vae, adam)?,
        Vec::new(),
        train,
        test,
        opts,
    )
}

/// The weights of the run in `dir` (its checkpoint), for a run of shape `config.model`,
/// whose critic (training only) is this run's own: drawn from `rng` afresh.
fn initial_weights<D: TrainDevice>(
    dev: &D,
    config: &TrainConfig,
    dir: &Path,
    rng: &mut impl rand::Rng,
) -> Result<Vae<D>> {
    let (from, mut vae) = checkpoint::load(dev, &RunDir::new(dir))
        .with_context(|| format!("--init {}: cannot start from it", dir.display()))?;
    if from.model.clone().with_critic_of(&config.model) != config.model {
        bail!(
            "--init {}: its model ({:?}) is not the one this run trains ({:?})",
            dir.display(),
            from.model,
            config.model
        );
    }
    vae.config = config.model.clone();
    vae.critic = Vae::new_critic(dev, &config.model, rng);
    Ok(vae)
}

/// Continues the run in `opts.run` where its last complete epoch left it, up to
/// `epochs` epochs in all (its saved count when `None`). Model, optimizer state and
/// step come from `resume.safetensors`; every epoch's randomness derives from the seed
/// and the epoch number alone, so the result equals an uninterrupted run.
pub fn resume<D: TrainDevice>(
    dev: &D,
    epochs: Option<usize>,
    train: &Dataset,
    test: &Dataset,
    opts: &RunOptions<D>,
) -> Result<(Vae<D>, Vec<EpochRecord>)> {
    let run = opts.run;
    let checkpoint::ResumeState {
        mut config,
        vae,
        adam,
        epoch: done,
    } = checkpoint::load_resume(dev, run)?;
    if let Some(epochs) = epochs {
        config.epochs = epochs;
    }
    config.validate()?;
    let mut history = history::load(run)?;
    // The history is one epoch ahead if a stop fell between its write and the resume
    // state's (see `run_epochs`); that epoch is trained again.
    history.retain(|r| r.epoch <= done);
    if history.len() != done {
        bail!(
            "{} has {} epochs, the resume state {done}: the run folder is inconsistent",
            run.history().display(),
            history.len()
        );
    }
    if done >= config.epochs {
        bail!(
            "the run already has {done} of {} epochs; give --epochs to train further",
            config.epochs
        );
    }
    write_json(&run.config(), &config)?;
    crate::say!("resuming {run} after epoch {done}");
    run_epochs(
        &config,
        Training::new(vae, adam)?,
        history,
        train,
        test,
        opts,
    )
}

/// The random generator of epoch `epoch` (shuffling, noise): a function of the seed and
/// the epoch only, so that a resumed run draws what an uninterrupted one would.
fn epoch_rng(seed: u64, epoch: usize) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn run_epochs<D: TrainDevice>(
    config: &TrainConfig,
    mut training: Training<D>,
    mut history: Vec<EpochRecord>,
    train: &Dataset,
    test: &Dataset,
    opts: &RunOptions<D>,
) -> Result<(Vae<D>, Vec<EpochRecord>)> {
    let run = opts.run;
    let used = config
        .train_limit
        .map_or(train.len(), |n| n.min(train.len()));
    let steps_per_epoch = used.div_ceil(config.batch_size);
    let data = config.data_options();
    let images = Images::new(
        &training.device(),
        train,
        &config.model,
        data,
        D::KEEPS_IMAGES,
    );
    let mut times = Times::default();

    for epoch in history.len() + 1..=config.epochs {
        let mut rng = epoch_rng(config.seed, epoch);
        let mut order: Vec<usize> = (0..used).collect();
        order.shuffle(&mut rng);
        let label = format!("epoch {epoch}/{}", config.epochs);
        let bar = progress::bar(opts.progress, order.len(), label);
        let started = Instant::now();
        let mut sum = MeanLoss::default();
        for (step, chunk) in order.chunks(config.batch_size).enumerate() {
            let global = (epoch - 1) * steps_per_epoch + step;
            let weights = LossWeights::at_step(config, steps_per_epoch, global);
            let lr = config.lr_schedule.rate(
                config.learning_rate,
                global,
                config.epochs * steps_per_epoch,
            );
            let terms = training.step((&images, chunk), &mut rng, weights, lr);
            let value = terms.objective(&weights);
            if !value.is_finite() {
                bar.finish_and_clear();
                bail!(
                    "training diverged in epoch {epoch}: loss is {value}; try a lower \
                     --learning-rate ({})",
                    kept(epoch)
                );
            }
            sum.add(&terms, chunk.len());
            bar.inc(chunk.len() as u64);
            let mean = sum.mean();
            let mut class = if config.model.classes > 0 {
                format!(", class {:.3}", mean.classifier)
            } else {
                String::new()
            };
            if !config.model.critic_hidden.is_empty() {
                class += &format!(
                    "; critic {:.3}, adversarial {:.3}",
                    mean.critic, mean.adversarial
                );
            }
            bar.set_message(format!(
                "loss {:.2} (recon {:.2} + KL {:.2}{class})  {:.0} img/s",
                mean.neg_elbo(),
                mean.reconstruction,
                mean.kl,
                sum.images() as f64 / started.elapsed().as_secs_f64()
            ));
        }
        bar.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64();
        times.steps += seconds;
        let evaluating = Instant::now();
        let (options, seed) = (data.for_test(), config.seed ^ epoch as u64);
        let test_terms = training.mean_loss(test, options, seed);
        let vae = training.model()?;
        let fidelity = label_fidelity(&vae, 100, 1.0, config.seed);
        times.evaluation += evaluating.elapsed().as_secs_f64();
        let record = EpochRecord {
            epoch,
            train: sum.mean(),
            test: test_terms,
            images_per_second: order.len() as f64 / seconds,
            label_fidelity: fidelity,
        };
        if !record.test.neg_elbo().is_finite() {
            bail!(
                "the test loss after epoch {epoch} is {} ({})",
                record.test.neg_elbo(),
                kept(epoch)
            );
        }
        let mut class = match record.label_fidelity {
            Some(f) => format!(
                "  class CE {:.3}  label fidelity {:.1}%",
                record.test.classifier,
                100.0 * f
            ),
            None => String::new(),
        };
        if !config.model.critic_hidden.is_empty() {
            class += &format!(
                "  critic {:.3}  adversarial {:.3} (training)",
                record.train.critic, record.train.adversarial
            );
        }
        crate::say!(
            "epoch {epoch:>3}/{}  train loss {:7.2}  test loss {:7.2} (recon {:6.2} + KL {:5.2}){class}  \
             {:>6.0} img/s",
            config.epochs,
            record.train.neg_elbo(),
            record.test.neg_elbo(),
            record.test.reconstruction,
            record.test.kl,
            record.images_per_second
        );
        history.push(record);
        let writing = Instant::now();
        // The history first, then the resume state, which alone says how far the run
        // got: a stop between the two leaves the history one epoch ahead, and `resume`
        // drops that record (the other order would lose a record it cannot rebuild).
        // Each file is written to a temporary name and renamed, so a stop leaves the
        // previous one whole.
        history::save(run, &history)?;
        checkpoint::save_resume(&vae, &training.adam_state()?, epoch, run)?;
        checkpoint::save(&vae, run)?;
        times.files += writing.elapsed().as_secs_f64();
        if let Some(hook) = opts.after_epoch {
            let hook_started = Instant::now();
            hook(epoch, &mut training)?;
            times.after_epoch += hook_started.elapsed().as_secs_f64();
        }
    }
    crate::say!("{times}");
    Ok((training.model()?, history))
}

/// Where the epochs' time went, in seconds.
#[derive(Default)]
struct Times {
    /// The training steps (and the progress bar).
    steps: f64,
    /// The test set's loss and the label fidelity after each epoch.
    evaluation: f64,
    /// The history, the resume state and the checkpoint.
    files: f64,
    /// [`RunOptions::after_epoch`] (the snapshots).
    after_epoch: f64,
}

impl std::fmt::Display for Times {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let all = self.steps + self.evaluation + self.files + self.after_epoch;
        write!(
            f,
            "time in epochs: {all:.1} s, of which training steps {:.1} s ({:.1} %), test \
             evaluation {:.1} s, run folder files {:.1} s, snapshots {:.1} s",
            self.steps,
            100.0 * self.steps / all.max(f64::MIN_POSITIVE),
            self.evaluation,
            self.files,
            self.after_epoch
        )
    }
}

/// What is left when epoch `epoch` fails.
fn kept(epoch: usize) -> String {
    match epoch {
        1 => "no checkpoint was written".to_string(),
        _ => format!("the checkpoint of epoch {} is kept", epoch - 1),
    }
}
