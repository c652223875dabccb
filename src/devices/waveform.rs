//! Time functions of independent sources: DC, SIN, PULSE, PWL, EXP (SPICE
//! conventions, defaults filled in by the elaborator from `.tran`).

/// An evaluated source value as a function of time.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceFn {
    Dc(f64),
    /// vo + va·e^{−(t−td)θ}·sin(2πf(t−td) + φ) for t ≥ td, vo + va·sin φ before.
    Sin {
        vo: f64,
        va: f64,
        freq: f64,
        td: f64,
        theta: f64,
        phase_rad: f64,
    },
    Pulse {
        v1: f64,
        v2: f64,
        td: f64,
        tr: f64,
        tf: f64,
        pw: f64,
        per: f64,
    },
    /// (time, value) pairs with strictly increasing times.
    Pwl(Vec<(f64, f64)>),
    Exp {
        v1: f64,
        v2: f64,
        td1: f64,
        tau1: f64,
        td2: f64,
        tau2: f64,
    },
}

impl SourceFn {
    /// The value at time t (the DC value is the value at t = 0).
    pub fn value(&self, t: f64) -> f64 {
        match *self {
            SourceFn::Dc(v) => v,
            SourceFn::Sin {
                vo,
                va,
                freq,
                td,
                theta,
                phase_rad,
            } => {
                if t < td {
                    vo + va * phase_rad.sin()
                } else {
                    let s = t - td;
                    vo + va
                        * (-s * theta).exp()
                        * (2.0 * std::f64::consts::PI * freq * s + phase_rad).sin()
                }
            }
            SourceFn::Pulse {
                v1,
                v2,
                td,
                tr,
                tf,
                pw,
                per,
            } => {
                if t < td {
                    return v1;
                }
                let mut s = t - td;
                if per > 0.0 && s >= per {
                    s -= (s / per).floor() * per;
                }
                if s < tr {
                    v1 + (v2 - v1) * s / tr
                } else if s < tr + pw {
                    v2
                } else if s < tr + pw + tf {
                    v2 + (v1 - v2) * (s - tr - pw) / tf
                } else {
                    v1
                }
            }
            SourceFn::Pwl(ref pts) => pwl_value(pts, t),
            SourceFn::Exp {
                v1,
                v2,
                td1,
                tau1,
                td2,
                tau2,
            } => {
                let mut v = v1;
                if t > td1 {
                    v += (v2 - v1) * (1.0 - (-(t - td1) / tau1).exp());
                }
                if t > td2 {
                    v += (v1 - v2) * (1.0 - (-(t - td2) / tau2).exp());
                }
                v
            }
        }
    }

    /// Corner times in [0, tstop], where the step must land.
    pub fn breakpoints(&self, tstop: f64, out: &mut Vec<f64>) {
        match *self {
            SourceFn::Dc(_) => {}
            SourceFn::Sin { td, .. } => out.push(td),
            SourceFn::Pulse {
                td,
                tr,
                tf,
                pw,
                per,
                ..
            } => {
                let corners = [0.0, tr, tr + pw, tr + pw + tf];
                let mut start = td;
                // A pulse train with a tiny period would flood the list; cap it.
                for _ in 0..100_000 {
                    if start > tstop {
                        break;
                    }
                    out.extend(corners.iter().map(|c| start + c).filter(|&t| t <= tstop));
                    if per <= 0.0 || !per.is_finite() {
                        break;
                    }
                    start += per;
                }
            }
            SourceFn::Pwl(ref pts) => out.extend(pts.iter().map(|p| p.0).filter(|&t| t <= tstop)),
            SourceFn::Exp { td1, td2, .. } => out.extend([td1, td2]),
        }
    }
}

fn pwl_value(pts: &[(f64, f64)], t: f64) -> f64 {
    match pts.iter().position(|p| p.0 > t) {
        None => pts.last().map_or(0.0, |p| p.1),
        Some(0) => pts[0].1,
        Some(i) => {
            let (t0, v0) = pts[i - 1];
            let (t1, v1) = pts[i];
            v0 + (v1 - v0) * (t - t0) / (t1 - t0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_bench_input_follows_one_minus_cosine() {
        // SIN(1.5n 1.5n 1 0 0 -90) = 1.5 nA (1 − cos 2πt)
        let f = SourceFn::Sin {
            vo: 1.5e-9,
            va: 1.5e-9,
            freq: 1.0,
            td: 0.0,
            theta: 0.0,
            phase_rad: -std::f64::consts::FRAC_PI_2,
        };
        for &t in &[0.0, 0.1, 0.25, 0.5, 0.9] {
            let want = 1.5e-9 * (1.0 - (2.0 * std::f64::consts::PI * t).cos());
            assert!((f.value(t) - want).abs() < 1e-18, "t={t}");
        }
    }

    #[test]
    fn pulse_corners_and_periodicity() {
        let f = SourceFn::Pulse {
            v1: 0.0,
            v2: 1.0,
            td: 1.0,
            tr: 0.1,
            tf: 0.2,
            pw: 0.5,
            per: 2.0,
        };
        assert_eq!(f.value(0.5), 0.0);
        assert!((f.value(1.05) - 0.5).abs() < 1e-12);
        assert_eq!(f.value(1.3), 1.0);
        assert!((f.value(1.7) - 0.5).abs() < 1e-12);
        assert_eq!(f.value(2.5), 0.0);
        assert!((f.value(3.05) - 0.5).abs() < 1e-12);
        let mut bp = Vec::new();
        f.breakpoints(3.5, &mut bp);
        assert_eq!(bp.len(), 8);
        assert!((bp[4] - 3.0).abs() < 1e-12);
    }

    #[test]
    fn pwl_is_linear_between_points_and_flat_outside() {
        let f = SourceFn::Pwl(vec![(1.0, 2.0), (3.0, 6.0)]);
        assert_eq!(f.value(0.0), 2.0);
        assert_eq!(f.value(2.0), 4.0);
        assert_eq!(f.value(9.0), 6.0);
    }

    #[test]
    fn exp_rises_then_falls() {
        let f = SourceFn::Exp {
            v1: 0.0,
            v2: 1.0,
            td1: 0.0,
            tau1: 1.0,
            td2: 10.0,
            tau2: 1.0,
        };
        assert!((f.value(1.0) - (1.0 - (-1.0f64).exp())).abs() < 1e-12);
        assert!(f.value(30.0).abs() < 1e-6);
    }
}
