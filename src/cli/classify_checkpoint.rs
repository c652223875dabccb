//! `<out>/checkpoint.json` of `circsnn classify`: the per-image results of
//! a run so far, saved about once a minute, so that a run of hours that is
//! interrupted continues with `--resume` instead of starting again.
//!
//! A checkpoint is only continued by a run that would have produced it:
//! the same settings, images, netlist and model file contents (hashed) and
//! data variant. The thread count may differ: results do not depend on it.

use crate::neuron::cache::file_sha256;
use crate::snn::{ClassifyOutcome, Fidelity, RunSettings};
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Seconds of work between two saves.
pub const CHECKPOINT_EVERY_S: f64 = 60.0;

/// What a resumed run must share with the run that saved the checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunKey {
    pub settings: RunSettings,
    pub compare: Option<Fidelity>,
    pub netlist: String,
    pub netlist_sha256: String,
    pub model: String,
    /// Of the model's JSON and safetensors files, in that order.
    pub model_sha256: [String; 2],
    pub dataset: String,
    pub data_variant: String,
    /// The test images run: `[first_image, first_image + images)`.
    pub first_image: usize,
    pub images: usize,
    pub device_variation: Option<String>,
}

impl RunKey {
    /// Hashes of the netlist and the model files.
    pub fn file_hashes(netlist: &Path, model_json: &Path) -> anyhow::Result<(String, [String; 2])> {
        let weights = model_json.with_extension("safetensors");
        Ok((
            file_sha256(netlist)?,
            [file_sha256(model_json)?, file_sha256(&weights)?],
        ))
    }

    /// The names of the fields that differ from `other`.
    fn differences(&self, other: &RunKey) -> Vec<String> {
        let (a, b) = (
            serde_json::to_value(self).unwrap_or_default(),
            serde_json::to_value(other).unwrap_or_default(),
        );
        let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
            return vec!["(unreadable)".into()];
        };
        a.iter()
            .filter(|(k, v)| b.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// The saved progress: one outcome per fidelity pass (the run's, then
/// `--compare`'s), each covering the first images of the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    pub key: RunKey,
    pub passes: Vec<ClassifyOutcome>,
}

impl Checkpoint {
    pub fn path(out: &Path) -> PathBuf {
        out.join("checkpoint.json")
    }

    fn passes_expected(&self) -> usize {
        1 + usize::from(self.key.compare.is_some())
    }

    /// Images done, summed over the passes.
    fn images_done(&self) -> usize {
        self.passes.iter().map(|p| p.results.len()).sum()
    }

    fn finished(&self) -> bool {
        self.passes.len() == self.passes_expected()
            && self
                .passes
                .iter()
                .all(|p| p.results.len() == self.key.images)
    }

    /// The progress this run starts from: the checkpoint in `out` when
    /// `resume` (it must exist and match `key`), else nothing. Without
    /// `resume`, an unfinished checkpoint is an error rather than
    /// overwritten, so that hours of work are not lost by a repeated
    /// command.
    pub fn start(out: &Path, key: RunKey, resume: bool) -> anyhow::Result<Checkpoint> {
        let path = Checkpoint::path(out);
        let existing = match std::fs::read(&path) {
            Ok(bytes) => Some(
                serde_json::from_slice::<Checkpoint>(&bytes)
                    .with_context(|| format!("{}: not a classify checkpoint", path.display()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let fresh = Checkpoint {
            key: key.clone(),
            passes: Vec::new(),
        };
        match existing {
            None if resume => bail!(
                "--resume: {} does not exist, so there is no run to continue",
                path.display()
            ),
            None => Ok(fresh),
            Some(c) if resume => {
                let differ = c.key.differences(&key);
                if !differ.is_empty() {
                    bail!(
                        "--resume: {} was saved by a different run (it differs in: {}); rerun with that run's options, or remove the file",
                        path.display(),
                        differ.join(", ")
                    );
                }
                if c.passes.len() > c.passes_expected()
                    || c.passes.iter().any(|p| p.results.len() > key.images)
                {
                    bail!("{}: holds more results than the run has images", path.display());
                }
                Ok(c)
            }
            Some(c) if !c.finished() => bail!(
                "{} holds an interrupted run ({} of {} images done): pass --resume to continue it, or remove the file to start again",
                path.display(),
                c.images_done(),
                c.key.images * c.passes_expected()
            ),
            Some(_) => Ok(fresh),
        }
    }

    /// The outcome pass `index` starts from.
    pub fn pass(&self, index: usize) -> ClassifyOutcome {
        self.passes.get(index).cloned().unwrap_or_default()
    }

    /// Record pass `index`'s progress and write the file (atomically: a
    /// crash mid-write leaves the previous checkpoint).
    pub fn save(
        &mut self,
        out: &Path,
        index: usize,
        outcome: &ClassifyOutcome,
    ) -> anyhow::Result<()> {
        if self.passes.len() <= index {
            self.passes.resize(index + 1, ClassifyOutcome::default());
        }
        self.passes[index] = outcome.clone();
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        let json = serde_json::to_vec(self)?;
        crate::train::model_io::write_atomic(&Checkpoint::path(out), &json)?;
        Ok(())
    }
}
