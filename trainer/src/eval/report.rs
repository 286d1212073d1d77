//! `vae eval`: a trained model's numbers on the 10,000 MNIST test images, in each of the
//! conventions the literature uses, for the f32 decoder and for its f16 and i8 exports.

use std::fmt;

use anyhow::Result;
use dfdx::prelude::*;
use mnist::Dataset;
use serde::Serialize;
use vae_core::{Precision, PIXELS};

use crate::eval::classifier::{intensities, Classifier, FEATURES};
use crate::eval::copies::CopyCheck;
use crate::eval::fidelity::{
    fidelity_inputs, independent_fidelity, label_fidelity, sample_count, share_read_as_asked,
};
use crate::eval::frechet::{frechet_distance, FeatureStats};
use crate::eval::iwae::iwae_nll;
use crate::eval::mean_loss::mean_loss;
use crate::eval::precision_recall::{PrecisionRecall, RealManifold};
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
    /// The training set, if any: the real images the samples' figures are read
    /// against, and the images the copy check looks for (with the judge only).
    pub train: Option<&'a Dataset>,
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
            train: None,
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
    /// Share of those samples within the test set's manifold of the judge's features
    /// (Kynkäänniemi et al. 2019, k = 3): how realistic they are.
    pub precision: Option<f32>,
    /// Share of the test images within the samples' manifold: how much of the real
    /// digits' variety they cover.
    pub recall: Option<f32>,
    /// Share of those samples nearer (in pixels) to a training image than 99 % of test
    /// images are ([`crate::eval::copies`]; about 1 % for new real digits).
    pub copy_share: Option<f32>,
}

/// Real training images measured as the samples are: the scale the samples' figures
/// are read against (their distance is never 0: two sets of real digits differ).
#[derive(Debug, Clone, Serialize)]
pub struct RealReference {
    /// Training images measured (the first ones; as many as the samples).
    pub images: usize,
    /// Their Fréchet distance to the test set (judge).
    pub frechet_distance: f64,
    /// Their precision against the test set.
    pub precision: f32,
    /// The test set's recall of them.
    pub recall: f32,
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
    /// Real training images measured as the samples are (with the judge and the
    /// training set).
    pub real_reference: Option<RealReference>,
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

/// What the samples are measured against: the judge, the test set's features (their
/// statistics and manifold) and, given the training set, the copy check.
struct Judge<'a> {
    classifier: &'a Classifier,
    test_stats: FeatureStats,
    manifold: RealManifold<'a>,
    copies: Option<CopyCheck<'a>>,
}

impl Judge<'_> {
    /// The judge's figures for `images` (intensities).
    fn measure(&self, images: &[f32]) -> Result<(Vec<usize>, f64, PrecisionRecall)> {
        let (features, read) = self.classifier.judge(images)?;
        let frechet = frechet_distance(&FeatureStats::new(&features, FEATURES)?, &self.test_stats)?;
        Ok((read, frechet, self.manifold.measure(&features, FEATURES)))
    }
}

/// Evaluates `vae` as trained and with its decoder quantized to f16 and i8.
pub fn evaluate_model(vae: &Vae<Cpu>, test: &Dataset, opts: &EvalOptions) -> Result<Report> {
    let test_images = test.intensities(0..test.len());
    let train_images = opts.train.map(|train| train.intensities(0..train.len()));
    let test_features = match opts.classifier {
        Some(classifier) => Some(classifier.judge(&test_images)?.0),
        None => None,
    };
    let judge = match (opts.classifier, &test_features) {
        (Some(classifier), Some(features)) => Some(Judge {
            classifier,
            test_stats: FeatureStats::new(features, FEATURES)?,
            manifold: RealManifold::new(features, FEATURES),
            copies: train_images
                .as_deref()
                .map(|train| CopyCheck::new(train, &test_images, PIXELS)),
        }),
        _ => None,
    };
    let real_reference = match (&judge, &train_images) {
        (Some(judge), Some(train)) => {
            let images = sample_count(&vae.config, opts.per_digit).min(train.len() / PIXELS);
            let (_, frechet_distance, pr) = judge.measure(&train[..images * PIXELS])?;
            Some(RealReference {
                images,
                frechet_distance,
                precision: pr.precision,
                recall: pr.recall,
            })
        }
        _ => None,
    };
    let judge = judge.as_ref();
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
        real_reference,
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
    judge: Option<&Judge>,
    with_iwae: bool,
) -> Result<Metrics> {
    let continuous = mean_loss(vae, test, DataOptions::default(), opts.seed);
    let threshold = DataOptions {
        binarize: Binarize::Threshold,
        ..DataOptions::default()
    };
    let binarized = mean_loss(vae, test, threshold, opts.seed);
    let fidelity = |t: f32| label_fidelity(vae, opts.per_digit, t, opts.seed);
    let (samples, independent_t05) = match judge {
        Some(judge) => {
            let t05 = independent_fidelity(vae, judge.classifier, opts.per_digit, 0.5, opts.seed)?;
            (Some(judge_samples(vae, judge, opts)?), t05)
        }
        None => (None, None),
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
        label_fidelity: samples.as_ref().and_then(|s| s.fidelity),
        label_fidelity_t05: independent_t05,
        frechet_distance: samples.as_ref().map(|s| s.frechet_distance),
        precision: samples.as_ref().map(|s| s.precision_recall.precision),
        recall: samples.as_ref().map(|s| s.precision_recall.recall),
        copy_share: samples.as_ref().and_then(|s| s.copy_share),
    })
}

/// The judge's figures for a model's temperature-1 samples.
struct SampleFigures {
    /// Share read as the digit asked for (conditional models).
    fidelity: Option<f32>,
    frechet_distance: f64,
    precision_recall: PrecisionRecall,
    /// Given the training set.
    copy_share: Option<f32>,
}

/// What the judge makes of the temperature-1 samples of [`fidelity_inputs`]: the share
/// read as the digit asked for (conditional models), the Fréchet distance of their
/// features to the test set's, their precision and recall, and their copy share.
fn judge_samples(vae: &Vae<Cpu>, judge: &Judge, opts: &EvalOptions) -> Result<SampleFigures> {
    let input = fidelity_inputs(&vae.config, opts.per_digit, 1.0, opts.seed);
    let images = intensities(&vae.decode_images(input));
    let (read, frechet_distance, precision_recall) = judge.measure(&images)?;
    Ok(SampleFigures {
        fidelity: (vae.config.classes > 0).then(|| share_read_as_asked(read, opts.per_digit)),
        frechet_distance,
        precision_recall,
        copy_share: judge.copies.as_ref().map(|c| c.copy_share(&images, PIXELS)),
    })
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
        precision: opt(a.precision, b.precision),
        recall: opt(a.recall, b.recall),
        copy_share: opt(a.copy_share, b.copy_share),
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
            ("precision (judge, k = 3)", cells(&|m| share(m.precision))),
            ("recall (judge, k = 3)", cells(&|m| share(m.recall))),
            (
                "copies (nearer a training image than 99 % of test images)",
                cells(&|m| share(m.copy_share)),
            ),
        ];
        writeln!(f, "{:<58} {:>10} {:>10} {:>10}", "", "f32", "f16", "i8")?;
        for (name, [a, b, c]) in rows {
            writeln!(f, "{name:<58} {a:>10} {b:>10} {c:>10}")?;
        }
        if let Some(r) = &self.real_reference {
            writeln!(
                f,
                "{} real training images, measured as the samples: Fréchet distance {:.3}, precision {}, recall {}",
                r.images,
                r.frechet_distance,
                share(Some(r.precision)),
                share(Some(r.recall))
            )?;
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
