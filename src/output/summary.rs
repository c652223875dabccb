//! The JSON summary of one `circsnn sim` run.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::OutputError;

/// Counters and rates of one analysis run, written as pretty JSON with the
/// fields in declaration order (so files diff cleanly).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunSummary {
    /// `tran`, `dc` or `op`.
    pub analysis: String,
    /// Start of the analysed interval, seconds of simulated time.
    pub t_start_s: f64,
    /// End of the analysed interval, seconds of simulated time.
    pub t_stop_s: f64,
    /// Points in the written waveforms.
    pub points: usize,
    pub accepted_steps: u64,
    pub rejected_steps: u64,
    pub newton_iterations: u64,
    /// Wall-clock time of the analysis, seconds.
    pub wall_s: f64,
    pub spike_count: u64,
    /// Spikes per simulated second over `[t_start_s, t_stop_s]`; `null` when
    /// the interval is empty (an operating point or a DC sweep).
    pub mean_rate_hz: Option<f64>,
}

impl RunSummary {
    /// Spikes per second over `[t_start_s, t_stop_s]`, or `None` for an empty
    /// or non-finite interval, where a rate means nothing.
    pub fn rate_hz(spike_count: u64, t_start_s: f64, t_stop_s: f64) -> Option<f64> {
        let span = t_stop_s - t_start_s;
        (span.is_finite() && span > 0.0).then(|| spike_count as f64 / span)
    }

    /// Writes the summary as pretty-printed JSON ending in a line break.
    pub fn write_json(&self, path: &Path) -> Result<(), OutputError> {
        let file = File::create(path).map_err(|e| OutputError::io(path, e))?;
        let mut out = BufWriter::new(file);
        serde_json::to_writer_pretty(&mut out, self).map_err(|source| OutputError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        out.write_all(b"\n")
            .and_then(|_| out.flush())
            .map_err(|e| OutputError::io(path, e))
    }

    /// Reads a summary written by [`RunSummary::write_json`].
    pub fn read_json(path: &Path) -> Result<Self, OutputError> {
        let text = std::fs::read_to_string(path).map_err(|e| OutputError::io(path, e))?;
        serde_json::from_str(&text).map_err(|source| OutputError::Json {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> RunSummary {
        RunSummary {
            analysis: "tran".into(),
            t_start_s: 0.0,
            t_stop_s: 0.5,
            points: 1234,
            accepted_steps: 1200,
            rejected_steps: 34,
            newton_iterations: 3901,
            wall_s: 0.125,
            spike_count: 21,
            mean_rate_hz: RunSummary::rate_hz(21, 0.0, 0.5),
        }
    }

    #[test]
    fn rate_is_spikes_per_simulated_second() {
        assert_eq!(RunSummary::rate_hz(21, 0.0, 0.5), Some(42.0));
        assert_eq!(RunSummary::rate_hz(3, 0.25, 1.0), Some(4.0));
        assert_eq!(RunSummary::rate_hz(0, 0.0, 2.0), Some(0.0));
        assert_eq!(RunSummary::rate_hz(5, 1.0, 1.0), None);
        assert_eq!(RunSummary::rate_hz(5, 0.0, f64::NAN), None);
    }

    #[test]
    fn json_has_fields_in_order_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        let s = summary();
        s.write_json(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"'))
            .filter_map(|l| l.split('"').next())
            .collect();
        assert_eq!(
            keys,
            [
                "analysis",
                "t_start_s",
                "t_stop_s",
                "points",
                "accepted_steps",
                "rejected_steps",
                "newton_iterations",
                "wall_s",
                "spike_count",
                "mean_rate_hz"
            ]
        );
        assert!(text.contains("\"mean_rate_hz\": 42.0"), "{text}");
        assert!(text.ends_with("}\n"));
        assert_eq!(RunSummary::read_json(&path).unwrap(), s);
    }

    #[test]
    fn empty_interval_writes_null_rate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("op.json");
        let s = RunSummary {
            analysis: "op".into(),
            t_stop_s: 0.0,
            spike_count: 0,
            mean_rate_hz: RunSummary::rate_hz(0, 0.0, 0.0),
            ..summary()
        };
        s.write_json(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"mean_rate_hz\": null"), "{text}");
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.json");
        std::fs::write(&path, "{\"analysis\": 3}").unwrap();
        let err = RunSummary::read_json(&path).unwrap_err().to_string();
        assert!(err.contains("broken.json"), "{err}");
        let err = summary()
            .write_json(&dir.path().join("missing").join("s.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing"), "{err}");
    }
}
