//! `vae eval`: a trained model's numbers on the 10,000 MNIST test images, in each of the
//! conventions the literature uses, for the f32 decoder and for its f16 and i8 exports.

use std::fmt;

use anyhow::Result;
use dfdx::prelude::*;
use mnist::Dataset;
use serde::Serialize;
use vae_core::{Precision, PIXELS};

use crate::eval::classifier::{intensities, Classifier, FEATURES};
use crate::eval::fidelity::{
    fidelity_inputs, independent_fidelity, label_fidelity, share_read_as_asked,
};
use crate::eval::frechet::{frechet_distance, FeatureStats};
use crate::eval::iwae::iwae_nll;
use crate::eval::mean_loss::mean_loss;
use crate::foundation::config::{Binarize, DataOptions};
use crate::foundation::tensor::argmax;
use crate::nn::model::Vae;
use crate::output::export::quantized;

/// Settings of an evaluation.
pub struct EvalOptions<'a> {
    /// Importance samples per image for the IWAE estimate (0 skips it).
    pub iwae_k: usize,
    /// Samples per digit for label fidelity.
    pub per_digit: usize,
    /// Seed of every random draw (the same for each weight precision).
    pub seed: u64,
    /// The independent classifier, if any.
    pub classifier: Option<&'a Classifier>,
}

impl Default for EvalOptions<'_> {
    /// The papers' 5,000 importance samples, 1,000 samples per digit, seed 0, no
    /// independent classifier.
    fn default() -> Self {
        EvalOptions {
            iwae_k: 5000,
            per_digit: 1000,
            seed: 0,
            classifier: None,
        }
    }
}

/// Every figure for one decoder precision.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    /// PyTorch-example convention: cross-entropy summed over the 784 continuous pixels
    /// plus KL, one z sample, nats per image (not a likelihood: it cannot go below the
    /// test set's pixel entropy, about 45.5 nats).
    pub test_loss: f32,
    /// Its reconstruction and KL parts.
    pub test_reconstruction: f32,
    /// KL(q(z|x) || p(z)).
    pub test_kl: f32,
    /// TensorFlow-tutorial convention: ELBO with pixels binarized at 0.5, one sample
    /// (negative; higher is better).
    pub test_elbo_binarized: f32,
    /// Literature convention: importance-weighted estimate of -log p(x) with `iwae_k`
    /// samples on the test set binarized stochastically (Bernoulli(intensity), fixed
    /// seed); meaningful for models trained with `--binarize dynamic`.
    pub iwae_nll: Option<f64>,
    /// Samples drawn for digit k (z ~ N(0, I)) that the model's own classifier head reads
    /// as k; conditional models only.
    pub label_fidelity_head: Option<f32>,
    /// The same at temperature 0.5 (z ~ N(0, 0.25 I)).
    pub label_fidelity_head_t05: Option<f32>,
    /// The same, read by the independent classifier.
    pub label_fidelity: Option<f32>,
    /// At temperature 0.5, read by the independent classifier.
    pub label_fidelity_t05: Option<f32>,
    /// Fréchet distance between the judge's features of the temperature-1 samples
    /// (`per_digit` per digit; `10 x per_digit` for an unconditional model) and of the
    /// test set: the MNIST analogue of FID (lower is better).
    pub frechet_distance: Option<f64>,
}

/// The evaluation of one model.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Decoder parameters (weights and biases).
    pub decoder_parameters: usize,
    /// Latent size.
    pub latent: usize,
    /// Whether the model draws chosen digits.
    pub conditional: bool,
    /// Importance samples per image used for `iwae_nll`.
    pub iwae_k: usize,
    /// Test images evaluated.
    pub test_images: usize,
    /// Test accuracy of the model's classifier head (conditional models).
    pub head_accuracy: Option<f32>,
    /// Test accuracy of the independent classifier.
    pub classifier_accuracy: Option<f32>,
    /// The f32 decoder, as trained.
    pub f32: Metrics,
    /// The decoder with its weights rounded as in `decoder-f16.vae`.
    pub f16: Metrics,
    /// The decoder with its weights quantized as in `decoder-i8.vae` (per-row scale; no
    /// IWAE estimate).
    pub i8: Metrics,
    /// `f16 - f32` for every figure (positive loss = f16 worse).
    pub f16_minus_f32: Metrics,
}

