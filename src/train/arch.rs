//! Network architectures: a serialisable layer list, and the named ones.

use super::layers::Shape;
use super::{Result, TrainError};
use serde::{Deserialize, Serialize};

/// Convolution padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Padding {
    /// No padding.
    Valid,
    /// `kernel / 2` zeros on each side (output = input / stride for odd kernels).
    Same,
}

/// One layer of an architecture. Activations are placed explicitly; which
/// nonlinearity they apply is the network's [`super::Activation`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LayerSpec {
    Conv2d {
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: Padding,
    },
    Dense {
        out_features: usize,
    },
    Activation,
    AvgPool {
        size: usize,
        stride: usize,
    },
    Flatten,
    Dropout {
        rate: f32,
    },
    BatchNorm {
        momentum: f32,
        eps: f32,
    },
}

/// Input image shape (channels, height, width).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// A whole architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchSpec {
    pub name: String,
    pub input: InputShape,
    pub classes: usize,
    pub layers: Vec<LayerSpec>,
}

/// Options of the named architecture families.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchOptions {
    /// Dropout rate after each pooling stage and before the classifier (0 = none).
    pub dropout: f32,
    /// Batch norm after each convolution (before its activation).
    pub batch_norm: bool,
    /// Channels of the first CIFAR stage; later stages use 2×, 4×, 4×, 8×.
    pub base_channels: usize,
}

impl Default for ArchOptions {
    fn default() -> Self {
        Self {
            dropout: 0.0,
            batch_norm: false,
            base_channels: 32,
        }
    }
}

/// Names accepted by [`by_name`].
pub const NAMES: &str =
    "mnist-thesis, fashion-wide, cifar-conv2 … cifar-conv9, cifar-conv (= cifar-conv6)";

/// Dropout of `fashion-wide` when none is asked for: without it the dense
/// head overfits Fashion-MNIST within a few epochs.
pub const FASHION_WIDE_DROPOUT: f32 = 0.3;

/// The dropout rate an architecture uses when the caller gives none.
pub fn default_dropout(name: &str) -> f32 {
    if name == "fashion-wide" {
        FASHION_WIDE_DROPOUT
    } else {
        0.0
    }
}

/// Build a named architecture for the given input and class count.
///
/// * `mnist-thesis` — thesis Table 3.1: conv 32 3×3 (28→26), conv 64 3×3
///   stride 2 (26→12), conv 128 3×3 stride 2 (12→5), dense 10; an activation
///   after each convolution, none after the output. Dropout and batch norm
///   options are ignored: the thesis network has neither.
/// * `fashion-wide` — for Fashion-MNIST: the three `mnist-thesis`
///   convolutions, then dropout, a hidden dense layer of 256 neurons with
///   its activation, dropout again and dense 10, with batch norm before
///   every activation (always: clothes light up whole 3×3 patches, so
///   without it most pre-activations start beyond the top of the rate
///   curve, where it saturates, and learning crawls). Batch norm folds into
///   the weights for the spiking network. The extra capacity sits where it
///   costs the spiking network least: 256 neurons on top of the 34,048 of
///   `mnist-thesis` (neurons per image set the circuit simulation time),
///   and 17 % more multiply–adds in training. Dropout is `options.dropout`
///   (see [`default_dropout`]).
/// * `cifar-convN`, N = 2..9 — VGG-like: 3×3 "same" convolutions in stages of
///   two, with widths base·(1, 2, 4, 4, 8) per stage, 2×2 average pooling
///   after each of the first three full stages (32→16→8→4), optional batch
///   norm after each convolution and dropout after each pooling and before
///   the dense classifier. `cifar-conv` is `cifar-conv6`.
pub fn by_name(
    name: &str,
    input: InputShape,
    classes: usize,
    options: &ArchOptions,
) -> Result<ArchSpec> {
    let layers = if name == "mnist-thesis" {
        mnist_thesis(classes)
    } else if name == "fashion-wide" {
        fashion_wide(classes, options)?
    } else if let Some(n) = cifar_depth(name) {
        cifar_conv(n, classes, options)?
    } else {
        return Err(TrainError::Arch(format!(
            "unknown architecture '{name}' (known: {NAMES})"
        )));
    };
    let spec = ArchSpec {
        name: name.to_string(),
        input,
        classes,
        layers,
    };
    spec.shapes()?;
    Ok(spec)
}

