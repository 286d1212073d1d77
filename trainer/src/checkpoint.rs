//! A training run's folder: its configuration (JSON), its weights (safetensors, readable
//! from Python too) and its history of losses (JSON).

use std::path::{Path, PathBuf};

use ::safetensors::tensor::{serialize, Dtype, SafeTensorError, SafeTensors, TensorView};
use anyhow::{bail, Context, Result};
use dfdx::prelude::*;

use crate::io::{read_json, write_atomic};
use crate::model::Vae;
use crate::train::TrainConfig;

/// File names inside a run folder.
pub struct RunDir(pub PathBuf);

impl RunDir {
    /// Training configuration.
    pub fn config(&self) -> PathBuf {
        self.0.join("config.json")
    }
    /// All weights after the last finished epoch.
    pub fn checkpoint(&self) -> PathBuf {
        self.0.join("checkpoint.safetensors")
    }
    /// Per-epoch losses.
    pub fn history(&self) -> PathBuf {
        self.0.join("history.json")
    }
}

/// Saves every parameter of `vae` to `path` (atomically), as `<layer>.weight` with
/// shape (inputs, outputs) and `<layer>.bias` with shape (outputs,).
pub fn save<D: Device<f32>>(vae: &Vae<D>, path: &Path) -> Result<()> {
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, layer) in vae.dense_layers() {
        let (inputs, outputs) = *layer.weight.shape();
        data.push((
            format!("{name}.weight"),
            vec![inputs, outputs],
            le_bytes(&layer.weight.as_vec()),
        ));
        data.push((
            format!("{name}.bias"),
            vec![outputs],
            le_bytes(&layer.bias.as_vec()),
        ));
    }
    let views = data
        .iter()
        .map(|(name, dims, bytes)| {
            Ok((
                name.as_str(),
                TensorView::new(Dtype::F32, dims.clone(), bytes)?,
            ))
        })
        .collect::<Result<Vec<_>, SafeTensorError>>()?;
    let bytes = serialize(views, &None)?;
    write_atomic(path, &bytes)
}

fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Loads a run folder's configuration and checkpoint onto `dev`.
pub fn load<D: Device<f32>>(dev: &D, run: &Path) -> Result<(TrainConfig, Vae<D>)> {
    let dir = RunDir(run.to_path_buf());
    let config: TrainConfig = read_json(&dir.config())
        .with_context(|| format!("{} is not a training run folder", run.display()))?;
    let path = dir.checkpoint();
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("{} is not a valid checkpoint: {e:?}", path.display()))?;
    // Built from the config only for its shapes; every weight is replaced below.
    let mut vae = Vae::new(
        dev,
        &config.model,
        &mut rand::rngs::mock::StepRng::new(0, 0),
    );
    let names: Vec<String> = vae.dense_layers().into_iter().map(|(n, _)| n).collect();
    for (name, layer) in names.iter().zip(vae.dense_layers_mut()) {
        let (inputs, outputs) = *layer.weight.shape();
        let weight = read_tensor(&file, &format!("{name}.weight"), &[inputs, outputs])
            .with_context(|| format!("{}", path.display()))?;
        let bias = read_tensor(&file, &format!("{name}.bias"), &[outputs])
            .with_context(|| format!("{}", path.display()))?;
        layer.weight = dev.tensor_from_vec(weight, (inputs, outputs));
        layer.bias = dev.tensor_from_vec(bias, (outputs,));
    }
    Ok((config, vae))
}

/// The values of f32 tensor `name`, which must have shape `dims`.
fn read_tensor(file: &SafeTensors, name: &str, dims: &[usize]) -> Result<Vec<f32>> {
    let view = file
        .tensor(name)
        .map_err(|_| anyhow::anyhow!("tensor {name} is missing"))?;
    if view.dtype() != Dtype::F32 || view.shape() != dims {
        bail!(
            "tensor {name} is {:?} {:?}, expected F32 {dims:?} (does config.json match?)",
            view.dtype(),
            view.shape()
        );
    }
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}