/// Evaluates `vae` as trained and with its decoder quantized to f16 and i8.
pub fn evaluate_model(vae: &Vae<Cpu>, test: &Dataset, opts: &EvalOptions) -> Result<Report> {
    let judge = match opts.classifier {
        Some(classifier) => {
            let (features, _) = classifier.judge(&test.intensities(0..test.len()))?;
            Some((classifier, FeatureStats::new(&features, FEATURES)?))
        }
        None => None,
    };
    let judge = judge.as_ref().map(|(c, stats)| (*c, stats));
    let f32 = measure(vae, test, opts, judge, true)?;
    let f16 = measure(&quantized(vae, Precision::F16)?, test, opts, judge, true)?;
    // The IWAE estimate is the slow one (minutes); for i8 it is left out.
    let i8 = measure(&quantized(vae, Precision::I8)?, test, opts, judge, false)?;
    let f16_minus_f32 = difference(&f16, &f32);
    Ok(Report {
        decoder_parameters: vae.decoder_parameters(),
        latent: vae.config.latent,
        conditional: vae.config.classes > 0,
        iwae_k: opts.iwae_k,
        test_images: test.len(),
        head_accuracy: head_accuracy(vae, test),
        classifier_accuracy: opts.classifier.map(|c| c.accuracy(test)).transpose()?,
        f32,
        f16,
        i8,
        f16_minus_f32,
    })
}

fn measure(
    vae: &Vae<Cpu>,
    test: &Dataset,
    opts: &EvalOptions,
    judge: Option<(&Classifier, &FeatureStats)>,
    with_iwae: bool,
) -> Result<Metrics> {
    let continuous = mean_loss(vae, test, DataOptions::default(), opts.seed);
    let threshold = DataOptions {
        binarize: Binarize::Threshold,
        ..DataOptions::default()
    };
    let binarized = mean_loss(vae, test, threshold, opts.seed);
    let fidelity = |t: f32| label_fidelity(vae, opts.per_digit, t, opts.seed);
    let (independent, independent_t05, frechet_distance) = match judge {
        Some((classifier, test_stats)) => {
            let (read, frechet) = judge_samples(vae, classifier, test_stats, opts)?;
            let t05 = independent_fidelity(vae, classifier, opts.per_digit, 0.5, opts.seed)?;
            (read, t05, Some(frechet))
        }
        None => (None, None, None),
    };
    Ok(Metrics {
        test_loss: continuous.neg_elbo(),
        test_reconstruction: continuous.reconstruction,
        test_kl: continuous.kl,
        test_elbo_binarized: -binarized.neg_elbo(),
        // A conditional decoder also gets the class probabilities, computed from the image
        // itself, so no estimate of p(x) comes out of it.
        iwae_nll: (with_iwae && opts.iwae_k > 0 && vae.config.classes == 0)
            .then(|| iwae_nll(vae, test, opts.iwae_k, opts.seed)),
        label_fidelity_head: fidelity(1.0),
        label_fidelity_head_t05: fidelity(0.5),
        label_fidelity: independent,
        label_fidelity_t05: independent_t05,
        frechet_distance,
    })
}

