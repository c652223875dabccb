//! Input preparation (pixels to floats, optional grayscale) and random
//! augmentation (shifts, rotations, horizontal flips).

use super::arch::InputShape;
use super::rng::SplitMix64;
use crate::data::Dataset;
use serde::{Deserialize, Serialize};

/// How dataset pixels become network inputs: `pixel / 255` per channel, or
/// one luminance channel (ITU-R BT.601 weights) when `grayscale` is set.
/// Saved with the model so that inference prepares images the same way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTransform {
    pub grayscale: bool,
}

impl InputTransform {
    /// Input shape the network sees for images of `data`.
    pub fn input_shape(&self, data: &Dataset) -> InputShape {
        InputShape {
            channels: if self.grayscale { 1 } else { data.channels },
            height: data.height,
            width: data.width,
        }
    }

    /// Write image `i` of `data` into `out` (length of [`Self::input_shape`]).
    pub fn prepare(&self, data: &Dataset, i: usize, out: &mut [f32]) {
        let px = data.image(i);
        let plane = data.height * data.width;
        if self.grayscale && data.channels == 3 {
            for (k, o) in out.iter_mut().enumerate() {
                let (r, g, b) = (px[k], px[plane + k], px[2 * plane + k]);
                *o = (0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32) / 255.0;
            }
        } else if self.grayscale && data.channels > 1 {
            // Unknown colour layout: the channel mean.
            let c = data.channels as f32;
            for (k, o) in out.iter_mut().enumerate() {
                *o = (0..data.channels)
                    .map(|ch| px[ch * plane + k] as f32)
                    .sum::<f32>()
                    / (c * 255.0);
            }
        } else {
            for (o, &p) in out.iter_mut().zip(px) {
                *o = p as f32 / 255.0;
            }
        }
    }
}

/// Random training-time augmentation, drawn per sample.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Largest shift in pixels, each axis, uniform over −s..=s.
    pub shift_px: u32,
    /// Largest rotation in degrees, uniform over ±.
    pub rotation_deg: f32,
    /// Mirror left–right with probability 1/2 (for CIFAR, not digits).
    pub hflip: bool,
}

impl Augment {
    pub fn is_identity(&self) -> bool {
        self.shift_px == 0 && self.rotation_deg == 0.0 && !self.hflip
    }

    /// Transform `image` (`c × h × w`) into `out`, with random choices from
    /// `rng`. Pixels that come from outside the image are 0.
    pub fn apply(
        &self,
        image: &[f32],
        (c, h, w): (usize, usize, usize),
        rng: &mut SplitMix64,
        out: &mut [f32],
    ) {
        let s = self.shift_px as i64;
        let dx = if s > 0 {
            rng.below(2 * s as usize + 1) as i64 - s
        } else {
            0
        };
        let dy = if s > 0 {
            rng.below(2 * s as usize + 1) as i64 - s
        } else {
            0
        };
        let angle = if self.rotation_deg > 0.0 {
            rng.uniform(-self.rotation_deg as f64, self.rotation_deg as f64)
                .to_radians()
        } else {
            0.0
        };
        let flip = self.hflip && rng.next_f64() < 0.5;
        for ch in 0..c {
            let src = &image[ch * h * w..][..h * w];
            let dst = &mut out[ch * h * w..][..h * w];
            if angle == 0.0 {
                // Integer shift (and flip): exact copies.
                for y in 0..h as i64 {
                    for x in 0..w as i64 {
                        let (sy, mut sx) = (y - dy, x - dx);
                        if flip {
                            sx = w as i64 - 1 - sx;
                        }
                        dst[(y * w as i64 + x) as usize] =
                            if sy >= 0 && sy < h as i64 && sx >= 0 && sx < w as i64 {
                                src[(sy * w as i64 + sx) as usize]
                            } else {
                                0.0
                            };
                    }
                }
            } else {
                rotate_shift(src, (h, w), angle, (dx as f64, dy as f64), flip, dst);
            }
        }
    }
}

