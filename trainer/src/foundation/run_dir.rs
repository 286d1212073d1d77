//! A training run's folder: the one place that knows what every file in it is called.
//!
//! ```text
//! RUN/config.json               the run's settings (TrainConfig)
//! RUN/checkpoint.safetensors    every weight after the last finished epoch
//! RUN/resume.safetensors        the same, with Adam's state and the epoch: for --resume
//! RUN/history.json              losses per epoch
//! RUN/epochs/epoch-NNN.png      a sample grid per epoch (--snapshots), and epochs.gif
//! RUN/decoder-{f16,f32,i8}.vae  the model files (`vae export`)
//! RUN/eval.json                 `vae eval`'s figures
//! RUN/pictures/                 `vae pictures`
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use vae_core::Precision;

/// A run folder (which need not exist yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run folder at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Creates the folder (and its parents) if needed.
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create run folder {self}"))
    }

    /// The training configuration.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }

    /// Every weight after the last finished epoch.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint.safetensors")
    }

    /// Model, optimizer state and epoch: everything `--resume` needs, in one file.
    pub fn resume(&self) -> PathBuf {
        self.root.join("resume.safetensors")
    }

    /// Losses per epoch.
    pub fn history(&self) -> PathBuf {
        self.root.join("history.json")
    }

    /// The per-epoch sample grids.
    pub fn epochs_dir(&self) -> PathBuf {
        self.root.join("epochs")
    }

    /// The sample grid drawn after epoch `epoch` (1-based).
    pub fn epoch_grid(&self, epoch: usize) -> PathBuf {
        self.epochs_dir().join(format!("epoch-{epoch:03}.png"))
    }

    /// The per-epoch grids as one animation.
    pub fn epochs_gif(&self) -> PathBuf {
        self.root.join("epochs.gif")
    }

    /// The model file of the decoder at `precision`.
    pub fn model_file(&self, precision: Precision) -> PathBuf {
        self.root.join(format!("decoder-{}.vae", precision.name()))
    }

    /// `vae eval`'s figures.
    pub fn eval(&self) -> PathBuf {
        self.root.join("eval.json")
    }

    /// `vae pictures`' default output folder.
    pub fn pictures_dir(&self) -> PathBuf {
        self.root.join("pictures")
    }
}

impl fmt::Display for RunDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.root.display().fmt(f)
    }
}
