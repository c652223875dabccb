//! ngspice-compatible raw files, ASCII and binary, as `ngspice -b -r` writes them.
//!
//! Layout (one plot; a file may hold several, one after another):
//!
//! ```text
//! Title: rc test
//! Date: Sat Nov 28 13:09:44  2026
//! Plotname: Transient Analysis          (or DC transfer characteristic, Operating Point)
//! Flags: real
//! No. Variables: 3
//! No. Points: 59
//! Variables:
//! \t0\ttime\ttime
//! \t1\tv(mem)\tvoltage
//! \t2\ti(vl)\tcurrent
//! Values:                               (ASCII: per point, its index then one value a line)
//! 0\t\t0e0
//! \t-5e-2
//! \t2e-9
//! ...
//! Binary:                               (binary: per point, every variable as a little-endian f64)
//! ```
//!
//! Names follow ngspice's batch output: `v(node)` for node voltages and
//! `i(source)` for branch currents. Device states get ngspice's `notype`. An
//! operating point has no scale variable, as in ngspice. A `.dc` sweep's scale
//! is named after the swept source (`v1`, typed `voltage`; `i1`, `current`),
//! where ngspice itself writes `v(v-sweep)`: every raw reader accepts either.
//! ASCII values use the shortest exact form, so both forms round-trip bit for bit.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::csv::write_f64;
use super::{OutputError, Signal, SignalKind, Waveforms};

/// Which of ngspice's two raw encodings to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawFormat {
    /// Text values (`Values:`), what `SPICE_ASCIIRAWFILE=1` gives in ngspice.
    Ascii,
    /// Little-endian `f64` values (`Binary:`), ngspice's default.
    Binary,
}

/// Writes `waveforms` as one plot of an ngspice raw file, dated now (UTC).
pub fn write_raw(path: &Path, waveforms: &Waveforms, format: RawFormat) -> Result<(), OutputError> {
    write_raw_plots(path, std::slice::from_ref(waveforms), format)
}

/// Writes several plots, one after another, into one raw file (as ngspice
/// does for several analyses or `.step` runs); [`read_raw_plots`] reads them
/// back in order.
pub fn write_raw_plots(
    path: &Path,
    plots: &[Waveforms],
    format: RawFormat,
) -> Result<(), OutputError> {
    for plot in plots {
        plot.check_lengths(path)?;
    }
    let file = File::create(path).map_err(|e| OutputError::io(path, e))?;
    let mut out = BufWriter::new(file);
    let date = ngspice_date(SystemTime::now());
    for plot in plots {
        write_raw_to(&mut out, plot, format, &date).map_err(|e| OutputError::io(path, e))?;
    }
    Ok(())
}

/// Writes one raw plot to any writer, with the given `Date:` text (so tests
/// and reproducible pipelines can fix it). Mismatched signal lengths give an
/// `InvalidInput` error.
pub fn write_raw_to<W: Write>(
    out: &mut W,
    waveforms: &Waveforms,
    format: RawFormat,
    date: &str,
) -> std::io::Result<()> {
    if let Some(bad) = waveforms
        .signals
        .iter()
        .find(|s| s.values.len() != waveforms.sweep.len())
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "signal `{}` has {} values but the sweep has {} points",
                bad.name,
                bad.values.len(),
                waveforms.sweep.len()
            ),
        ));
    }

    let mut variables: Vec<(&str, &str, &[f64])> = Vec::new();
    if !waveforms.is_op() {
        variables.push((
            &waveforms.sweep_name,
            scale_type(waveforms),
            &waveforms.sweep,
        ));
    }
    for s in &waveforms.signals {
        variables.push((&s.name, kind_type(s.kind), &s.values));
    }
    let points = waveforms.sweep.len();

    // A line break inside a header field would end the field early.
    let one_line = |s: &str| s.replace(['\n', '\r'], " ");
    writeln!(out, "Title: {}", one_line(&waveforms.title))?;
    writeln!(out, "Date: {}", one_line(date))?;
    writeln!(out, "Plotname: {}", plot_name(&waveforms.analysis))?;
    writeln!(out, "Flags: real")?;
    writeln!(out, "No. Variables: {}", variables.len())?;
    writeln!(out, "No. Points: {points}")?;
    writeln!(out, "Variables:")?;
    for (index, (name, type_name, _)) in variables.iter().enumerate() {
        writeln!(out, "\t{index}\t{}\t{type_name}", raw_name(name))?;
    }
    match format {
        RawFormat::Ascii => {
            writeln!(out, "Values:")?;
            for point in 0..points {
                write!(out, "{point}\t")?;
                for (_, _, values) in &variables {
                    out.write_all(b"\t")?;
                    write_f64(out, values[point])?;
                    out.write_all(b"\n")?;
                }
            }
        }
        RawFormat::Binary => {
            writeln!(out, "Binary:")?;
            for point in 0..points {
                for (_, _, values) in &variables {
                    out.write_all(&values[point].to_le_bytes())?;
                }
            }
        }
    }
    out.flush()
}

