//! The importance-weighted estimate of `-log p(x)` that `vae eval` reports: the
//! literature's likelihood figure for unconditional models.

use dfdx::prelude::*;
use mnist::Dataset;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use crate::foundation::loss::log_mean_exp;
use crate::foundation::progress;
use crate::nn::host::HostModel;
use crate::nn::model::Vae;

/// Importance-weighted estimate of `-log p(x)` (Burda et al. 2016) with `k` samples per
/// image, averaged over the test set binarized once by Bernoulli draws (seed `seed`).
pub fn iwae_nll<D: Device<f32>>(vae: &Vae<D>, test: &Dataset, k: usize, seed: u64) -> f64 {
    let (latent, classes) = (vae.config.latent, vae.config.classes);
    // The decoder runs on host buffers, both cores at once.
    let mut host = HostModel::new(vae, None);
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
            let mut input = Vec::with_capacity(n * m * (latent + classes));
            let mut log_prior_minus_q = Vec::with_capacity(n * m);
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
            let nll = host.reconstruction_losses(&input, &x, m);
            for (r, nll) in nll.into_iter().enumerate() {
                log_w[r / m].push(log_prior_minus_q[r] - nll);
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
