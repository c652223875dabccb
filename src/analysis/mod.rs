//! Analysis drivers: `.op`, `.dc` and `.tran` over the MNA solver.

pub mod dc;
pub mod op;
pub mod tran;

use crate::circuit::{Analysis, Circuit};
use crate::devices::EvalCtx;
use crate::output::{Signal, SignalKind, Waveforms};
use crate::solver::Mna;

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("cannot set up the MNA system: {0}")]
    Setup(String),
    #[error("operating point failed (after gmin and source stepping): {0}")]
    OpFailed(String),
    #[error("dc sweep failed at {name} = {value:.6e}: {detail}")]
    DcFailed {
        name: String,
        value: f64,
        detail: String,
    },
    #[error("transient analysis failed at t = {time:.9e} s with step {step:.3e} s: {detail}")]
    TranFailed {
        time: f64,
        step: f64,
        detail: String,
    },
}

/// The outcome of one analysis.
#[derive(Debug)]
pub struct AnalysisResult {
    pub waveforms: Waveforms,
    /// Spike times (s), when the netlist has `.SPIKE` and the analysis is `.tran`.
    pub spikes: Vec<f64>,
    pub accepted_steps: u64,
    pub rejected_steps: u64,
    pub newton_iterations: u64,
    /// Energy dissipated in the resistive devices over the run (J).
    pub energy_j: f64,
    /// Simulated interval (s) for rates: tstop − tstart for `.tran`.
    pub interval_s: f64,
}

/// Parse, elaborate and run the first `.tran` of a netlist file with
/// `.param` overrides (the common path of tests, benches and `bench`).
pub fn run_tran_file(
    path: &std::path::Path,
    overrides: &[(String, crate::netlist::Expr)],
) -> anyhow::Result<AnalysisResult> {
    let mut c = crate::circuit::load(path, overrides)?;
    run_tran(&mut c).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Run the first `.tran` of an elaborated circuit.
pub fn run_tran(c: &mut Circuit) -> anyhow::Result<AnalysisResult> {
    let mut mna = build(c)?;
    let Some(tran) = c
        .analyses
        .iter()
        .find(|a| matches!(a, Analysis::Tran { .. }))
        .cloned()
    else {
        anyhow::bail!("no .tran analysis");
    };
    Ok(run(c, &mut mna, &tran)?)
}

/// Build the MNA system for a circuit.
pub fn build(circuit: &mut Circuit) -> Result<Mna, AnalysisError> {
    Mna::new(circuit).map_err(|e| AnalysisError::Setup(e.to_string()))
}

/// Run one analysis of the circuit.
pub fn run(
    circuit: &mut Circuit,
    mna: &mut Mna,
    analysis: &Analysis,
) -> Result<AnalysisResult, AnalysisError> {
    match analysis {
        Analysis::Op => op::run(circuit, mna),
        Analysis::Dc {
            source,
            start,
            stop,
            step,
        } => dc::run(circuit, mna, source, *start, *stop, *step),
        Analysis::Tran {
            tstep,
            tstop,
            tstart,
            tmax,
            uic,
        } => {
            let spec = tran::TranSpec {
                tstep: *tstep,
                tstop: *tstop,
                tstart: *tstart,
                tmax: *tmax,
                uic: *uic,
            };
            tran::run(circuit, mna, &spec)
        }
    }
}

/// Collects one row of signals per recorded point.
pub(crate) struct Recorder {
    names: Vec<(String, SignalKind)>,
    columns: Vec<Vec<f64>>,
    sweep: Vec<f64>,
    probe_buf: Vec<f64>,
}

impl Recorder {
    pub fn new(circuit: &Circuit) -> Self {
        let mut names: Vec<(String, SignalKind)> = circuit
            .unknowns
            .iter()
            .map(|u| (u.name.clone(), u.kind.into()))
            .collect();
        for d in &circuit.devices {
            names.extend(d.probes().into_iter().map(|p| (p.name, p.kind)));
        }
        let columns = vec![Vec::new(); names.len()];
        Recorder {
            names,
            columns,
            sweep: Vec::new(),
            probe_buf: Vec::new(),
        }
    }

    pub fn record(
        &mut self,
        circuit: &Circuit,
        sweep: f64,
        x: &[f64],
        ctx_time: f64,
        dc_analysis: bool,
    ) {
        self.sweep.push(sweep);
        for (col, &v) in self.columns.iter_mut().zip(x) {
            col.push(v);
        }
        self.probe_buf.clear();
        let ctx = EvalCtx {
            x,
            time: ctx_time,
            source_scale: 1.0,
            dc_analysis,
        };
        for d in &circuit.devices {
            d.probe_values(&ctx, &mut self.probe_buf);
        }
        for (col, &v) in self.columns[x.len()..].iter_mut().zip(&self.probe_buf) {
            col.push(v);
        }
    }

    pub fn finish(self, title: &str, analysis: &str, sweep_name: &str) -> Waveforms {
        Waveforms {
            title: title.to_string(),
            analysis: analysis.to_string(),
            sweep_name: sweep_name.to_string(),
            sweep: self.sweep,
            signals: self
                .names
                .into_iter()
                .zip(self.columns)
                .map(|((name, kind), values)| Signal { name, kind, values })
                .collect(),
        }
    }
}

/// Total power dissipated by the circuit's devices at x (W).
pub(crate) fn total_power(circuit: &Circuit, x: &[f64], time: f64) -> f64 {
    let ctx = EvalCtx {
        x,
        time,
        source_scale: 1.0,
        dc_analysis: false,
    };
    circuit.devices.iter().map(|d| d.power(&ctx)).sum()
}
