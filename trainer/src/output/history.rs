//! A run's history: its losses and label fidelity after every epoch, kept in the run
//! folder's `history.json`.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::foundation::io::{read_json, write_json};
use crate::foundation::run_dir::RunDir;
use crate::nn::model::LossTerms;

/// Losses of one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss terms over the epoch's batches, in nats per image.
    pub train: LossTerms,
    /// Loss terms on the 10,000 test images after the epoch (one z sample each).
    pub test: LossTerms,
    /// Training images per second during the epoch.
    pub images_per_second: f64,
    /// Share of 1,000 samples (z ~ N(0, I)) that the classifier head reads as the digit
    /// asked for; conditional models only.
    pub label_fidelity: Option<f32>,
}

/// Reads the run's history.
pub fn load(run: &RunDir) -> Result<Vec<EpochRecord>> {
    read_json(&run.history())
}

/// Writes the run's history (atomically).
pub fn save(run: &RunDir, history: &[EpochRecord]) -> Result<()> {
    write_json(&run.history(), &history)
}
