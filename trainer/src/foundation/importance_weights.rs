//! The arithmetic of importance weights, shared by training on the importance-weighted
//! bound and by `vae eval`'s estimate of it.

/// `log((1/K) sum_k e^(v_k))` of the K log-weights `log_w`, computed around the largest
/// (no overflow): one image's importance-weighted bound on `log p(x)`.
pub fn log_mean_exp(log_w: &[f64]) -> f64 {
    let max = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = log_w.iter().map(|v| (v - max).exp()).sum();
    max + (sum / log_w.len() as f64).ln()
}

/// The normalized weights `e^(v_k) / sum_j e^(v_j)` of the log-weights `log_w` (a
/// softmax, computed around the largest): how much each draw counts in the bound's
/// gradient.
pub fn normalized_weights(log_w: &[f64]) -> Vec<f64> {
    let max = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = log_w.iter().map(|v| (v - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}
