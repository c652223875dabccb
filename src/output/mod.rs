//! Results on disk: CSV, ngspice-compatible raw files, JSON summaries and figures.

/// What a signal measures; decides its unit and its raw-file type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum SignalKind {
    /// `v(node)`, volts.
    Voltage,
    /// `i(element)`, amperes.
    Current,
    /// `x(device)`, a dimensionless device state (memristor x).
    State,
}

/// One recorded quantity, sampled at every point of [`Waveforms::sweep`].
#[derive(Clone, Debug)]
pub struct Signal {
    /// Lower-case, as written in CSV headers: `v(mem)`, `i(vrest)`, `x(m1)`.
    pub name: String,
    pub kind: SignalKind,
    pub values: Vec<f64>,
}

/// The result of one analysis: a sweep variable (time for `.tran`, the
/// source value for `.dc`, a single point for `.op`) and the signals.
#[derive(Clone, Debug)]
pub struct Waveforms {
    pub title: String,
    /// `tran`, `dc` or `op`.
    pub analysis: String,
    /// `time` for `.tran`, otherwise the swept source's name.
    pub sweep_name: String,
    pub sweep: Vec<f64>,
    pub signals: Vec<Signal>,
}

impl Waveforms {
    pub fn signal(&self, name: &str) -> Option<&Signal> {
        self.signals
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }
}
