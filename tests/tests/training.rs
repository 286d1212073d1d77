//! A short real training run on a slice of real MNIST: the loss goes down, the run
//! folder is written, and the checkpoint loads back to the same model.

use dfdx::prelude::*;
use trainer::checkpoint;
use trainer::data::{Dataset, Split};
use trainer::model::{Act, ModelConfig};
use trainer::train::{evaluate, train, RunOptions, TrainConfig};
use vae_tests::{mnist_dir, scratch_dir};

fn load(split: Split, n: usize) -> Dataset {
    Dataset::load(&mnist_dir(), split)
        .unwrap_or_else(|e| panic!("{e:#} (the tests need real MNIST)"))
        .truncated(n)
}

#[test]
fn loss_goes_down_on_a_slice_of_mnist() {
    let train_set = load(Split::Train, 3000);
    let test_set = load(Split::Test, 1000);
    let config = TrainConfig {
        model: ModelConfig {
            latent: 4,
            encoder_hidden: vec![64],
            decoder_hidden: vec![32],
            activation: Act::Relu,
            classes: 10,
            classifier_hidden: vec![32],
            encoder_sees_label: true,
        },
        epochs: 3,
        batch_size: 50,
        learning_rate: 1e-3,
        class_weight: 10.0,
        seed: 1,
        train_limit: Some(3000),
    };
    let out = scratch_dir("training");
    let dev = Cpu::seed_from_u64(1);
    let opts = RunOptions {
        out: &out,
        progress: false,
    };
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
    let a = evaluate(&dev, &vae, &test_set, 99);
    let b = evaluate(&dev, &loaded, &test_set, 99);
    assert_eq!(a, b);
    let history_json = std::fs::read_to_string(out.join("history.json")).unwrap();
    assert!(history_json.contains("\"epoch\": 3"));
}
