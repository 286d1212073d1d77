//! Turning a trained decoder into a model file through `vae-core`'s writer.

use anyhow::Result;
use dfdx::prelude::*;
use vae_core::Precision;

use crate::model::Vae;

/// The decoder's parameters in model-file order: for each layer, the weights row by row
/// (`[out][in]`, the transpose of dfdx's `(in, out)` storage), then the biases.
pub fn decoder_values<D: Device<f32>>(vae: &Vae<D>) -> Vec<f32> {
    let mut values = Vec::with_capacity(vae.decoder_parameters());
    for layer in &vae.decoder.layers {
        let (inputs, outputs) = (layer.inputs(), layer.outputs());
        let w = layer.weight.as_vec();
        for o in 0..outputs {
            values.extend((0..inputs).map(|i| w[i * outputs + o]));
        }
        values.extend(layer.bias.as_vec());
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
