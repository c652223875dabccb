//! Saving and loading models: `<dir>/<name>.safetensors` (f32 tensors named
//! `conv1.weight`, `conv1.bias`, …, `bn1.running_mean`, …) plus
//! `<dir>/<name>.json` (architecture, activation with its current map, data,
//! training log, test accuracy).

use super::activation::Activation;
use super::arch::ArchSpec;
use super::augment::InputTransform;
use super::net::Net;
use super::trainer::{EpochLog, TrainOptions};
use super::{Result, TrainError};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Version of the JSON metadata layout.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// Everything about a model except its weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    pub format_version: u32,
    pub name: String,
    pub arch: ArchSpec,
    /// The activation, with the rate curve and its current map if any.
    pub activation: Activation,
    /// How images become inputs (spiking inference must match).
    pub input_transform: InputTransform,
    /// The neuron netlist the rate curve was measured from, and its hash
    /// (filled by the caller; empty for abstract activations).
    #[serde(default)]
    pub netlist_path: Option<String>,
    #[serde(default)]
    pub netlist_hash: Option<String>,
    /// Dataset variant the model was trained on (`mnist`, `cifar10-jpeg`, …).
    pub data_variant: String,
    #[serde(default)]
    pub train_options: Option<TrainOptions>,
    #[serde(default)]
    pub training_log: Vec<EpochLog>,
    #[serde(default)]
    pub test_accuracy: Option<f64>,
    /// The abstract neuron the activation stands for when there is no
    /// netlist (`relu`, `softlif`, `lif`).
    #[serde(default)]
    pub baseline: Option<String>,
    /// The command line that reproduces the model.
    #[serde(default)]
    pub command_line: Option<String>,
    /// The window (s) whose delivered spikes the rate curve counts
    /// (`train --latency-window`); a spiking run of this length is what
    /// the model is made for. None: the steady-state curve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_window_s: Option<f64>,
}

impl ModelMeta {
    /// Metadata for `net` with empty provenance fields.
    pub fn new(name: &str, net: &Net, input_transform: InputTransform, data_variant: &str) -> Self {
        Self {
            format_version: MODEL_FORMAT_VERSION,
            name: name.to_string(),
            arch: net.arch.clone(),
            activation: net.activation.clone(),
            input_transform,
            netlist_path: None,
            netlist_hash: None,
            data_variant: data_variant.to_string(),
            train_options: None,
            training_log: Vec::new(),
            test_accuracy: None,
            baseline: None,
            command_line: None,
            latency_window_s: None,
        }
    }
}

/// Paths of the weight and metadata files of model `name` in `dir`.
pub fn model_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.safetensors")),
        dir.join(format!("{name}.json")),
    )
}

