//! A training run's folder: its configuration (JSON), its weights (safetensors, readable
//! from Python too) and its history of losses (JSON).

use std::collections::HashMap;
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

/// Saves every parameter of `vae` to `path` (atomically).
pub fn save<D: Device<f32>>(vae: &Vae<D>, path: &Path) -> Result<()> {
    let params = vae.named_params();
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = params
        .iter()
        .map(|(name, p)| {
            let bytes = p.to_vec().iter().flat_map(|v| v.to_le_bytes()).collect();
            (name.clone(), p.dims(), bytes)
        })
        .collect();
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

/// Loads a run folder's configuration and checkpoint onto `dev`.
pub fn load<D: Device<f32>>(dev: &D, run: &Path) -> Result<(TrainConfig, Vae<D>)> {
    let dir = RunDir(run.to_path_buf());
    let config: TrainConfig = read_json(&dir.config())
        .with_context(|| format!("{} is not a training run folder", run.display()))?;
    let path = dir.checkpoint();
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("{} is not a valid checkpoint: {e:?}", path.display()))?;
    let mut tensors: HashMap<String, Vec<f32>> = HashMap::new();
    let mut vae = Vae::new(
        dev,
        &config.model,
        &mut rand::rngs::mock::StepRng::new(0, 0),
    );
    for (name, p) in vae.named_params() {
        let view = file
            .tensor(&name)
            .map_err(|_| anyhow::anyhow!("{}: tensor {name} is missing", path.display()))?;
        if view.dtype() != Dtype::F32 || view.shape() != p.dims().as_slice() {
            bail!(
                "{}: tensor {name} is {:?} {:?}, expected F32 {:?} (does config.json match?)",
                path.display(),
                view.dtype(),
                view.shape(),
                p.dims()
            );
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        tensors.insert(name, values);
    }
    let names: Vec<String> = vae.dense_layers().into_iter().map(|(n, _)| n).collect();
    for (name, layer) in names.iter().zip(vae.dense_layers_mut()) {
        let w = tensors
            .remove(&format!("{name}.weight"))
            .unwrap_or_default();
        let b = tensors.remove(&format!("{name}.bias")).unwrap_or_default();
        layer.weight = dev.tensor_from_vec(w, *layer.weight.shape());
        layer.bias = dev.tensor_from_vec(b, *layer.bias.shape());
    }
    Ok((config, vae))
}