/// Reads the first plot of an ngspice raw file (ASCII or binary, real data).
pub fn read_raw(path: &Path) -> Result<Waveforms, OutputError> {
    read_raw_plots(path)?
        .into_iter()
        .next()
        .ok_or_else(|| OutputError::RawFormat {
            path: path.to_path_buf(),
            line: 1,
            message: "no plot in file".into(),
        })
}

/// Reads every plot of an ngspice raw file (ngspice appends one plot per
/// analysis). `Plotname` maps back to `analysis` `tran`, `dc` or `op`; other
/// real-valued plots keep their plot name, lower-cased. Complex plots (AC) are
/// refused.
pub fn read_raw_plots(path: &Path) -> Result<Vec<Waveforms>, OutputError> {
    let data = std::fs::read(path).map_err(|e| OutputError::io(path, e))?;
    parse_raw(&data).map_err(|(line, message)| OutputError::RawFormat {
        path: path.to_path_buf(),
        line,
        message,
    })
}

fn plot_name(analysis: &str) -> String {
    match analysis.to_ascii_lowercase().as_str() {
        "tran" => "Transient Analysis".into(),
        "dc" => "DC transfer characteristic".into(),
        "op" => "Operating Point".into(),
        other => other.into(),
    }
}

fn analysis_of(plot_name: &str) -> String {
    let lower = plot_name.to_ascii_lowercase();
    if lower.contains("transient") {
        "tran".into()
    } else if lower.contains("operating point") {
        "op".into()
    } else if lower.starts_with("dc") || lower.contains("transfer characteristic") {
        "dc".into()
    } else {
        lower
    }
}

fn kind_type(kind: SignalKind) -> &'static str {
    match kind {
        SignalKind::Voltage => "voltage",
        SignalKind::Current => "current",
        SignalKind::State => "notype",
    }
}

fn kind_of(type_name: &str) -> SignalKind {
    match type_name.to_ascii_lowercase().as_str() {
        "voltage" => SignalKind::Voltage,
        "current" => SignalKind::Current,
        _ => SignalKind::State,
    }
}

/// The raw type of the scale: `time`, or for a `.dc` sweep what the swept
/// source drives (SPICE names voltage sources `v…` and current sources `i…`).
fn scale_type(waveforms: &Waveforms) -> &'static str {
    if waveforms.analysis.eq_ignore_ascii_case("tran") {
        return "time";
    }
    let name = waveforms.sweep_name.to_ascii_lowercase();
    if name == "time" {
        "time"
    } else if name == "temp" {
        "temp-sweep"
    } else if name.starts_with('v') {
        "voltage"
    } else if name.starts_with('i') {
        "current"
    } else if name.starts_with('r') {
        "res-sweep"
    } else {
        "notype"
    }
}

/// Variable names are whitespace-delimited in the header; an empty name or
/// one with blanks would shift the columns.
fn raw_name(name: &str) -> String {
    if name.is_empty() {
        "sweep".into()
    } else {
        name.split_whitespace().collect::<Vec<_>>().join("_")
    }
}

/// `Sat Nov 28 13:09:44  2026`, ngspice's `Date:` layout, in UTC.
fn ngspice_date(now: SystemTime) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:2} {:02}:{:02}:{:02}  {}",
        WEEKDAYS[days.rem_euclid(7) as usize], // 1970-01-01 was a Thursday
        MONTHS[(month - 1) as usize],
        day,
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        year
    )
}