fn cifar_depth(name: &str) -> Option<usize> {
    if name == "cifar-conv" {
        return Some(6);
    }
    name.strip_prefix("cifar-conv")?.parse().ok()
}

fn mnist_thesis(classes: usize) -> Vec<LayerSpec> {
    let conv = |out_channels, stride| LayerSpec::Conv2d {
        out_channels,
        kernel: 3,
        stride,
        padding: Padding::Valid,
    };
    vec![
        conv(32, 1),
        LayerSpec::Activation,
        conv(64, 2),
        LayerSpec::Activation,
        conv(128, 2),
        LayerSpec::Activation,
        LayerSpec::Flatten,
        LayerSpec::Dense {
            out_features: classes,
        },
    ]
}

/// Fashion-MNIST's hidden dense layer.
const FASHION_HIDDEN: usize = 256;

fn fashion_wide(classes: usize, o: &ArchOptions) -> Result<Vec<LayerSpec>> {
    check_dropout(o.dropout)?;
    let norm = LayerSpec::BatchNorm {
        momentum: 0.1,
        eps: 1e-5,
    };
    let mut layers = Vec::new();
    for layer in mnist_thesis(classes) {
        // The thesis convolutions, each normalised before its activation.
        match layer {
            LayerSpec::Activation => layers.extend([norm, layer]),
            LayerSpec::Dense { .. } => break,
            _ => layers.push(layer),
        }
    }
    let dropout = (o.dropout > 0.0).then_some(LayerSpec::Dropout { rate: o.dropout });
    layers.extend(dropout);
    layers.extend([
        LayerSpec::Dense {
            out_features: FASHION_HIDDEN,
        },
        norm,
        LayerSpec::Activation,
    ]);
    layers.extend(dropout);
    layers.push(LayerSpec::Dense {
        out_features: classes,
    });
    Ok(layers)
}

fn check_dropout(rate: f32) -> Result<()> {
    if (0.0..1.0).contains(&rate) {
        Ok(())
    } else {
        Err(TrainError::Arch(format!(
            "dropout rate {rate} is not in [0, 1)"
        )))
    }
}

fn cifar_conv(n: usize, classes: usize, o: &ArchOptions) -> Result<Vec<LayerSpec>> {
    if !(2..=9).contains(&n) {
        return Err(TrainError::Arch(format!(
            "cifar-conv{n}: the family has 2 to 9 convolution layers"
        )));
    }
    check_dropout(o.dropout)?;
    if o.base_channels == 0 {
        return Err(TrainError::Arch("base_channels must be at least 1".into()));
    }
    const STAGE_WIDTH: [usize; 5] = [1, 2, 4, 4, 8];
    let mut layers = Vec::new();
    let mut pools = 0;
    for i in 0..n {
        layers.push(LayerSpec::Conv2d {
            out_channels: o.base_channels * STAGE_WIDTH[i / 2],
            kernel: 3,
            stride: 1,
            padding: Padding::Same,
        });
        if o.batch_norm {
            layers.push(LayerSpec::BatchNorm {
                momentum: 0.1,
                eps: 1e-5,
            });
        }
        layers.push(LayerSpec::Activation);
        if i % 2 == 1 && pools < 3 {
            layers.push(LayerSpec::AvgPool { size: 2, stride: 2 });
            pools += 1;
            if o.dropout > 0.0 {
                layers.push(LayerSpec::Dropout { rate: o.dropout });
            }
        }
    }
    layers.push(LayerSpec::Flatten);
    if o.dropout > 0.0 && !matches!(layers[layers.len() - 2], LayerSpec::Dropout { .. }) {
        layers.push(LayerSpec::Dropout { rate: o.dropout });
    }
    layers.push(LayerSpec::Dense {
        out_features: classes,
    });
    Ok(layers)
}