/// What the judge makes of the temperature-1 samples of [`fidelity_inputs`]: the share
/// read as the digit asked for (conditional models) and the Fréchet distance of their
/// features to the test set's.
fn judge_samples(
    vae: &Vae<Cpu>,
    classifier: &Classifier,
    test_stats: &FeatureStats,
    opts: &EvalOptions,
) -> Result<(Option<f32>, f64)> {
    let input = fidelity_inputs(&vae.config, opts.per_digit, 1.0, opts.seed);
    let images = vae.decode_images(input);
    let (features, read) = classifier.judge(&intensities(&images))?;
    let fidelity = (vae.config.classes > 0).then(|| share_read_as_asked(read, opts.per_digit));
    let frechet = frechet_distance(&FeatureStats::new(&features, FEATURES)?, test_stats)?;
    Ok((fidelity, frechet))
}

fn difference(a: &Metrics, b: &Metrics) -> Metrics {
    let opt = |x: Option<f32>, y: Option<f32>| x.zip(y).map(|(x, y)| x - y);
    Metrics {
        test_loss: a.test_loss - b.test_loss,
        test_reconstruction: a.test_reconstruction - b.test_reconstruction,
        test_kl: a.test_kl - b.test_kl,
        test_elbo_binarized: a.test_elbo_binarized - b.test_elbo_binarized,
        iwae_nll: a.iwae_nll.zip(b.iwae_nll).map(|(x, y)| x - y),
        label_fidelity_head: opt(a.label_fidelity_head, b.label_fidelity_head),
        label_fidelity_head_t05: opt(a.label_fidelity_head_t05, b.label_fidelity_head_t05),
        label_fidelity: opt(a.label_fidelity, b.label_fidelity),
        label_fidelity_t05: opt(a.label_fidelity_t05, b.label_fidelity_t05),
        frechet_distance: a
            .frechet_distance
            .zip(b.frechet_distance)
            .map(|(x, y)| x - y),
    }
}

/// Test accuracy of the model's classifier head.
fn head_accuracy(vae: &Vae<Cpu>, test: &Dataset) -> Option<f32> {
    let head = vae.classifier.as_ref()?;
    let dev = vae.device();
    let mut correct = 0usize;
    let order: Vec<usize> = (0..test.len()).collect();
    for chunk in order.chunks(1000) {
        let x = test.intensities(chunk.iter().copied());
        let logits = head
            .forward(dev.tensor_from_vec(x, (chunk.len(), PIXELS)), false)
            .as_vec();
        correct += logits
            .chunks_exact(vae.config.classes)
            .zip(chunk)
            .filter(|(row, &i)| argmax(row) == usize::from(test.labels[i]))
            .count();
    }
    Some(correct as f32 / test.len().max(1) as f32)
}

impl fmt::Display for Report {
    /// The figures as a table, one column per decoder precision, then the f16 cost and
    /// both classifiers' accuracy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let share = |v: Option<f32>| v.map_or("-".into(), |v| format!("{:.2} %", 100.0 * v));
        let nats = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
        let cells = |f: &dyn Fn(&Metrics) -> String| [f(&self.f32), f(&self.f16), f(&self.i8)];
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
                cells(&|m| nats(m.iwae_nll)),
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
            (
                "Fréchet distance to the test set (judge)",
                cells(&|m| m.frechet_distance.map_or("-".into(), |v| format!("{v:.3}"))),
            ),
        ];
        writeln!(f, "{:<46} {:>10} {:>10} {:>10}", "", "f32", "f16", "i8")?;
        for (name, [a, b, c]) in rows {
            writeln!(f, "{name:<46} {a:>10} {b:>10} {c:>10}")?;
        }
        let diff = &self.f16_minus_f32;
        writeln!(
            f,
            "f16 - f32: test loss {:+.4}, binarized ELBO {:+.4}, IWAE {}",
            diff.test_loss,
            diff.test_elbo_binarized,
            diff.iwae_nll.map_or("-".into(), |v: f64| format!("{v:.2}"))
        )?;
        write!(
            f,
            "classifier accuracy on the test set: independent {}, model's head {}",
            share(self.classifier_accuracy),
            share(self.head_accuracy)
        )
    }
}
