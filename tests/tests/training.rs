//! Short real training runs on slices of real MNIST: the loss goes down, the run folder
//! is written, the checkpoint loads back to the same model, `resume` continues exactly,
//! and a loss that turns NaN stops training with the last good checkpoint intact.

use dfdx::prelude::*;
use mnist::Split;
use trainer::eval::mean_loss::mean_loss;
use trainer::foundation::config::{Binarize, DataOptions, LrSchedule, Preset, TrainConfig};
use trainer::foundation::run_dir::RunDir;
use trainer::output::export::{model_file, quantized};
use trainer::train::checkpoint;
use trainer::train::run::{resume, train, RunOptions};
use vae_core::{Model, Precision};
use vae_tests::{load_mnist, scratch_dir};

/// The default conditional model, shrunk to train in seconds.
fn small_config() -> TrainConfig {
    let mut config = TrainConfig::default();
    config.model.latent = 4;
    config.model.encoder_hidden = vec![64];
    config.model.decoder_hidden = vec![32];
    config.model.classifier_hidden = vec![32];
    config.epochs = 3;
    config.batch_size = 50;
    config.seed = 1;
    config.train_limit = Some(3000);
    // The class weight and rate these tests' bounds were measured with.
    config.class_weight = 8.0;
    config.lr_schedule = LrSchedule::Constant;
    config
}

/// A fresh, empty run folder.
fn run_dir(name: &str) -> RunDir {
    RunDir::new(scratch_dir(name))
}

fn quiet(run: &RunDir) -> RunOptions<'_, Cpu> {
    RunOptions {
        run,
        progress: false,
        after_epoch: None,
    }
}

#[test]
fn loss_goes_down_on_a_slice_of_mnist() {
    let train_set = load_mnist(Split::Train, 3000);
    let test_set = load_mnist(Split::Test, 1000);
    let config = small_config();
    let out = run_dir("training");
    let dev = Cpu::seed_from_u64(1);
    let opts = quiet(&out);
    let (vae, history) = train(&dev, &config, &train_set, &test_set, &opts).unwrap();

    assert_eq!(history.len(), 3);
    let test: Vec<f32> = history.iter().map(|r| r.test.neg_elbo()).collect();
    let train_loss: Vec<f32> = history.iter().map(|r| r.train.neg_elbo()).collect();
    assert!(test[2] < test[1] && test[1] < test[0], "test loss {test:?}");
    assert!(train_loss[2] < train_loss[0], "train loss {train_loss:?}");
    // An untrained decoder outputs about 0.5 everywhere: 784 ln 2 = 543 nats. Three short
    // epochs already get far below half of that.
    assert!(test[2] < 272.0, "test loss {test:?}");
    let classifier_ce = history[2].test.classifier;
    assert!(
        classifier_ce < 1.0,
        "classifier cross-entropy {classifier_ce}"
    );

    // The run folder holds what `export` needs, and the checkpoint is the trained model.
    let (saved_config, loaded) = checkpoint::load(&dev, &out).unwrap();
    assert_eq!(saved_config, config);
    let a = mean_loss(&vae, &test_set, DataOptions::default(), 99);
    let b = mean_loss(&loaded, &test_set, DataOptions::default(), 99);
    assert_eq!(a, b);
    let history_json = std::fs::read_to_string(out.history()).unwrap();
    assert!(history_json.contains("\"epoch\": 3"));
}

/// The tutorial's convolutional model, trained on a slice of real MNIST: the loss goes
/// down, the checkpoint loads back, and its exported decoder (format 3's transposed
/// convolutions) draws what the trainer draws.
#[test]
fn a_convolutional_model_learns_on_a_slice_of_mnist() {
    let train_set = load_mnist(Split::Train, 2000);
    let test_set = load_mnist(Split::Test, 500);
    let config = TrainConfig {
        epochs: 2,
        train_limit: Some(2000),
        ..Preset::Tutorial.config()
    };
    let out = run_dir("training-conv");
    let dev = Cpu::seed_from_u64(1);
    let (vae, history) = train(&dev, &config, &train_set, &test_set, &quiet(&out)).unwrap();
    let test: Vec<f32> = history.iter().map(|r| r.test.neg_elbo()).collect();
    // Untrained: about 784 ln 2 = 543 nats. Two epochs of 2,000 images pass 250.
    assert!(test[1] < test[0] && test[1] < 250.0, "test loss {test:?}");
    let (_, loaded) = checkpoint::load(&dev, &out).unwrap();
    let options = config.data_options().for_test();
    assert_eq!(
        mean_loss(&vae, &test_set, options, 5),
        mean_loss(&loaded, &test_set, options, 5)
    );

    let bytes = model_file(&vae, Precision::F16).unwrap();
    let model = Model::parse(&bytes).unwrap();
    assert!(model.architecture().transposed_convs.is_some());
    let mut scratch = vec![0u32; model.scratch_len()];
    let zs = vae_tests::latents(2, 8);
    let input: Vec<f32> = zs.concat();
    let theirs = quantized(&vae, Precision::F16)
        .unwrap()
        .decode_images(input);
    for (z, want) in zs.iter().zip(&theirs) {
        let mut pixels = [0u8; vae_core::PIXELS];
        model.decode(z, &mut scratch, &mut pixels).unwrap();
        // The same f16-rounded weights summed in another order: a pixel may round the
        // other way where its probability sits on a rounding boundary, by one level.
        let off = pixels.iter().zip(want).filter(|(a, b)| a != b).count();
        let far = pixels.iter().zip(want).any(|(a, b)| a.abs_diff(*b) > 1);
        assert!(off <= 8 && !far, "{off} pixels differ");
    }
}