impl ArchSpec {
    /// The per-sample shape after each layer; checks that the layers fit.
    pub fn shapes(&self) -> Result<Vec<Shape>> {
        let err = |k: usize, m: String| {
            Err(TrainError::Arch(format!(
                "{}: layer {}: {m}",
                self.name,
                k + 1
            )))
        };
        let i = self.input;
        if i.channels == 0 || i.height == 0 || i.width == 0 {
            return Err(TrainError::Arch(format!(
                "{}: empty input shape {i:?}",
                self.name
            )));
        }
        let mut shape = Shape::Spatial {
            c: i.channels,
            h: i.height,
            w: i.width,
        };
        let mut shapes = Vec::with_capacity(self.layers.len());
        for (k, layer) in self.layers.iter().enumerate() {
            shape = match (*layer, shape) {
                (
                    LayerSpec::Conv2d {
                        out_channels,
                        kernel,
                        stride,
                        padding,
                    },
                    Shape::Spatial { h, w, .. },
                ) => {
                    if out_channels == 0 || kernel == 0 || stride == 0 {
                        return err(k, "convolution sizes must be positive".into());
                    }
                    let pad = match padding {
                        Padding::Valid => 0,
                        Padding::Same => kernel / 2,
                    };
                    if h + 2 * pad < kernel || w + 2 * pad < kernel {
                        return err(k, format!("kernel {kernel} larger than the {h}×{w} input"));
                    }
                    Shape::Spatial {
                        c: out_channels,
                        h: (h + 2 * pad - kernel) / stride + 1,
                        w: (w + 2 * pad - kernel) / stride + 1,
                    }
                }
                (LayerSpec::Conv2d { .. }, Shape::Flat(_)) => {
                    return err(
                        k,
                        "a convolution needs spatial input, not a flattened one".into(),
                    )
                }
                (LayerSpec::Dense { out_features }, Shape::Flat(_)) => {
                    if out_features == 0 {
                        return err(k, "a dense layer needs at least one output".into());
                    }
                    Shape::Flat(out_features)
                }
                (LayerSpec::Dense { .. }, Shape::Spatial { .. }) => {
                    return err(
                        k,
                        "a dense layer needs flat input: add a flatten layer before it".into(),
                    )
                }
                (LayerSpec::AvgPool { size, stride }, Shape::Spatial { c, h, w }) => {
                    if size == 0 || stride == 0 || size > h || size > w {
                        return err(
                            k,
                            format!("pool {size} (stride {stride}) does not fit {h}×{w}"),
                        );
                    }
                    Shape::Spatial {
                        c,
                        h: (h - size) / stride + 1,
                        w: (w - size) / stride + 1,
                    }
                }
                (LayerSpec::AvgPool { .. }, Shape::Flat(_)) => {
                    return err(k, "pooling needs spatial input".into())
                }
                (LayerSpec::Flatten, s) => Shape::Flat(s.size()),
                (LayerSpec::Dropout { rate }, s) => {
                    if !(0.0..1.0).contains(&rate) {
                        return err(k, format!("dropout rate {rate} is not in [0, 1)"));
                    }
                    s
                }
                (LayerSpec::BatchNorm { momentum, eps }, s) => {
                    if !(0.0..=1.0).contains(&momentum) || !(eps > 0.0) {
                        return err(k, format!("batch norm needs momentum in [0, 1] and eps > 0, got {momentum}, {eps}"));
                    }
                    s
                }
                (LayerSpec::Activation, s) => s,
            };
            shapes.push(shape);
        }
        if shape != Shape::Flat(self.classes) {
            return Err(TrainError::Arch(format!(
                "{}: the last layer gives {shape:?}, not {} class scores",
                self.name, self.classes
            )));
        }
        Ok(shapes)
    }