/// Proleptic Gregorian (year, month 1–12, day 1–31) of a day count since
/// 1970-01-01, counting in 400-year eras that start on 1 March.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Error of the parser: 1-based line and message.
type ParseError = (usize, String);

/// A position in the file that knows its line number.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Cursor<'a> {
    /// Skips blank lines; true when only whitespace is left.
    fn skip_blank(&mut self) -> bool {
        while self.pos < self.data.len() && self.data[self.pos].is_ascii_whitespace() {
            if self.data[self.pos] == b'\n' {
                self.line += 1;
            }
            self.pos += 1;
        }
        self.pos >= self.data.len()
    }

    /// The next line without its line break, and that line's number.
    fn read_line(&mut self) -> Option<(String, usize)> {
        if self.pos >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let text = String::from_utf8_lossy(&rest[..end])
            .trim_end_matches('\r')
            .to_string();
        let number = self.line;
        self.pos += (end + 1).min(rest.len());
        self.line += 1;
        Some((text, number))
    }

    /// The next whitespace-delimited token and its line number.
    fn token(&mut self) -> Option<(&'a str, usize)> {
        if self.skip_blank() {
            return None;
        }
        let start = self.pos;
        while self.pos < self.data.len() && !self.data[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.data[start..self.pos]).unwrap_or("\u{fffd}");
        Some((text, self.line))
    }
}

fn parse_raw(data: &[u8]) -> Result<Vec<Waveforms>, ParseError> {
    let mut cursor = Cursor {
        data,
        pos: 0,
        line: 1,
    };
    let mut plots = Vec::new();
    while !cursor.skip_blank() {
        plots.push(parse_plot(&mut cursor)?);
    }
    Ok(plots)
}

fn parse_count(value: &str, field: &str, line: usize) -> Result<usize, ParseError> {
    value.trim().parse().map_err(|_| {
        (
            line,
            format!("`{field}` is not a count: `{}`", value.trim()),
        )
    })
}

