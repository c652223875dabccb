//! CSV result files: waveforms (one row per sweep point) and spike lists.
//!
//! Numbers are written in their shortest round-trip form (ryu: `2.5e-9`,
//! `-0.07`, `0.0`), so reading a file back with any correct float parser gives
//! the same `f64` bit for bit. ryu is several times faster than `{:e}`, which
//! matters for 100k-row waveform files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::{OutputError, Waveforms};

/// Writes `x` so that parsing the text gives back exactly `x`.
pub(crate) fn write_f64<W: Write>(out: &mut W, x: f64) -> std::io::Result<()> {
    if x.is_finite() {
        out.write_all(ryu::Buffer::new().format_finite(x).as_bytes())
    } else {
        write!(out, "{x}")
    }
}

/// Header of the sweep column: `time_s` for a transient, otherwise the swept
/// source's name; `None` for an operating point, which has no sweep column.
fn sweep_header(waveforms: &Waveforms) -> Option<String> {
    if waveforms.is_op() {
        None
    } else if waveforms.analysis.eq_ignore_ascii_case("tran")
        || waveforms.sweep_name.eq_ignore_ascii_case("time")
    {
        Some("time_s".to_string())
    } else if waveforms.sweep_name.is_empty() {
        Some("sweep".to_string())
    } else {
        Some(waveforms.sweep_name.to_ascii_lowercase())
    }
}

/// A CSV field, quoted only when it holds a comma, a quote or a line break.
fn csv_field(name: &str) -> String {
    if name.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_string()
    }
}

fn create(path: &Path) -> Result<BufWriter<File>, OutputError> {
    File::create(path)
        .map(BufWriter::new)
        .map_err(|e| OutputError::io(path, e))
}

/// Writes one row per sweep point: the sweep column (`time_s` for `.tran`, the
/// swept source's name such as `v1` for `.dc`, none for `.op`), then every
/// signal in order, headed by its name (`v(mem)`, `i(vrest)`, ...).
pub fn write_waveforms_csv(path: &Path, waveforms: &Waveforms) -> Result<(), OutputError> {
    waveforms.check_lengths(path)?;
    let mut out = create(path)?;
    write_waveforms_rows(&mut out, waveforms).map_err(|e| OutputError::io(path, e))
}

fn write_waveforms_rows<W: Write>(out: &mut W, waveforms: &Waveforms) -> std::io::Result<()> {
    let sweep = sweep_header(waveforms);
    let header: Vec<String> = sweep
        .iter()
        .cloned()
        .chain(waveforms.signals.iter().map(|s| csv_field(&s.name)))
        .collect();
    writeln!(out, "{}", header.join(","))?;
    for (row, &x) in waveforms.sweep.iter().enumerate() {
        let mut first = true;
        if sweep.is_some() {
            write_f64(out, x)?;
            first = false;
        }
        for signal in &waveforms.signals {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            write_f64(out, signal.values[row])?;
        }
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Writes spikes as `neuron,time_s` rows, in the order given.
pub fn write_spikes_csv(path: &Path, spikes: &[(usize, f64)]) -> Result<(), OutputError> {
    let mut out = create(path)?;
    write_spike_rows(&mut out, spikes).map_err(|e| OutputError::io(path, e))
}

fn write_spike_rows<W: Write>(out: &mut W, spikes: &[(usize, f64)]) -> std::io::Result<()> {
    out.write_all(b"neuron,time_s\n")?;
    for &(neuron, time) in spikes {
        write!(out, "{neuron},")?;
        write_f64(out, time)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Signal, SignalKind};

    fn tran() -> Waveforms {
        Waveforms {
            title: "rc".into(),
            analysis: "tran".into(),
            sweep_name: "time".into(),
            sweep: vec![0.0, 1e-9, 2.5e-6],
            signals: vec![
                Signal {
                    name: "v(mem)".into(),
                    kind: SignalKind::Voltage,
                    values: vec![-0.07, -0.069_999_999_999_999_99, 0.1 + 0.2],
                },
                Signal {
                    name: "i(vrest)".into(),
                    kind: SignalKind::Current,
                    values: vec![2e-9, f64::MIN_POSITIVE, -1.234_567_890_123_456_7e300],
                },
            ],
        }
    }

    fn parse_rows(text: &str) -> Vec<Vec<f64>> {
        text.lines()
            .skip(1)
            .map(|l| l.split(',').map(|f| f.parse::<f64>().unwrap()).collect())
            .collect()
    }

    #[test]
    fn waveforms_header_and_exact_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.csv");
        let w = tran();
        write_waveforms_csv(&path, &w).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next().unwrap(), "time_s,v(mem),i(vrest)");
        let rows = parse_rows(&text);
        assert_eq!(rows.len(), 3);
        for (k, row) in rows.iter().enumerate() {
            assert_eq!(row[0].to_bits(), w.sweep[k].to_bits());
            assert_eq!(row[1].to_bits(), w.signals[0].values[k].to_bits());
            assert_eq!(row[2].to_bits(), w.signals[1].values[k].to_bits());
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn dc_header_uses_sweep_name_and_op_has_no_sweep_column() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = tran();
        w.analysis = "dc".into();
        w.sweep_name = "V1".into();
        let path = dir.path().join("dc.csv");
        write_waveforms_csv(&path, &w).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next().unwrap(), "v1,v(mem),i(vrest)");

        let op = Waveforms {
            title: "op".into(),
            analysis: "op".into(),
            sweep_name: String::new(),
            sweep: vec![0.0],
            signals: vec![Signal {
                name: "v(out)".into(),
                kind: SignalKind::Voltage,
                values: vec![0.5],
            }],
        };
        let path = dir.path().join("op.csv");
        write_waveforms_csv(&path, &op).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "v(out)\n0.5\n");
    }

    #[test]
    fn shortest_repr_is_compact_and_exact() {
        let mut buf = Vec::new();
        for x in [0.0, 1e-9, 2.5e-9, -0.07, 1.0 / 3.0] {
            buf.clear();
            write_f64(&mut buf, x).unwrap();
            let text = String::from_utf8(buf.clone()).unwrap();
            assert_eq!(
                text.parse::<f64>().unwrap().to_bits(),
                x.to_bits(),
                "{text}"
            );
        }
        buf.clear();
        write_f64(&mut buf, 2.5e-9).unwrap();
        assert_eq!(buf, b"2.5e-9");
    }

    #[test]
    fn mismatched_lengths_are_an_error_naming_the_signal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        let mut w = tran();
        w.signals[1].values.pop();
        let err = write_waveforms_csv(&path, &w).unwrap_err().to_string();
        assert!(err.contains("i(vrest)") && err.contains("bad.csv"), "{err}");
    }

    #[test]
    fn spikes_csv_exact_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spikes.csv");
        write_spikes_csv(&path, &[(0, 1.5e-3), (12, 0.25)]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "neuron,time_s\n0,0.0015\n12,0.25\n"
        );
        write_spikes_csv(&path, &[]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "neuron,time_s\n");
    }

    #[test]
    fn unwritable_path_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no_such_dir").join("w.csv");
        let err = write_spikes_csv(&path, &[]).unwrap_err().to_string();
        assert!(err.contains("no_such_dir"), "{err}");
    }

    #[test]
    fn names_with_commas_are_quoted() {
        assert_eq!(csv_field("v(a,b)"), "\"v(a,b)\"");
        assert_eq!(csv_field("v(mem)"), "v(mem)");
    }
}