/// Dynamic binarization, KL warm-up, denoising, a cosine learning rate and a critic's
/// draws from the prior all depend on the epoch or step, and the critic's weights and
/// Adam's state for it live in the resume state too: a run stopped after epoch 1 and
/// resumed must still end with the same bytes.
#[test]
fn resume_continues_exactly_where_the_run_stopped() {
    let train_set = load_mnist(Split::Train, 1000);
    let test_set = load_mnist(Split::Test, 300);
    let mut config = small_config();
    config.train_limit = Some(1000);
    config.binarize = Binarize::Dynamic;
    config.kl_warmup = 2;
    config.denoise = 0.3;
    config.lr_schedule = LrSchedule::Cosine;
    config.model.critic_hidden = vec![32];
    config.adversarial_weight = 2.0;
    config.feature_weight = 0.5;
    let dev = Cpu::seed_from_u64(1);
    let straight = run_dir("resume-straight");
    let (_, full) = train(&dev, &config, &train_set, &test_set, &quiet(&straight)).unwrap();

    // The same run, stopped right after epoch 1's files are written (as a kill would).
    let stopped = run_dir("resume-stopped");
    let stop = |epoch: usize, _: &mut trainer::train::step::Training<Cpu>| match epoch {
        1 => Err(std::io::Error::other("stopped").into()),
        _ => Ok(()),
    };
    let opts = RunOptions {
        after_epoch: Some(&stop),
        ..quiet(&stopped)
    };
    assert!(train(&dev, &config, &train_set, &test_set, &opts).is_err());
    let (_, resumed) = resume(&dev, None, &train_set, &test_set, &quiet(&stopped)).unwrap();

    let losses = |h: &[trainer::output::history::EpochRecord]| -> Vec<(f32, f32, f32)> {
        h.iter()
            .map(|r| (r.train.neg_elbo(), r.test.neg_elbo(), r.train.critic))
            .collect()
    };
    assert!(
        full.iter().all(|r| r.train.critic > 0.0),
        "no critic trained"
    );
    assert_eq!(losses(&resumed), losses(&full));
    let a = std::fs::read(straight.checkpoint()).unwrap();
    let b = std::fs::read(stopped.checkpoint()).unwrap();
    assert!(a == b, "the checkpoints differ");
    // The optimizer states too (compared as values: the file's metadata order varies).
    let state_a = checkpoint::load_resume(&dev, &straight).unwrap();
    let state_b = checkpoint::load_resume(&dev, &stopped).unwrap();
    let (adam_a, adam_b) = (&state_a.adam, &state_b.adam);
    assert_eq!(
        (state_a.epoch, adam_a.settings.steps()),
        (state_b.epoch, adam_b.settings.steps())
    );
    assert!(adam_a.moments == adam_b.moments, "Adam moments differ");
    // Nothing left to do: a clear error, not a silent no-op.
    let err = resume(&dev, None, &train_set, &test_set, &quiet(&stopped)).unwrap_err();
    assert!(
        format!("{err:#}").contains("already has 3 of 3 epochs"),
        "{err:#}"
    );

    // Stopped in the middle of epoch 2's writes: whichever of its three files cannot be
    // written (here: a folder stands in its place), the files written before it and
    // epoch 1's files after it make a folder that resumes to the same bytes. (This is
    // why the history is written before the resume state: the other order fails this
    // for `history.json`.)
    for file in [
        "history.json",
        "resume.safetensors",
        "checkpoint.safetensors",
    ] {
        let torn = run_dir(&format!("resume-torn-{file}"));
        let (path, kept) = (torn.path().join(file), torn.path().join("kept"));
        let block = |epoch: usize, _: &mut trainer::train::step::Training<Cpu>| {
            assert_eq!(epoch, 1, "epoch 2 should have failed to write {file}");
            std::fs::rename(&path, &kept).unwrap();
            std::fs::create_dir(&path).unwrap();
            Ok(())
        };
        let opts = RunOptions {
            after_epoch: Some(&block),
            ..quiet(&torn)
        };
        let err = train(&dev, &config, &train_set, &test_set, &opts).unwrap_err();
        assert!(format!("{err:#}").contains(file), "{err:#}");
        std::fs::remove_dir(&path).unwrap();
        std::fs::rename(&kept, &path).unwrap();
        let (_, resumed) = resume(&dev, None, &train_set, &test_set, &quiet(&torn))
            .unwrap_or_else(|e| panic!("{file} not written: {e:#}"));
        assert_eq!(losses(&resumed), losses(&full), "{file} not written");
        let c = std::fs::read(torn.checkpoint()).unwrap();
        assert!(a == c, "the checkpoints differ ({file} not written)");
    }
}

