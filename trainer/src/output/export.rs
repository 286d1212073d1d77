//! A trained decoder as model files, through `vae-core`'s writer, and as the same
//! decoder with its weights rounded as each file stores them (for evaluation).

use std::path::PathBuf;

use anyhow::Result;
use dfdx::prelude::*;
use vae_core::Precision;

use crate::foundation::io::write_atomic;
use crate::foundation::run_dir::RunDir;
use crate::nn::model::{Layer, Vae};

/// One layer's weights row by row (`[out][in]`, the model file's order and the transpose
/// of dfdx's `(in, out)` storage), and its biases.
fn file_order<D: Device<f32>>(layer: &Layer<D>) -> (Vec<f32>, Vec<f32>) {
    let (inputs, outputs) = (layer.inputs(), layer.outputs());
    let w = layer.weight.as_vec();
    let rows = (0..outputs)
        .flat_map(|o| (0..inputs).map(move |i| (i, o)))
        .map(|(i, o)| w[i * outputs + o])
        .collect();
    (rows, layer.bias.as_vec())
}

/// The decoder's layers as a model file of `precision` holds them before rounding: for
/// each, its inputs, its weights row by row and its biases. In an `I8` file of a
/// conditional model the first layer's label weights are centred ([`centre_labels`]).
fn file_layers<D: Device<f32>>(
    vae: &Vae<D>,
    precision: Precision,
) -> Vec<(usize, Vec<f32>, Vec<f32>)> {
    let (latent, classes) = (vae.config.latent, vae.config.classes);
    let mut layers: Vec<_> = vae
        .decoder
        .layers
        .iter()
        .map(|layer| {
            let (rows, biases) = file_order(layer);
            (layer.inputs(), rows, biases)
        })
        .collect();
    if let (Precision::I8, true, Some((inputs, rows, biases))) =
        (precision, classes > 0, layers.first_mut())
    {
        centre_labels(*inputs, latent, rows, biases);
    }
    layers
}

/// Moves the centre of each row's label weights into the row's bias: the decoder's label
/// input sums to 1 (a one-hot digit, a blend of two in a morph, the classifier head's
/// probabilities in training), so `w . x + b` is unchanged, while the row's largest
/// weight, which sets an i8 row's scale (`max |w| / 127`), shrinks where the label
/// weights share an offset. Longer-trained conditional models grow such offsets: label
/// weights far larger than the latent ones left the latent weights a few i8 steps.
/// The centre is the midpoint of the label weights' range, which minimizes their largest
/// magnitude.
fn centre_labels(inputs: usize, latent: usize, rows: &mut [f32], biases: &mut [f32]) {
    for (row, bias) in rows.chunks_exact_mut(inputs.max(1)).zip(biases) {
        let Some(labels) = row.get_mut(latent..) else {
            continue;
        };
        let (lo, hi) = labels
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &w| {
                (lo.min(w), hi.max(w))
            });
        let centre = (lo + hi) / 2.0;
        if centre.is_finite() {
            labels.iter_mut().for_each(|w| *w -= centre);
            *bias += centre;
        }
    }
}

/// The decoder's parameters as a model file of `precision` holds them (before rounding):
/// for each layer, the weights row by row, then the biases.
fn decoder_values<D: Device<f32>>(vae: &Vae<D>, precision: Precision) -> Vec<f32> {
    let mut values = Vec::with_capacity(vae.decoder_parameters());
    for (_, weights, biases) in file_layers(vae, precision) {
        values.extend(weights);
        values.extend(biases);
    }
    values
}

/// The bytes of a model file holding `vae`'s decoder at `precision`.
pub fn model_file<D: Device<f32>>(vae: &Vae<D>, precision: Precision) -> Result<Vec<u8>> {
    let arch = vae.config.decoder_architecture()?;
    let mut bytes = vec![0u8; vae_core::encoded_len(&arch, precision)?];
    let len = vae_core::encode(&arch, precision, decoder_values(vae, precision), &mut bytes)?;
    bytes.truncate(len);
    Ok(bytes)
}