    /// Trainable parameters (weights + biases) of each convolution and dense layer, in order.
    pub fn parameter_counts(&self) -> Result<Vec<usize>> {
        let shapes = self.shapes()?;
        let mut counts = Vec::new();
        for (k, layer) in self.layers.iter().enumerate() {
            let input = if k == 0 {
                self.input.channels
            } else {
                shapes[k - 1].channels()
            };
            match *layer {
                LayerSpec::Conv2d {
                    out_channels,
                    kernel,
                    ..
                } => counts.push(out_channels * (input * kernel * kernel + 1)),
                LayerSpec::Dense { out_features } => {
                    counts.push(out_features * (shapes[k - 1].size() + 1))
                }
                _ => {}
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MNIST: InputShape = InputShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    const CIFAR: InputShape = InputShape {
        channels: 3,
        height: 32,
        width: 32,
    };

    #[test]
    fn mnist_thesis_matches_table_3_1() {
        let a = by_name("mnist-thesis", MNIST, 10, &ArchOptions::default()).unwrap();
        assert_eq!(
            a.parameter_counts().unwrap(),
            vec![320, 18_496, 73_856, 32_010]
        );
        let shapes = a.shapes().unwrap();
        assert_eq!(
            shapes[0],
            Shape::Spatial {
                c: 32,
                h: 26,
                w: 26
            }
        );
        assert_eq!(
            shapes[2],
            Shape::Spatial {
                c: 64,
                h: 12,
                w: 12
            }
        );
        assert_eq!(shapes[4], Shape::Spatial { c: 128, h: 5, w: 5 });
        assert_eq!(*shapes.last().unwrap(), Shape::Flat(10));
        // No activation after the output layer.
        assert!(matches!(
            a.layers.last(),
            Some(LayerSpec::Dense { out_features: 10 })
        ));
    }

    #[test]
    fn fashion_wide_adds_a_dropout_dense_head_to_the_thesis_convolutions() {
        let opts = ArchOptions {
            dropout: default_dropout("fashion-wide"),
            ..ArchOptions::default()
        };
        let a = by_name("fashion-wide", MNIST, 10, &opts).unwrap();
        // The thesis convolutions, then 3,200 → 256 → 10.
        assert_eq!(
            a.parameter_counts().unwrap(),
            vec![320, 18_496, 73_856, 3_200 * 256 + 256, 256 * 10 + 10]
        );
        let shapes = a.shapes().unwrap();
        let thesis = by_name("mnist-thesis", MNIST, 10, &opts).unwrap();
        let thesis_shapes = thesis.shapes().unwrap();
        // conv, norm, act ×3 give the thesis shapes, then flatten.
        for k in 0..3 {
            assert_eq!(shapes[3 * k], thesis_shapes[2 * k]);
            assert_eq!(
                a.layers[3 * k + 1],
                LayerSpec::BatchNorm {
                    momentum: 0.1,
                    eps: 1e-5
                }
            );
            assert_eq!(a.layers[3 * k + 2], LayerSpec::Activation);
        }
        assert_eq!(shapes[9], Shape::Flat(128 * 5 * 5));
        assert_eq!(
            shapes.iter().rev().take(5).copied().collect::<Vec<_>>(),
            vec![
                Shape::Flat(10),
                Shape::Flat(256),
                Shape::Flat(256),
                Shape::Flat(256),
                Shape::Flat(256)
            ]
        );
        let norms = a
            .layers
            .iter()
            .filter(|l| matches!(l, LayerSpec::BatchNorm { .. }))
            .count();
        assert_eq!(norms, 4);
        let dropouts: Vec<f32> = a
            .layers
            .iter()
            .filter_map(|l| match l {
                LayerSpec::Dropout { rate } => Some(*rate),
                _ => None,
            })
            .collect();
        assert_eq!(dropouts, vec![FASHION_WIDE_DROPOUT; 2]);
        // Spiking neurons per image (outputs of activations): only 256 more
        // than the thesis network's 26·26·32 + 12·12·64 + 5·5·128 = 34,048.
        let neurons = |spec: &ArchSpec| -> usize {
            let s = spec.shapes().unwrap();
            spec.layers
                .iter()
                .zip(&s)
                .filter(|(l, _)| matches!(l, LayerSpec::Activation))
                .map(|(_, s)| s.size())
                .sum()
        };
        assert_eq!(neurons(&thesis), 34_048);
        assert_eq!(neurons(&a), 34_048 + 256);
        // Without dropout the head has none; a bad rate is an error.
        let plain = by_name("fashion-wide", MNIST, 10, &ArchOptions::default()).unwrap();
        assert_eq!(plain.layers.len(), a.layers.len() - 2);
        let bad = ArchOptions {
            dropout: 1.0,
            ..ArchOptions::default()
        };
        assert!(by_name("fashion-wide", MNIST, 10, &bad).is_err());
        assert_eq!(default_dropout("mnist-thesis"), 0.0);
    }

    #[test]
    fn cifar_family_builds_for_every_depth() {
        let opts = ArchOptions {
            dropout: 0.2,
            batch_norm: true,
            base_channels: 8,
        };
        for n in 2..=9 {
            let a = by_name(&format!("cifar-conv{n}"), CIFAR, 10, &opts).unwrap();
            let convs = a
                .layers
                .iter()
                .filter(|l| matches!(l, LayerSpec::Conv2d { .. }))
                .count();
            let norms = a
                .layers
                .iter()
                .filter(|l| matches!(l, LayerSpec::BatchNorm { .. }))
                .count();
            assert_eq!((convs, norms), (n, n));
            assert!(a
                .layers
                .iter()
                .any(|l| matches!(l, LayerSpec::Dropout { .. })));
        }
        let deep = by_name("cifar-conv9", CIFAR, 10, &opts).unwrap();
        assert_eq!(
            deep.shapes().unwrap().iter().rev().nth(2),
            Some(&Shape::Flat(64 * 4 * 4))
        );
        let default = by_name("cifar-conv", CIFAR, 10, &ArchOptions::default()).unwrap();
        assert_eq!(
            default.layers,
            by_name("cifar-conv6", CIFAR, 10, &ArchOptions::default())
                .unwrap()
                .layers
        );
        assert!(!default
            .layers
            .iter()
            .any(|l| matches!(l, LayerSpec::Dropout { .. } | LayerSpec::BatchNorm { .. })));
    }

    #[test]
    fn bad_architectures_are_errors() {
        let e = by_name("resnet50", MNIST, 10, &ArchOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown architecture 'resnet50'"), "{e}");
        assert!(by_name("cifar-conv10", CIFAR, 10, &ArchOptions::default()).is_err());
        let tiny = InputShape {
            channels: 1,
            height: 4,
            width: 4,
        };
        assert!(by_name("mnist-thesis", tiny, 10, &ArchOptions::default()).is_err());
        let spec = ArchSpec {
            name: "x".into(),
            input: MNIST,
            classes: 10,
            layers: vec![LayerSpec::Dense { out_features: 10 }],
        };
        assert!(spec
            .shapes()
            .unwrap_err()
            .to_string()
            .contains("add a flatten layer"));
    }

    #[test]
    fn spec_serde_round_trip() {
        let a = by_name(
            "cifar-conv4",
            CIFAR,
            10,
            &ArchOptions {
                dropout: 0.1,
                batch_norm: true,
                base_channels: 16,
            },
        )
        .unwrap();
        let back: ArchSpec = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(a, back);
    }
}
