//! A run's weights on disk, as safetensors (readable from Python too): the checkpoint
//! (every weight after the last finished epoch, what `export`, `eval` and `pictures`
//! load) and the resume state (the same weights with Adam's moments and step and the
//! epoch reached: everything `--resume` needs), each read back with the run's
//! `config.json`.

use std::path::Path;

use ::safetensors::tensor::{serialize, Dtype, SafeTensorError, SafeTensors, TensorView};
use anyhow::{bail, Context, Result};
use dfdx::prelude::*;

use crate::foundation::config::TrainConfig;
use crate::foundation::io::{read_json, write_atomic};
use crate::foundation::run_dir::RunDir;
use crate::nn::adam::AdamState;
use crate::nn::model::Vae;

/// What a run's resume state holds: where the run stands after its last complete epoch.
pub struct ResumeState<D: Device<f32>> {
    /// The run's settings.
    pub config: TrainConfig,
    /// The model after `epoch` epochs.
    pub vae: Vae<D>,
    /// The optimizer after `epoch` epochs.
    pub adam: AdamState,
    /// Epochs done.
    pub epoch: usize,
}

/// Saves every parameter of `vae` as the run's checkpoint (atomically), as
/// `<layer>.weight` with shape (inputs, outputs) and `<layer>.bias` with shape (outputs,).
pub fn save<D: Device<f32>>(vae: &Vae<D>, run: &RunDir) -> Result<()> {
    write_tensors(&run.checkpoint(), model_tensors(vae), None)
}

/// `(name, dims, values)` of every weight and bias.
fn model_tensors<D: Device<f32>>(vae: &Vae<D>) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut data = Vec::new();
    for (name, layer) in vae.layers() {
        let (inputs, outputs) = *layer.weight.shape();
        data.push((
            format!("{name}.weight"),
            vec![inputs, outputs],
            layer.weight.as_vec(),
        ));
        data.push((format!("{name}.bias"), vec![outputs], layer.bias.as_vec()));
    }
    data
}

fn write_tensors(
    path: &Path,
    data: Vec<(String, Vec<usize>, Vec<f32>)>,
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<()> {
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = data
        .into_iter()
        .map(|(name, dims, values)| (name, dims, le_bytes(&values)))
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
    let bytes = serialize(views, &metadata)?;
    write_atomic(path, &bytes)
}

const ADAM_PARTS: [&str; 4] = ["weight.m", "weight.v", "bias.m", "bias.v"];

/// Writes the run's resume state: the model, Adam's moments and step, and the epoch
/// just done.
pub fn save_resume<D: Device<f32>>(
    vae: &Vae<D>,
    adam: &AdamState,
    epoch: usize,
    run: &RunDir,
) -> Result<()> {
    let mut data = model_tensors(vae);
    for ((name, layer), moments) in vae.layers().into_iter().zip(&adam.moments) {
        let (w, b) = (*layer.weight.shape(), layer.outputs());
        for (part, values) in ADAM_PARTS.iter().zip(moments) {
            let dims = if part.starts_with("weight") {
                vec![w.0, w.1]
            } else {
                vec![b]
            };
            data.push((format!("adam.{name}.{part}"), dims, values.clone()));
        }
    }
    let metadata = [
        ("epoch".to_string(), epoch.to_string()),
        ("adam_step".to_string(), adam.settings.steps().to_string()),
    ];
    write_tensors(&run.resume(), data, Some(metadata.into_iter().collect()))
}

/// Reads a run's configuration and resume state: model, optimizer and epochs done.
pub fn load_resume<D: Device<f32>>(dev: &D, run: &RunDir) -> Result<ResumeState<D>> {
    let path = run.resume();
    let config = read_config(run)?;
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("{} is not a valid resume state: {e:?}", path.display()))?;
    let vae = read_model(dev, &config, &file).with_context(|| format!("{}", path.display()))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e:?}", path.display()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let number = |key: &str| -> Result<i64> {
        meta.get(key)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{} has no {key}", path.display()))
    };
    let (epoch, step) = (number("epoch")?, number("adam_step")?);
    let mut adam = AdamState::new(&vae, config.learning_rate);
    let mut moments = Vec::new();
    for (name, layer) in vae.layers() {
        let (w, b) = (*layer.weight.shape(), layer.outputs());
        let mut parts = ADAM_PARTS.iter().map(|part| {
            let dims = if part.starts_with("weight") {
                vec![w.0, w.1]
            } else {
                vec![b]
            };
            read_tensor(&file, &format!("adam.{name}.{part}"), &dims)
                .with_context(|| format!("{}", path.display()))
        });
        let mut next = || parts.next().context("four moment tensors per layer")?;
        moments.push([next()?, next()?, next()?, next()?]);
    }
    adam.settings.restore(i32::try_from(step)?);
    adam.moments = moments;
    Ok(ResumeState {
        config,
        vae,
        adam,
        epoch: usize::try_from(epoch)?,
    })
}

fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Loads a run folder's configuration and checkpoint onto `dev`.
pub fn load<D: Device<f32>>(dev: &D, run: &RunDir) -> Result<(TrainConfig, Vae<D>)> {
    let config = read_config(run)?;
    let path = run.checkpoint();
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("{} is not a valid checkpoint: {e:?}", path.display()))?;
    let vae = read_model(dev, &config, &file).with_context(|| format!("{}", path.display()))?;
    Ok((config, vae))
}

/// The run's `config.json`.
pub fn read_config(run: &RunDir) -> Result<TrainConfig> {
    read_json(&run.config()).with_context(|| format!("{run} is not a training run folder"))
}

/// A model of shape `config.model` with the weights stored in `file`.
fn read_model<D: Device<f32>>(dev: &D, config: &TrainConfig, file: &SafeTensors) -> Result<Vae<D>> {
    let shape = Vae::new(
        dev,
        &config.model,
        &mut rand::rngs::mock::StepRng::new(0, 0),
    );
    let layers = shape
        .layers()
        .into_iter()
        .map(|(name, layer)| {
            let (inputs, outputs) = *layer.weight.shape();
            Ok((
                read_tensor(file, &format!("{name}.weight"), &[inputs, outputs])?,
                read_tensor(file, &format!("{name}.bias"), &[outputs])?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Vae::with_weights(dev, &config.model, layers)
}

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
