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

/// Dropout of `fashion-wide` when none is asked for (its classifier has
/// 64,010 weights for 60,000 training images; 0.3 underfitted in 10 epochs).
pub const FASHION_WIDE_DROPOUT: f32 = 0.1;

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
/// * `fashion-wide` — for Fashion-MNIST: `mnist-thesis` with 256 channels
///   instead of 128 in the last convolution (12→5), and dropout before the
///   dense classifier. The extra capacity sits where it costs the spiking
///   network least: 3,200 more neurons on top of the 34,048 of
///   `mnist-thesis` (neurons per image set the circuit simulation time).
///   It stays three spiking layers deep and has no batch norm: each extra
///   layer, and the large negative biases that folded batch norm leaves,
///   delay the first output spikes through the synapse filters (a
///   dense-256 head with batch norm was at chance after 10 steps of 1 ms).
///   Dropout is `options.dropout` (see [`default_dropout`]); batch norm is
///   ignored.
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

/// Channels of `fashion-wide`'s last convolution (`mnist-thesis`: 128).
const FASHION_LAST_CHANNELS: usize = 256;

fn fashion_wide(classes: usize, o: &ArchOptions) -> Result<Vec<LayerSpec>> {
    check_dropout(o.dropout)?;
    let mut layers = mnist_thesis(classes);
    let last_conv = layers
        .iter()
        .rposition(|l| matches!(l, LayerSpec::Conv2d { .. }))
        .expect("mnist-thesis has convolutions");
    if let LayerSpec::Conv2d { out_channels, .. } = &mut layers[last_conv] {
        *out_channels = FASHION_LAST_CHANNELS;
    }
    if o.dropout > 0.0 {
        // Between flatten and the classifier.
        let classifier = layers.len() - 1;
        layers.insert(classifier, LayerSpec::Dropout { rate: o.dropout });
    }
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
    fn fashion_wide_is_the_thesis_net_with_a_wider_last_convolution() {
        let opts = ArchOptions {
            dropout: default_dropout("fashion-wide"),
            batch_norm: true,
            ..ArchOptions::default()
        };
        let a = by_name("fashion-wide", MNIST, 10, &opts).unwrap();
        // conv 32, conv 64 /2, conv 256 /2, dense 10 on 256·5·5 features.
        assert_eq!(
            a.parameter_counts().unwrap(),
            vec![320, 18_496, 256 * (64 * 9 + 1), 10 * (6_400 + 1)]
        );
        let shapes = a.shapes().unwrap();
        let thesis = by_name("mnist-thesis", MNIST, 10, &opts).unwrap();
        assert_eq!(shapes[..4], thesis.shapes().unwrap()[..4]);
        assert_eq!(shapes[4], Shape::Spatial { c: 256, h: 5, w: 5 });
        assert_eq!(shapes[6], Shape::Flat(6_400));
        assert_eq!(*shapes.last().unwrap(), Shape::Flat(10));
        // Dropout sits before the classifier; batch norm is not used.
        assert_eq!(
            a.layers[a.layers.len() - 2],
            LayerSpec::Dropout {
                rate: FASHION_WIDE_DROPOUT
            }
        );
        assert!(!a
            .layers
            .iter()
            .any(|l| matches!(l, LayerSpec::BatchNorm { .. })));
        // Spiking neurons per image (outputs of activations): 3,200 more
        // than the thesis network's 26·26·32 + 12·12·64 + 5·5·128 = 34,048,
        // in as many spiking layers.
        let neurons = |spec: &ArchSpec| -> (usize, usize) {
            let s = spec.shapes().unwrap();
            let hidden: Vec<usize> = spec
                .layers
                .iter()
                .zip(&s)
                .filter(|(l, _)| matches!(l, LayerSpec::Activation))
                .map(|(_, s)| s.size())
                .collect();
            (hidden.len(), hidden.iter().sum())
        };
        assert_eq!(neurons(&thesis), (3, 34_048));
        assert_eq!(neurons(&a), (3, 34_048 + 3_200));
        // Without dropout there is no dropout layer; a bad rate is an error.
        let plain = by_name("fashion-wide", MNIST, 10, &ArchOptions::default()).unwrap();
        assert_eq!(plain.layers.len(), a.layers.len() - 1);
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
