//! `vae eval`: a trained model's numbers on the 10,000 MNIST test images, in each of the
//! conventions the literature uses, for the f32 decoder and for its f16 and i8 exports.

use std::fmt;

use anyhow::Result;
use dfdx::prelude::*;
use mnist::Dataset;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use vae_core::{Precision, PIXELS};

use crate::classifier::{intensities, Classifier, FEATURES};
use crate::config::{Binarize, DataOptions};
use crate::export::quantized;
use crate::frechet::{frechet_distance, FeatureStats};
use crate::loss::log_mean_exp;
use crate::metrics::{argmax, fidelity_inputs, label_fidelity, mean_loss, share_read_as_asked};
use crate::model::Vae;
use crate::progress;

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
    let f32 = metrics(vae, test, opts, judge, true)?;
    let f16 = metrics(&quantized(vae, Precision::F16)?, test, opts, judge, true)?;
    // The IWAE estimate is the slow one (minutes); for i8 it is left out.
    let i8 = metrics(&quantized(vae, Precision::I8)?, test, opts, judge, false)?;
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

fn metrics(
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

/// Share of `per_digit` samples per digit, `z ~ N(0, t^2 I)`, that `classifier` reads as
/// the digit asked for (images rounded to 8-bit pixels first, as a user sees them).
pub fn independent_fidelity<D: Device<f32>>(
    vae: &Vae<D>,
    classifier: &Classifier,
    per_digit: usize,
    temperature: f32,
    seed: u64,
) -> Result<Option<f32>> {
    if vae.config.classes == 0 {
        return Ok(None);
    }
    let input = fidelity_inputs(&vae.config, per_digit, temperature, seed);
    let read = classifier.read(&vae.decode_images(input))?;
    Ok(Some(share_read_as_asked(read, per_digit)))
}

/// Importance-weighted estimate of `-log p(x)` (Burda et al. 2016) with `k` samples per
/// image, averaged over the test set binarized once by Bernoulli draws (seed `seed`).
pub fn iwae_nll<D: Device<f32>>(vae: &Vae<D>, test: &Dataset, k: usize, seed: u64) -> f64 {
    let dev = vae.device();
    let (latent, classes) = (vae.config.latent, vae.config.classes);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x1A3E);
    const IMAGES: usize = 10;
    let samples_per_pass = (5000 / IMAGES).clamp(1, k);
    let order: Vec<usize> = (0..test.len()).collect();
    let mut total = 0.0f64;
    // Minutes of work for k = 5,000: a bar on a terminal (hidden otherwise).
    let bar = progress::bar(true, test.len(), format!("IWAE k={k}, images"));
    for chunk in order.chunks(IMAGES) {
        bar.inc(chunk.len() as u64);
        let n = chunk.len();
        let x: Vec<f32> = test
            .intensities(chunk.iter().copied())
            .into_iter()
            .map(|p| f32::from(u8::from(rng.gen::<f32>() < p)))
            .collect();
        let (mu, logvar, probs) = vae.encode(&x);
        // log w for every (image, sample).
        let mut log_w = vec![Vec::with_capacity(k); n];
        let mut done = 0;
        while done < k {
            let m = samples_per_pass.min(k - done);
            let rows = n * m;
            let mut input = Vec::with_capacity(rows * (latent + classes));
            let mut log_prior_minus_q = Vec::with_capacity(rows);
            for img in 0..n {
                for _ in 0..m {
                    // log p(z) - log q(z|x); their (2 pi) terms cancel.
                    let mut lpq = 0.0f64;
                    for d in 0..latent {
                        let e: f32 = StandardNormal.sample(&mut rng);
                        let (mu, lv) = (mu[img * latent + d], logvar[img * latent + d]);
                        let z = mu + (0.5 * lv).exp() * e;
                        input.push(z);
                        let (z, e, lv) = (f64::from(z), f64::from(e), f64::from(lv));
                        lpq += -0.5 * (z * z) + 0.5 * (e * e + lv);
                    }
                    if let Some(p) = &probs {
                        input.extend_from_slice(&p[img * classes..(img + 1) * classes]);
                    }
                    log_prior_minus_q.push(lpq);
                }
            }
            let logits = vae
                .decoder
                .forward(dev.tensor_from_vec(input, (rows, latent + classes)), false)
                .as_vec();
            let log_px = bernoulli_log_likelihoods(&logits, &x, m);
            for (r, lp) in log_px.into_iter().enumerate() {
                log_w[r / m].push(lp + log_prior_minus_q[r]);
            }
            done += m;
        }
        for w in &log_w {
            total -= log_mean_exp(w);
        }
    }
    bar.finish_and_clear();
    total / test.len().max(1) as f64
}

/// `log p(x | z)` of every decoded row: rows `r*m .. (r+1)*m` belong to image `r` of
/// `x`. Summed in f32 per row (784 terms: error far below 0.01 nats), on every core.
fn bernoulli_log_likelihoods(logits: &[f32], x: &[f32], m: usize) -> Vec<f64> {
    let rows = logits.len() / PIXELS;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = rows.div_ceil(threads).max(1);
    let mut out = vec![0.0f64; rows];
    std::thread::scope(|scope| {
        for (t, slots) in out.chunks_mut(per_thread).enumerate() {
            scope.spawn(move || {
                for (k, slot) in slots.iter_mut().enumerate() {
                    let r = t * per_thread + k;
                    let row = &logits[r * PIXELS..(r + 1) * PIXELS];
                    let target = &x[(r / m) * PIXELS..(r / m + 1) * PIXELS];
                    let sum: f32 = row
                        .iter()
                        .zip(target)
                        .map(|(&l, &t)| {
                            // log sigmoid(s), s = l for a 1 and -l for a 0.
                            let s = if t > 0.5 { l } else { -l };
                            s.min(0.0) - (-s.abs()).exp().ln_1p()
                        })
                        .sum();
                    *slot = f64::from(sum);
                }
            });
        }
    });
    out
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