/// Output pixel p takes the bilinear sample of the source at
/// `R(−angle)·(p − centre − shift) + centre`, mirrored if `flip`.
fn rotate_shift(
    src: &[f32],
    (h, w): (usize, usize),
    angle: f64,
    (dx, dy): (f64, f64),
    flip: bool,
    dst: &mut [f32],
) {
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let (sin, cos) = angle.sin_cos();
    let at = |x: i64, y: i64| -> f64 {
        if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
            0.0
        } else {
            src[y as usize * w + x as usize] as f64
        }
    };
    for y in 0..h {
        for x in 0..w {
            let (px, py) = (x as f64 - cx - dx, y as f64 - cy - dy);
            let mut sx = cos * px + sin * py + cx;
            let sy = -sin * px + cos * py + cy;
            if flip {
                sx = w as f64 - 1.0 - sx;
            }
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let v = (1.0 - fy) * ((1.0 - fx) * at(x0, y0) + fx * at(x0 + 1, y0))
                + fy * ((1.0 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
            dst[y * w + x] = v as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DatasetKind;

    fn dataset(channels: usize, pixels: Vec<u8>) -> Dataset {
        Dataset {
            kind: DatasetKind::Cifar10,
            variant: "test".into(),
            channels,
            height: 1,
            width: pixels.len() / channels,
            images: pixels,
            labels: vec![0],
            class_names: vec![],
        }
    }

    #[test]
    fn prepare_scales_and_converts_to_gray() {
        let d = dataset(3, vec![255, 0, 0, 255, 0, 0]);
        let mut out = [0.0f32; 2];
        InputTransform { grayscale: true }.prepare(&d, 0, &mut out);
        assert!((out[0] - 0.299).abs() < 1e-6 && (out[1] - 0.587).abs() < 1e-6);
        let mut rgb = [0.0f32; 6];
        InputTransform::default().prepare(&d, 0, &mut rgb);
        assert_eq!(rgb, [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        assert_eq!(
            InputTransform { grayscale: true }.input_shape(&d).channels,
            1
        );
    }

    #[test]
    fn shifts_flips_and_rotations_move_pixels() {
        let (h, w) = (7, 7);
        let mut img = vec![0.0f32; h * w];
        img[3 * w + 3] = 1.0; // centre
        img[3 * w + 5] = 0.5; // two right of centre
        let shift = Augment {
            shift_px: 2,
            ..Default::default()
        };
        let mut out = vec![0.0; h * w];
        let mut seen_shift = false;
        for seed in 0..20 {
            shift.apply(&img, (1, h, w), &mut SplitMix64::new(seed), &mut out);
            let peak = out.iter().position(|&v| v == 1.0).unwrap();
            let (py, px) = ((peak / w) as i64, (peak % w) as i64);
            assert!((py - 3).abs() <= 2 && (px - 3).abs() <= 2);
            seen_shift |= peak != 3 * w + 3;
            assert!(out.iter().sum::<f32>() <= 1.5 + 1e-6);
        }
        assert!(seen_shift);
        // A flip mirrors the off-centre pixel.
        let flip = Augment {
            hflip: true,
            ..Default::default()
        };
        let mut flipped = 0;
        for seed in 0..20 {
            flip.apply(&img, (1, h, w), &mut SplitMix64::new(seed), &mut out);
            if out[3 * w + 1] == 0.5 {
                flipped += 1;
            } else {
                assert_eq!(out, img);
            }
        }
        assert!(flipped > 3 && flipped < 17);
        // 90° keeps the centre and moves the off-centre pixel onto the vertical axis.
        let mut dst = vec![0.0; h * w];
        rotate_shift(
            &img,
            (h, w),
            std::f64::consts::FRAC_PI_2,
            (0.0, 0.0),
            false,
            &mut dst,
        );
        assert!((dst[3 * w + 3] - 1.0).abs() < 1e-6);
        let off_axis = dst[w + 3] + dst[5 * w + 3];
        assert!((off_axis - 0.5).abs() < 1e-6, "{dst:?}");
        // A small rotation keeps the mass near the centre.
        let rot = Augment {
            rotation_deg: 15.0,
            ..Default::default()
        };
        rot.apply(&img, (1, h, w), &mut SplitMix64::new(1), &mut out);
        assert!(out[3 * w + 3] > 0.9);
    }
}