fn parse_plot(cursor: &mut Cursor) -> Result<Waveforms, ParseError> {
    let first_line = cursor.line;
    let mut title = String::new();
    let mut plot_name: Option<String> = None;
    let mut n_vars: Option<usize> = None;
    let mut n_points: Option<usize> = None;
    let mut variables: Vec<(String, String)> = Vec::new();

    let (binary, data_line) = loop {
        let Some((text, line)) = cursor.read_line() else {
            return Err((
                cursor.line,
                format!("plot starting at line {first_line} has no `Values:` or `Binary:` section"),
            ));
        };
        let Some((key, value)) = text.split_once(':') else {
            if text.trim().is_empty() {
                continue;
            }
            return Err((
                line,
                format!("expected a `Key: value` header line, found `{text}`"),
            ));
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "title" => title = value.trim().to_string(),
            "plotname" => plot_name = Some(value.trim().to_string()),
            "flags"
                if value
                    .split_whitespace()
                    .any(|f| f.eq_ignore_ascii_case("complex")) =>
            {
                return Err((line, "complex data (AC analysis) is not supported".into()));
            }
            "no. variables" => n_vars = Some(parse_count(value, "No. Variables", line)?),
            "no. points" => n_points = Some(parse_count(value, "No. Points", line)?),
            "variables" => {
                let count = n_vars.ok_or_else(|| {
                    (
                        line,
                        "`Variables:` comes before `No. Variables:`".to_string(),
                    )
                })?;
                // Some writers put the first variable on the `Variables:` line itself.
                let mut pending = Some(value.trim().to_string()).filter(|v| !v.is_empty());
                for index in 0..count {
                    let (spec, spec_line) = match pending.take() {
                        Some(v) => (v, line),
                        None => cursor.read_line().ok_or_else(|| {
                            (
                                cursor.line,
                                format!("file ends inside `Variables:` (variable {index})"),
                            )
                        })?,
                    };
                    let fields: Vec<&str> = spec.split_whitespace().collect();
                    if fields.len() < 3 {
                        return Err((
                            spec_line,
                            format!("expected `index name type`, found `{}`", spec.trim()),
                        ));
                    }
                    if fields[0].parse::<usize>() != Ok(index) {
                        return Err((
                            spec_line,
                            format!("expected variable index {index}, found `{}`", fields[0]),
                        ));
                    }
                    variables.push((fields[1].to_string(), fields[2].to_string()));
                }
            }
            "values" => break (false, line),
            "binary" => break (true, line),
            // Date:, Command:, Option:, Dimensions:, Offset: carry nothing we keep.
            _ => {}
        }
    };

    let missing = |what: &str| (data_line, format!("header has no `{what}` line"));
    let plot_name = plot_name.ok_or_else(|| missing("Plotname:"))?;
    let n_vars = n_vars.ok_or_else(|| missing("No. Variables:"))?;
    let n_points = n_points.ok_or_else(|| missing("No. Points:"))?;
    if variables.len() != n_vars {
        return Err(missing("Variables:"));
    }

    // Every value takes at least one byte, so the file bounds the capacity
    // even when the header claims absurdly many points.
    let capacity = n_points.min(cursor.data.len() - cursor.pos);
    let mut columns = vec![Vec::with_capacity(capacity); n_vars];
    if binary {
        let need = n_points
            .checked_mul(n_vars)
            .and_then(|n| n.checked_mul(8))
            .ok_or_else(|| (data_line, "point and variable counts overflow".to_string()))?;
        let rest = &cursor.data[cursor.pos..];
        if rest.len() < need {
            return Err((
                data_line,
                format!(
                    "binary data truncated: {n_points} points of {n_vars} variables need {need} bytes, found {}",
                    rest.len()
                ),
            ));
        }
        for (k, chunk) in rest[..need].chunks_exact(8).enumerate() {
            let bytes: [u8; 8] = chunk.try_into().expect("chunks_exact gives 8 bytes");
            columns[k % n_vars].push(f64::from_le_bytes(bytes));
        }
        cursor.line += rest[..need].iter().filter(|&&b| b == b'\n').count();
        cursor.pos += need;
    } else {
        for point in 0..n_points {
            let (index, line) = cursor
                .token()
                .ok_or_else(|| (cursor.line, format!("file ends before point {point}")))?;
            if index.parse::<usize>() != Ok(point) {
                return Err((
                    line,
                    format!("expected point index {point}, found `{index}`"),
                ));
            }
            for (var, column) in columns.iter_mut().enumerate() {
                let (text, line) = cursor.token().ok_or_else(|| {
                    (
                        cursor.line,
                        format!("file ends inside point {point} (variable {var})"),
                    )
                })?;
                let value = text.parse::<f64>().map_err(|_| {
                    (
                        line,
                        format!("`{text}` is not a number (point {point}, variable {var})"),
                    )
                })?;
                column.push(value);
            }
        }
    }

    let analysis = analysis_of(&plot_name);
    let mut named = variables.into_iter().zip(columns);
    let (sweep_name, sweep) = if analysis == "op" {
        (String::new(), vec![0.0; n_points])
    } else {
        match named.next() {
            Some(((name, _), values)) => (name, values),
            None => return Err((data_line, "a swept plot needs at least one variable".into())),
        }
    };
    let signals = named
        .map(|((name, type_name), values)| Signal {
            name,
            kind: kind_of(&type_name),
            values,
        })
        .collect();
    Ok(Waveforms {
        title,
        analysis,
        sweep_name,
        sweep,
        signals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(analysis: &str) -> Waveforms {
        let n = 7;
        let sweep: Vec<f64> = (0..n).map(|k| k as f64 * 1.3e-6 + 1e-12).collect();
        let signal = |name: &str, kind, f: fn(f64) -> f64| Signal {
            name: name.into(),
            kind,
            values: sweep.iter().map(|&t| f(t)).collect(),
        };
        Waveforms {
            title: "lif neuron".into(),
            analysis: analysis.into(),
            sweep_name: if analysis == "tran" { "time" } else { "v1" }.into(),
            signals: vec![
                signal("v(mem)", SignalKind::Voltage, |t| {
                    -0.07 + (t * 1e5).sin() / 3.0
                }),
                signal("i(vrest)", SignalKind::Current, |t| {
                    2e-9 * (-t / 1e-6).exp()
                }),
                signal("x(m1)", SignalKind::State, |t| (t * 1e6).fract()),
            ],
            sweep,
        }
    }

    fn round_trip(w: &Waveforms, format: RawFormat) -> Waveforms {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.raw");
        write_raw(&path, w, format).unwrap();
        read_raw(&path).unwrap()
    }

    #[test]
    fn ascii_and_binary_round_trip_bit_for_bit() {
        for analysis in ["tran", "dc"] {
            let w = sample(analysis);
            for format in [RawFormat::Ascii, RawFormat::Binary] {
                let back = round_trip(&w, format);
                assert_eq!(back, w, "{analysis} {format:?}");
                // PartialEq on f64 would accept -0.0 == 0.0; compare bits too.
                for (a, b) in back.signals.iter().zip(&w.signals) {
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&a.values), bits(&b.values));
                }
            }
        }
    }

    #[test]
    fn op_has_no_scale_variable_and_round_trips() {
        let w = Waveforms {
            title: "divider".into(),
            analysis: "op".into(),
            sweep_name: String::new(),
            sweep: vec![0.0],
            signals: vec![
                Signal {
                    name: "v(out)".into(),
                    kind: SignalKind::Voltage,
                    values: vec![0.5],
                },
                Signal {
                    name: "i(v1)".into(),
                    kind: SignalKind::Current,
                    values: vec![-5e-4],
                },
            ],
        };
        let mut text = Vec::new();
        write_raw_to(&mut text, &w, RawFormat::Ascii, "today").unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(
            text,
            "Title: divider\nDate: today\nPlotname: Operating Point\nFlags: real\n\
             No. Variables: 2\nNo. Points: 1\nVariables:\n\t0\tv(out)\tvoltage\n\
             \t1\ti(v1)\tcurrent\nValues:\n0\t\t0.5\n\t-0.0005\n"
        );
        for format in [RawFormat::Ascii, RawFormat::Binary] {
            assert_eq!(round_trip(&w, format), w);
        }
    }

    #[test]
    fn several_plots_round_trip_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steps.raw");
        let mut second = sample("tran");
        second.title = "second step".into();
        second.signals[0].values.iter_mut().for_each(|v| *v *= 2.0);
        let plots = [sample("dc"), sample("tran"), second];
        for format in [RawFormat::Ascii, RawFormat::Binary] {
            write_raw_plots(&path, &plots, format).unwrap();
            assert_eq!(read_raw_plots(&path).unwrap(), plots, "{format:?}");
            assert_eq!(read_raw(&path).unwrap(), plots[0]);
        }
    }

    #[test]
    fn exact_ascii_header_for_transient() {
        let w = sample("tran");
        let mut text = Vec::new();
        write_raw_to(&mut text, &w, RawFormat::Ascii, "Sat Nov 28 13:09:44  2026").unwrap();
        let text = String::from_utf8(text).unwrap();
        let header: Vec<&str> = text.lines().take(12).collect();
        assert_eq!(
            header,
            [
                "Title: lif neuron",
                "Date: Sat Nov 28 13:09:44  2026",
                "Plotname: Transient Analysis",
                "Flags: real",
                "No. Variables: 4",
                "No. Points: 7",
                "Variables:",
                "\t0\ttime\ttime",
                "\t1\tv(mem)\tvoltage",
                "\t2\ti(vrest)\tcurrent",
                "\t3\tx(m1)\tnotype",
                "Values:",
            ]
        );
        assert!(text.lines().nth(12).unwrap().starts_with("0\t\t1e-12"));
    }

    #[test]
    fn binary_layout_is_point_major_little_endian() {
        let w = sample("dc");
        let mut bytes = Vec::new();
        write_raw_to(&mut bytes, &w, RawFormat::Binary, "d").unwrap();
        let start = bytes.windows(8).position(|b| b == b"Binary:\n").unwrap() + 8;
        let data = &bytes[start..];
        assert_eq!(data.len(), 7 * 4 * 8);
        let at = |k: usize| f64::from_le_bytes(data[8 * k..8 * k + 8].try_into().unwrap());
        // Point 2: scale, v(mem), i(vrest), x(m1).
        assert_eq!(at(8), w.sweep[2]);
        assert_eq!(at(9), w.signals[0].values[2]);
        assert_eq!(at(11), w.signals[2].values[2]);
        let header = String::from_utf8_lossy(&bytes[..start]);
        assert!(header.contains("\t0\tv1\tvoltage\n"), "{header}");
        assert!(header.contains("Plotname: DC transfer characteristic\n"));
    }

    /// Written by ngspice-39 (`SPICE_ASCIIRAWFILE=1 ngspice -b -r dc.raw`) for
    /// V1 in→0 swept 0..1 V by 0.5 V into a 1 kΩ/1 kΩ divider.
    const NGSPICE_DC_ASCII: &str = "Title: dc test\nDate: Sat Nov 28 13:09:44  2026\n\
        Plotname: DC transfer characteristic\nFlags: real\nNo. Variables: 4\nNo. Points: 3       \n\
        Variables:\n\t0\tv(v-sweep)\tvoltage\n\t1\tv(in)\tvoltage\n\t2\tv(out)\tvoltage\n\
        \t3\ti(v1)\tcurrent\nValues:\n0\t\t0.000000000000000e+00\n\t0.000000000000000e+00\n\
        \t0.000000000000000e+00\n\t0.000000000000000e+00\n1\t\t5.000000000000000e-01\n\
        \t5.000000000000000e-01\n\t2.500000000000000e-01\n\t-2.500000000000000e-04\n\
        2\t\t1.000000000000000e+00\n\t1.000000000000000e+00\n\t5.000000000000000e-01\n\
        \t-5.000000000000000e-04\n";

    #[test]
    fn reads_ngspice_ascii_output() {
        let plots = parse_raw(NGSPICE_DC_ASCII.as_bytes()).unwrap();
        assert_eq!(plots.len(), 1);
        let w = &plots[0];
        assert_eq!(w.analysis, "dc");
        assert_eq!(w.title, "dc test");
        assert_eq!(w.sweep_name, "v(v-sweep)");
        assert_eq!(w.sweep, [0.0, 0.5, 1.0]);
        assert_eq!(w.signal("v(out)").unwrap().values, [0.0, 0.25, 0.5]);
        let i = w.signal("i(v1)").unwrap();
        assert_eq!(i.kind, SignalKind::Current);
        assert_eq!(i.values, [0.0, -2.5e-4, -5e-4]);
    }

    #[test]
    fn reads_ngspice_binary_output() {
        // ngspice-39 `-b -r` output of the divider above, binary form.
        let dc = &parse_raw(include_bytes!("testdata/ngspice39_dc_binary.raw")).unwrap()[0];
        let ascii = &parse_raw(NGSPICE_DC_ASCII.as_bytes()).unwrap()[0];
        assert_eq!(dc.signals, ascii.signals);
        assert_eq!(dc.sweep, ascii.sweep);

        // Iin = 2 nA into 0.2 nF || 10 MΩ to -70 mV, 20 µs of transient: the
        // membrane sits at its operating point, -70 mV + 2 nA · 10 MΩ = -50 mV.
        let tran = &parse_raw(include_bytes!("testdata/ngspice39_rc_tran_binary.raw")).unwrap()[0];
        assert_eq!(tran.analysis, "tran");
        assert_eq!(tran.sweep_name, "time");
        assert_eq!(tran.sweep.len(), 59);
        assert_eq!(tran.sweep[0], 0.0);
        assert!((tran.sweep[58] - 20e-6).abs() < 1e-18);
        assert!(tran.sweep.windows(2).all(|t| t[0] < t[1]));
        let names: Vec<&str> = tran.signals.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["v(mem)", "v(rest)", "i(vl)"]);
        for (name, expected) in [("v(mem)", -0.05), ("v(rest)", -0.07), ("i(vl)", 2e-9)] {
            let values = &tran.signal(name).unwrap().values;
            assert!(
                values
                    .iter()
                    .all(|v| (v - expected).abs() < 1e-12 * expected.abs()),
                "{name}: {values:?}"
            );
        }
    }

    #[test]
    fn reads_ngspice_binary_output_with_two_plots() {
        // ngspice's binary layout, built by hand: an op plot then a tran plot,
        // with the padded `No. Points:` and CRLF line ends of some writers.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(
            b"Title: two\r\nDate: x\r\nPlotname: Operating Point\r\nFlags: real\r\n\
              No. Variables: 1\r\nNo. Points: 1      \r\nVariables:\r\n\t0\tv(a)\tvoltage\r\nBinary:\r\n",
        );
        bytes.extend_from_slice(&1.5f64.to_le_bytes());
        bytes.extend_from_slice(
            b"Title: two\nDate: x\nPlotname: Transient Analysis\nFlags: real\n\
              No. Variables: 2\nNo. Points: 2\nCommand: version 39\nVariables:\n\
              \t0\ttime\ttime\n\t1\tv(a)\tvoltage\nBinary:\n",
        );
        for x in [0.0f64, 1.5, 1e-6, 10.0 / 7.0] {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        let plots = parse_raw(&bytes).unwrap();
        assert_eq!(plots.len(), 2);
        assert_eq!(plots[0].analysis, "op");
        assert_eq!(plots[0].signals[0].values, [1.5]);
        assert_eq!(plots[1].analysis, "tran");
        assert_eq!(plots[1].sweep, [0.0, 1e-6]);
        assert_eq!(plots[1].signals[0].values, [1.5, 10.0 / 7.0]);
    }

    #[test]
    fn malformed_files_give_located_errors() {
        let cases: [(&[u8], usize, &str); 6] = [
            (
                b"Title: t\nPlotname: AC Analysis\nFlags: complex\n",
                3,
                "complex",
            ),
            (
                b"Title: t\nPlotname: Transient Analysis\nNo. Variables: 1\nNo. Points: 2\n\
                  Variables:\n\t0\ttime\ttime\nValues:\n0\t0\n1\tbad\n",
                9,
                "`bad` is not a number",
            ),
            (
                b"Plotname: Transient Analysis\nNo. Variables: 1\nNo. Points: 2\n\
                  Variables:\n\t0\ttime\ttime\nBinary:\n\0\0\0",
                6,
                "truncated",
            ),
            (b"Plotname: x\nNo. Variables: two\n", 2, "not a count"),
            (
                b"Plotname: Transient Analysis\nNo. Variables: 1\nNo. Points: 999999999999999\n\
                  Variables:\n\t0\ttime\ttime\nValues:\n0\t1\n",
                8,
                "file ends before point 1",
            ),
            (b"garbage here\n", 1, "Key: value"),
        ];
        for (bytes, line, needle) in cases {
            let (at, message) = parse_raw(bytes).unwrap_err();
            assert_eq!(at, line, "{message}");
            assert!(message.contains(needle), "{message}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.raw");
        std::fs::write(&path, b"Title: t\n").unwrap();
        let err = read_raw(&path).unwrap_err().to_string();
        assert!(
            err.contains("bad.raw") && err.contains("no `Values:`"),
            "{err}"
        );
        std::fs::write(&path, b"").unwrap();
        assert!(read_raw(&path).unwrap_err().to_string().contains("no plot"));
    }

    #[test]
    fn mismatched_lengths_are_refused() {
        let mut w = sample("tran");
        w.signals[2].values.truncate(3);
        let dir = tempfile::tempdir().unwrap();
        let err = write_raw(&dir.path().join("x.raw"), &w, RawFormat::Binary)
            .unwrap_err()
            .to_string();
        assert!(err.contains("x(m1)"), "{err}");
        assert!(write_raw_to(&mut Vec::new(), &w, RawFormat::Ascii, "d").is_err());
    }

    #[test]
    fn date_matches_ngspice_layout() {
        let at = |secs: u64| ngspice_date(UNIX_EPOCH + std::time::Duration::from_secs(secs));
        assert_eq!(at(0), "Thu Jan  1 00:00:00  1970");
        // 2026-11-28 13:09:44 UTC, the date ngspice wrote in the fixture above.
        assert_eq!(at(1_795_871_384), "Sat Nov 28 13:09:44  2026");
        // Leap day.
        assert_eq!(at(951_782_400), "Tue Feb 29 00:00:00  2000");
    }
}