/// Writes the decoder's model file at every precision into the folder `out` (created
/// if needed), each atomically; returns each file and its size.
pub fn write_model_files<D: Device<f32>>(
    vae: &Vae<D>,
    out: &RunDir,
) -> Result<Vec<(PathBuf, usize)>> {
    out.create()?;
    let mut written = Vec::new();
    for precision in Precision::ALL {
        let bytes = model_file(vae, precision)?;
        let path = out.model_file(precision);
        write_atomic(&path, &bytes)?;
        written.push((path, bytes.len()));
    }
    Ok(written)
}

/// A copy of `vae` whose decoder computes with the values a model file of `precision`
/// stores (rounded as `vae-core` defines it), in f32.
pub fn quantized<D: Device<f32>>(vae: &Vae<D>, precision: Precision) -> Result<Vae<D>> {
    let mut out = vae.clone();
    let layers = file_layers(vae, precision);
    for (layer, (inputs, mut rows, mut biases)) in out.decoder.layers.iter_mut().zip(layers) {
        let dev = layer.weight.device().clone();
        let outputs = layer.outputs();
        precision.round_layer(inputs, &mut rows, &mut biases)?;
        let mut weight = vec![0.0f32; inputs * outputs];
        for (k, &v) in rows.iter().enumerate() {
            weight[(k % inputs) * outputs + k / inputs] = v;
        }
        layer.weight = dev.tensor_from_vec(weight, (inputs, outputs));
        layer.bias = dev.tensor_from_vec(biases, (outputs,));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Centring keeps `w . x + b` for every input whose label part sums to 1 (one-hot,
    /// a blend of two, soft probabilities), up to f32 rounding, and leaves each row's
    /// largest label weight no larger, shrinking it where the label weights share an
    /// offset; the latent weights are untouched.
    #[test]
    fn centred_label_weights_keep_every_output() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (latent, classes, outputs) = (4, 10, 6);
        let inputs = latent + classes;
        let rows: Vec<f32> = (0..inputs * outputs)
            .map(|k| rng.gen_range(-1.0..1.0) + if k % inputs >= latent { 5.0 } else { 0.0 })
            .collect();
        let biases: Vec<f32> = (0..outputs).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let (mut centred, mut moved) = (rows.clone(), biases.clone());
        centre_labels(inputs, latent, &mut centred, &mut moved);
        let mut probs: Vec<f32> = (0..classes).map(|_| rng.gen()).collect();
        let total: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        let mut blend = vec![0.0; classes];
        (blend[3], blend[8]) = (0.3, 0.7);
        for label in [
            probs,
            blend,
            (0..classes).map(|k| f32::from(u8::from(k == 2))).collect(),
        ] {
            let x: Vec<f32> = (0..latent)
                .map(|_| rng.gen_range(-3.0..3.0))
                .chain(label)
                .collect();
            for o in 0..outputs {
                let out = |w: &[f32], b: f32| {
                    w[o * inputs..(o + 1) * inputs]
                        .iter()
                        .zip(&x)
                        .map(|(w, x)| w * x)
                        .sum::<f32>()
                        + b
                };
                let (before, after) = (out(&rows, biases[o]), out(&centred, moved[o]));
                assert!(
                    (before - after).abs() < 1e-5 * before.abs().max(1.0),
                    "{before} {after}"
                );
            }
        }
        for (a, b) in rows.chunks(inputs).zip(centred.chunks(inputs)) {
            assert_eq!(a[..latent], b[..latent]);
            let largest = |r: &[f32]| r[latent..].iter().fold(0.0f32, |m, w| m.max(w.abs()));
            assert!(
                largest(b) < largest(a) / 3.0,
                "{} {}",
                largest(a),
                largest(b)
            );
        }
    }
}
