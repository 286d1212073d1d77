//! The importance-weighted estimate of `-log p(x)` that `vae eval` reports: the
//! literature's likelihood figure for unconditional models.

use dfdx::prelude::*;
use mnist::Dataset;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::foundation::importance_weights::log_mean_exp;
use crate::foundation::progress;
use crate::nn::host::HostModel;
use crate::nn::model::Vae;

/// Importance-weighted estimate of `-log p(x)` (Burda et al. 2016) with `k` samples per
/// image, averaged over the test set binarized once by Bernoulli draws (seed `seed`).
pub fn iwae_nll<D: Device<f32>>(vae: &Vae<D>, test: &Dataset, k: usize, seed: u64) -> f64 {
    let (latent, classes) = (vae.config.latent, vae.config.classes);
    // The decoder runs on host buffers, both cores at once.
    let host = HostModel::new(vae, None);
    let decoder = host.eval_decoder();
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
        let std: Vec<f32> = logvar.iter().map(|lv| (0.5 * lv).exp()).collect();
        // log w for every (image, draw).
        let mut log_w = vec![Vec::with_capacity(k); n];
        let mut eps = draw_noise(&mut rng, n * samples_per_pass.min(k) * latent);
        let mut done = 0;
        while done < k {
            let m = samples_per_pass.min(k - done);
            let next = samples_per_pass.min(k - done - m);
            // The next pass's noise is drawn (in the generator's order) while this
            // pass's decoder runs.
            let (next_eps, (nll, log_prior_minus_q)) = rayon::join(
                || draw_noise(&mut rng, n * next * latent),
                || {
                    let width = latent + classes;
                    let mut input = vec![0.0f32; n * m * width];
                    let mut lpq = vec![0.0f64; n * m];
                    input
                        .par_chunks_mut(width)
                        .zip(&mut lpq)
                        .zip(eps.par_chunks(latent))
                        .enumerate()
                        .for_each(|(r, ((row, lpq), e))| {
                            let img = r / m;
                            let at = img * latent..(img + 1) * latent;
                            let (z, label) = row.split_at_mut(latent);
                            *lpq = draw_z(z, (e, &mu[at.clone()], &std[at.clone()], &logvar[at]));
                            if let Some(p) = &probs {
                                label.copy_from_slice(&p[img * classes..(img + 1) * classes]);
                            }
                        });
                    (decoder.reconstruction_losses(&input, &x, m), lpq)
                },
            );
            for (r, nll) in nll.into_iter().enumerate() {
                log_w[r / m].push(log_prior_minus_q[r] - nll);
            }
            eps = next_eps;
            done += m;
        }
        for w in &log_w {
            total -= log_mean_exp(w);
        }
    }
    bar.finish_and_clear();
    total / test.len().max(1) as f64
}

/// `count` draws of N(0, 1), in the generator's order.
fn draw_noise(rng: &mut impl Rng, count: usize) -> Vec<f32> {
    (0..count).map(|_| StandardNormal.sample(rng)).collect()
}

/// One draw of z = mu + std e into `z`; returns log p(z) - log q(z|x), whose (2 pi)
/// terms cancel.
fn draw_z(z: &mut [f32], (e, mu, std, logvar): (&[f32], &[f32], &[f32], &[f32])) -> f64 {
    let mut lpq = 0.0f64;
    for ((((z, &e), &mu), &std), &lv) in z.iter_mut().zip(e).zip(mu).zip(std).zip(logvar) {
        *z = mu + std * e;
        let (z, e, lv) = (f64::from(*z), f64::from(e), f64::from(lv));
        lpq += -0.5 * (z * z) + 0.5 * (e * e + lv);
    }
    lpq
}