/// Write `net` and `meta` as `<dir>/<name>.safetensors` and `<dir>/<name>.json`
/// (creating `dir`); `name` is `meta.name`.
pub fn save_model(dir: &Path, net: &Net, meta: &ModelMeta) -> Result<()> {
    if meta.name.is_empty() || meta.name.contains(['/', '\\']) {
        return Err(TrainError::Options(format!(
            "model name '{}' must be non-empty and contain no path separators",
            meta.name
        )));
    }
    std::fs::create_dir_all(dir).map_err(|source| TrainError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let (weights, json) = model_paths(dir, &meta.name);
    write_tensors(&weights, &net.tensors(), &[], HashMap::new())?;
    let text = serde_json::to_string_pretty(meta).map_err(|e| TrainError::Format {
        path: json.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&json, text.as_bytes())
}

/// Read model `name` from `dir`.
pub fn load_model(dir: &Path, name: &str) -> Result<(Net, ModelMeta)> {
    let (weights, json) = model_paths(dir, name);
    let text = std::fs::read_to_string(&json).map_err(|source| TrainError::Io {
        path: json.clone(),
        source,
    })?;
    let meta: ModelMeta = serde_json::from_str(&text).map_err(|e| TrainError::Format {
        path: json.clone(),
        message: e.to_string(),
    })?;
    if meta.format_version != MODEL_FORMAT_VERSION {
        return Err(TrainError::Format {
            path: json,
            message: format!(
                "model format version {} (this build reads {MODEL_FORMAT_VERSION})",
                meta.format_version
            ),
        });
    }
    let mut net = Net::new(meta.arch.clone(), meta.activation.clone(), 0).map_err(|e| {
        TrainError::Format {
            path: json.clone(),
            message: e.to_string(),
        }
    })?;
    let (tensors, _) = read_tensors(&weights)?;
    fill_net(&mut net, &tensors, &weights)?;
    Ok((net, meta))
}

/// Copy every tensor of `net` from `tensors`, checking names and shapes.
pub(crate) fn fill_net(
    net: &mut Net,
    tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    path: &Path,
) -> Result<()> {
    let wanted: Vec<(String, Vec<usize>)> =
        net.tensors().into_iter().map(|(n, s, _)| (n, s)).collect();
    for (name, shape) in wanted {
        let Some((found_shape, values)) = tensors.get(&name) else {
            return Err(TrainError::Format {
                path: path.to_path_buf(),
                message: format!("tensor '{name}' is missing"),
            });
        };
        if *found_shape != shape {
            return Err(TrainError::Format {
                path: path.to_path_buf(),
                message: format!(
                    "tensor '{name}' has shape {found_shape:?}, the architecture needs {shape:?}"
                ),
            });
        }
        // (A NaN or an infinity would flow through a network as a drive
        // that no rate curve or circuit can take.)
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            return Err(TrainError::Format {
                path: path.to_path_buf(),
                message: format!(
                    "tensor '{name}' holds a non-finite value ({}) at index {k}",
                    values[k]
                ),
            });
        }
        net.tensor_mut(&name)
            .expect("name listed by Net::tensors")
            .copy_from_slice(values);
    }
    Ok(())
}

/// Write f32 tensors (plus `extra`) and string metadata to a safetensors file,
/// through a temporary file and a rename so that a crash never leaves half a file.
pub(crate) fn write_tensors(
    path: &Path,
    tensors: &[(String, Vec<usize>, &[f32])],
    extra: &[(String, Vec<usize>, &[f32])],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .chain(extra)
        .map(|(n, s, v)| {
            (
                n.clone(),
                s.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let format = |e: safetensors::SafeTensorError| TrainError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let views = bytes
        .iter()
        .map(|(n, s, b)| {
            Ok((
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).map_err(format)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let data = safetensors::serialize(views, (!metadata.is_empty()).then_some(metadata))
        .map_err(format)?;
    write_atomic(path, &data)
}

pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let io = |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, data).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// All f32 tensors of a safetensors file, and its string metadata.
#[allow(clippy::type_complexity)]
pub(crate) fn read_tensors(
    path: &Path,
) -> Result<(
    BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    HashMap<String, String>,
)> {
    let bytes = std::fs::read(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let format = |message: String| TrainError::Format {
        path: path.to_path_buf(),
        message,
    };
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| format(e.to_string()))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| format(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(format(format!(
                "tensor '{name}' is {:?}, expected F32",
                view.dtype()
            )));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        out.insert(name, (view.shape().to_vec(), values));
    }
    Ok((out, header.metadata().clone().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::activation::{CurveFit, RateCurve};
    use crate::train::arch::{by_name, ArchOptions, InputShape};
    use crate::train::net::Mode;

    fn curve() -> RateCurve {
        let current: Vec<f64> = (0..=10).map(|k| k as f64 * 1e-9).collect();
        let rate: Vec<f64> = current
            .iter()
            .map(|&i| if i < 2e-9 { 0.0 } else { (i - 1e-9) * 1e11 })
            .collect();
        RateCurve::fit(current, rate, &CurveFit::default()).unwrap()
    }

    #[test]
    fn model_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let input = InputShape {
            channels: 3,
            height: 16,
            width: 16,
        };
        let opts = ArchOptions {
            dropout: 0.1,
            batch_norm: true,
            base_channels: 4,
        };
        let arch = by_name("cifar-conv3", input, 10, &opts).unwrap();
        let mut net = Net::new(arch, Activation::RateCurve(curve()), 42).unwrap();
        // Move the running statistics so that they are worth saving.
        let x: Vec<f32> = (0..8 * 768)
            .map(|k| ((k * 37) % 101) as f32 / 101.0)
            .collect();
        net.forward(&x, Mode::train(1));
        let mut meta = ModelMeta::new("tiny", &net, InputTransform { grayscale: false }, "cifar10");
        meta.netlist_path = Some("neurons/mif.cir".into());
        meta.netlist_hash = Some("sha256:abc".into());
        meta.test_accuracy = Some(0.5);
        save_model(dir.path(), &net, &meta).unwrap();
        assert!(dir.path().join("tiny.safetensors").exists());
        let (mut back, back_meta) = load_model(dir.path(), "tiny").unwrap();
        assert_eq!(back_meta, meta);
        assert_eq!(
            net.tensors()
                .iter()
                .map(|t| (t.0.clone(), t.2.to_vec()))
                .collect::<Vec<_>>(),
            back.tensors()
                .iter()
                .map(|t| (t.0.clone(), t.2.to_vec()))
                .collect::<Vec<_>>()
        );
        assert!(back.tensors().iter().any(|t| t.0 == "bn1.running_var"));
        assert_eq!(net.forward(&x, Mode::Eval), back.forward(&x, Mode::Eval));
    }

    #[test]
    fn tensor_names_follow_layers() {
        let input = InputShape {
            channels: 1,
            height: 28,
            width: 28,
        };
        let net = Net::new(
            by_name("mnist-thesis", input, 10, &ArchOptions::default()).unwrap(),
            Activation::Relu,
            0,
        )
        .unwrap();
        let names: Vec<String> = net.tensors().into_iter().map(|t| t.0).collect();
        assert_eq!(
            names,
            [
                "conv1.weight",
                "conv1.bias",
                "conv2.weight",
                "conv2.bias",
                "conv3.weight",
                "conv3.bias",
                "dense1.weight",
                "dense1.bias"
            ]
        );
        assert_eq!(net.tensors()[2].1, vec![64, 32, 3, 3]);
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_model(dir.path(), "absent").unwrap_err().to_string();
        assert!(e.contains("absent.json"), "{e}");
        let input = InputShape {
            channels: 1,
            height: 28,
            width: 28,
        };
        let net = Net::new(
            by_name("mnist-thesis", input, 10, &ArchOptions::default()).unwrap(),
            Activation::Relu,
            0,
        )
        .unwrap();
        let meta = ModelMeta::new("m", &net, InputTransform::default(), "mnist");
        save_model(dir.path(), &net, &meta).unwrap();
        // Weights of another architecture: a shape mismatch, reported with the path.
        let mut other = meta.clone();
        other.arch = by_name(
            "cifar-conv2",
            InputShape {
                channels: 1,
                height: 28,
                width: 28,
            },
            10,
            &ArchOptions::default(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("m.json"),
            serde_json::to_string(&other).unwrap(),
        )
        .unwrap();
        let e = load_model(dir.path(), "m").unwrap_err().to_string();
        assert!(
            e.contains("m.safetensors") && e.contains("conv2.weight") && e.contains("has shape"),
            "{e}"
        );
        // A weight that is not a number.
        let mut broken = net.clone();
        broken.tensor_mut("conv3.bias").unwrap()[5] = f32::NAN;
        save_model(dir.path(), &broken, &meta).unwrap();
        let e = load_model(dir.path(), "m").unwrap_err().to_string();
        assert!(
            e.contains("m.safetensors") && e.contains("'conv3.bias'") && e.contains("index 5"),
            "{e}"
        );
        std::fs::write(dir.path().join("m.safetensors"), b"garbage").unwrap();
        std::fs::write(
            dir.path().join("m.json"),
            serde_json::to_string(&meta).unwrap(),
        )
        .unwrap();
        assert!(load_model(dir.path(), "m")
            .unwrap_err()
            .to_string()
            .contains("m.safetensors"));
    }
}
