//! Results on disk: CSV, ngspice-compatible raw files, JSON summaries and figures.
//!
//! - [`write_waveforms_csv`], [`write_spikes_csv`]: plain CSV, full `f64` precision.
//! - [`write_raw`], [`write_raw_plots`], [`read_raw`], [`read_raw_plots`]: ngspice raw
//!   files (ASCII or binary).
//! - [`RunSummary`]: the JSON summary of one `circsnn sim` run.
//! - [`neuron_figure`], [`line_figure`], [`panel_figure`]: SVG figures.
//! - [`lowpass_spike_train`]: a spike train through an exponential synapse.

mod csv;
mod error;
mod figure;
mod lowpass;
mod raw;
mod summary;

pub use csv::{write_spikes_csv, write_waveforms_csv};
pub use error::OutputError;
pub use figure::{heatmap_figure, line_figure, neuron_figure, panel_figure, Series};
pub use lowpass::{lowpass_spike_train, uniform_grid};
pub use raw::{read_raw, read_raw_plots, write_raw, write_raw_plots, write_raw_to, RawFormat};
pub use summary::RunSummary;

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
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    /// Lower-case, as written in CSV headers: `v(mem)`, `i(vrest)`, `x(m1)`.
    pub name: String,
    pub kind: SignalKind,
    pub values: Vec<f64>,
}

/// The result of one analysis: a sweep variable (time for `.tran`, the
/// source value for `.dc`, a single point for `.op`) and the signals.
///
/// For `.op`, writers ignore `sweep_name` and the sweep values (ngspice's
/// `Operating Point` plot has no scale vector); [`read_raw`] gives such a plot
/// an empty `sweep_name` and a sweep of `0.0`s.
#[derive(Clone, Debug, PartialEq)]
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
    /// The signal with this name, compared case-insensitively.
    pub fn signal(&self, name: &str) -> Option<&Signal> {
        self.signals
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// Writers call this first: every signal must have one value per sweep point.
    pub(crate) fn check_lengths(&self, path: &std::path::Path) -> Result<(), OutputError> {
        let expected = self.sweep.len();
        match self.signals.iter().find(|s| s.values.len() != expected) {
            Some(s) => Err(OutputError::LengthMismatch {
                path: path.to_path_buf(),
                signal: s.name.clone(),
                len: s.values.len(),
                expected,
            }),
            None => Ok(()),
        }
    }

    /// True for an operating point, whose single point has no sweep variable.
    pub(crate) fn is_op(&self) -> bool {
        self.analysis.eq_ignore_ascii_case("op")
    }
}
