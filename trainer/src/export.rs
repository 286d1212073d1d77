//! A trained decoder as model files, through `vae-core`'s writer, and as the same
//! decoder with its weights rounded as each file stores them (for evaluation).

use std::path::PathBuf;

use anyhow::Result;
use dfdx::prelude::*;
use vae_core::Precision;

use crate::io::write_atomic;
use crate::model::{Dense, Vae};
use crate::run_dir::RunDir;

/// One layer's weights row by row (`[out][in]`, the model file's order and the transpose
/// of dfdx's `(in, out)` storage), and its biases.
fn file_order<D: Device<f32>>(layer: &Dense<D>) -> (Vec<f32>, Vec<f32>) {
    let (inputs, outputs) = (layer.inputs(), layer.outputs());
    let w = layer.weight.as_vec();
    let rows = (0..outputs)
        .flat_map(|o| (0..inputs).map(move |i| (i, o)))
        .map(|(i, o)| w[i * outputs + o])
        .collect();
    (rows, layer.bias.as_vec())
}

/// The decoder's parameters in model-file order: for each layer, the weights row by row,
/// then the biases.
pub fn decoder_values<D: Device<f32>>(vae: &Vae<D>) -> Vec<f32> {
    let mut values = Vec::with_capacity(vae.decoder_parameters());
    for layer in &vae.decoder.layers {
        let (weights, biases) = file_order(layer);
        values.extend(weights);
        values.extend(biases);
    }
    values
}

/// The bytes of a model file holding `vae`'s decoder at `precision`.
pub fn model_file<D: Device<f32>>(vae: &Vae<D>, precision: Precision) -> Result<Vec<u8>> {
    let arch = vae.config.decoder_architecture()?;
    let mut bytes = vec![0u8; vae_core::encoded_len(&arch, precision)?];
    let len = vae_core::encode(&arch, precision, decoder_values(vae), &mut bytes)?;
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
    for layer in &mut out.decoder.layers {
        let dev = layer.weight.device().clone();
        let (inputs, outputs) = (layer.inputs(), layer.outputs());
        let (mut rows, mut biases) = file_order(layer);
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