#[test]
fn a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint() {
    let train_set = load_mnist(Split::Train, 500);
    let test_set = load_mnist(Split::Test, 200);
    let mut config = small_config();
    config.train_limit = Some(500);
    let dev = Cpu::seed_from_u64(1);
    let out = run_dir("nan");
    // After epoch 1's checkpoint is written, one decoder weight becomes NaN.
    let poison = |epoch: usize, training: &mut trainer::train::step::Training<Cpu>| {
        if epoch == 1 {
            let mut vae = training.model()?;
            let layer = &mut vae.decoder.layers[0];
            let mut w = layer.weight.as_vec();
            w[0] = f32::NAN;
            layer.weight = dev.tensor_from_vec(w, *layer.weight.shape());
            training.set_weights(&vae)?;
        }
        Ok(())
    };
    let opts = RunOptions {
        after_epoch: Some(&poison),
        ..quiet(&out)
    };
    let err = train(&dev, &config, &train_set, &test_set, &opts).unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("training diverged in epoch 2: loss is NaN")
            && message.contains("the checkpoint of epoch 1 is kept"),
        "{message}"
    );
    let (_, kept) = checkpoint::load(&dev, &out).unwrap();
    assert!(kept.decoder.layers[0]
        .weight
        .as_vec()
        .iter()
        .all(|w| w.is_finite()));
    let history = std::fs::read_to_string(out.history()).unwrap();
    assert!(history.contains("\"epoch\": 1") && !history.contains("\"epoch\": 2"));
    // And the run can be resumed from there.
    let (_, resumed) = resume(&dev, None, &train_set, &test_set, &quiet(&out)).unwrap();
    assert_eq!(resumed.len(), 3);
}

/// `init` starts a run from another run's weights (here with a rate too small to move
/// them, so that the fine-tuned model is the one it started from), an importance-weighted
/// run reports a bound tighter than the ELBO, and a model of another shape and a
/// conditional importance-weighted run are refused.
#[test]
fn fine_tuning_starts_from_the_given_run() {
    let train_set = load_mnist(Split::Train, 600);
    let test_set = load_mnist(Split::Test, 200);
    let mut config = small_config();
    config.model = config.model.unconditional();
    config.train_limit = Some(600);
    config.epochs = 2;
    config.binarize = Binarize::Dynamic;
    let dev = Cpu::seed_from_u64(1);
    let base = run_dir("init-base");
    let (trained, _) = train(&dev, &config, &train_set, &test_set, &quiet(&base)).unwrap();

    let mut tuned_config = config.clone();
    tuned_config.init = Some(base.path().to_path_buf());
    tuned_config.importance_samples = 5;
    tuned_config.epochs = 1;
    tuned_config.learning_rate = 1e-12;
    let tuned_run = run_dir("init-tuned");
    let (tuned, history) = train(
        &dev,
        &tuned_config,
        &train_set,
        &test_set,
        &quiet(&tuned_run),
    )
    .unwrap();
    let options = DataOptions {
        binarize: Binarize::Dynamic,
        ..DataOptions::default()
    };
    let before = mean_loss(&trained, &test_set, options, 5).neg_elbo();
    let after = mean_loss(&tuned, &test_set, options, 5).neg_elbo();
    // Steps of 1e-12 move a loss of a few hundred nats by far less than 0.01; a fresh
    // model would be about 100 nats away (measured: 454 after the base run's 2 epochs,
    // 552 with `init` ignored).
    assert!((after - before).abs() < 0.01, "{before} then {after}");
    // The bound the run reports, with 5 draws per image, is tighter than the same
    // model's ELBO on the same images (each from its own binarization and noise draws):
    // measured 447.8 against 454.4; the ELBO's own average in place of the bound gave
    // 454.2, which fails.
    let bound = history[0].train.neg_elbo();
    let elbo = mean_loss(&trained, &train_set, options, 5).neg_elbo();
    assert!(bound < elbo - 1.0, "bound {bound}, ELBO {elbo}");

    let refusal = |config: &TrainConfig, name: &str| {
        let run = run_dir(name);
        let err = train(&dev, config, &train_set, &test_set, &quiet(&run)).unwrap_err();
        format!("{err:#}")
    };
    let mut other = tuned_config.clone();
    other.model.latent += 1;
    let message = refusal(&other, "init-other");
    assert!(
        message.contains("is not the one this run trains"),
        "{message}"
    );
    let mut conditional = small_config();
    conditional.importance_samples = 5;
    let message = refusal(&conditional, "iw-cond");
    assert!(message.contains("unconditional models only"), "{message}");
}
