//! SVG figures drawn with plotters (SVG only: no system font libraries).
//!
//! Long waveforms are thinned before drawing: each pixel column keeps its
//! first, lowest, highest and last point, so spikes and sawtooth extremes
//! stay visible while a 1 M-point trace becomes a few thousand path points.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::lowpass::{lowpass_spike_train, uniform_grid};
use super::{OutputError, Waveforms};

const WIDTH: u32 = 1000;
const NEURON_HEIGHT: u32 = 940;
const LINE_HEIGHT: u32 = 600;
/// Width of the y tick labels and description; the same in every panel so
/// that the panels' time axes line up.
const Y_LABEL_AREA: u32 = 90;
const X_LABEL_AREA: u32 = 50;
const MARGIN: u32 = 12;
/// Pixel columns of a plot area, for thinning.
const PLOT_COLUMNS: usize = (WIDTH - Y_LABEL_AREA - 2 * MARGIN) as usize;
const FONT: &str = "sans-serif";
/// Raster ticks get their own colour so they are told apart from axis lines.
const SPIKE_COLOR: RGBColor = RGBColor(20, 20, 120);

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws the four-panel neuron figure (the layout of the thesis figures) into
/// the SVG file `path`, all panels sharing one time axis:
///
/// 1. the input current `input` (a signal name such as `i(iin)`), in nA, or a
///    note when `input` is `None`;
/// 2. the membrane voltage `membrane` (such as `v(mem)`), in mV;
/// 3. a raster with one tick per spike time in `spikes` (seconds);
/// 4. the spikes through an exponential synapse of time constant
///    `filter_tau_s` (see [`lowpass_spike_train`]), in Hz.
///
/// The time axis spans `waveforms.sweep` and is labelled in s, ms or µs to
/// suit its length. Errors name `path`: a signal that is missing, a
/// `filter_tau_s` that is not positive, or a failed write.
pub fn neuron_figure(
    path: &Path,
    waveforms: &Waveforms,
    input: Option<&str>,
    membrane: &str,
    spikes: &[f64],
    filter_tau_s: f64,
) -> Result<(), OutputError> {
    if !(filter_tau_s.is_finite() && filter_tau_s > 0.0) {
        return Err(OutputError::InvalidFigureInput {
            path: path.to_path_buf(),
            message: format!("filter time constant must be positive, got {filter_tau_s} s"),
        });
    }
    waveforms.check_lengths(path)?;
    let find = |name: &str| {
        waveforms
            .signal(name)
            .ok_or_else(|| OutputError::MissingSignal {
                path: path.to_path_buf(),
                signal: name.to_string(),
                available: waveforms
                    .signals
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    };
    let membrane_signal = find(membrane)?;
    let input_signal = input.map(find).transpose()?;

    let (t0, t1) = match finite_min_max(waveforms.sweep.iter().copied()) {
        Some((lo, hi)) if hi > lo => (lo, hi),
        Some((lo, _)) => (lo, lo + 1.0),
        None => (0.0, 1.0),
    };
    let unit = TimeUnit::for_span(t1 - t0);
    let times: Vec<f64> = waveforms.sweep.iter().map(|&t| t * unit.scale).collect();
    let x_range = t0 * unit.scale..t1 * unit.scale;

    // The filter trace is sampled at 50 points per tau (a peak is then missed
    // by at most 2 %), then thinned for drawing.
    let filter_points =
        ((50.0 * (t1 - t0) / filter_tau_s).ceil() as usize).clamp(4 * PLOT_COLUMNS, 1_000_000);
    let filter_times: Vec<f64> = uniform_grid(t0, t1, filter_points)
        .into_iter()
        .map(|t| t * unit.scale)
        .collect();
    let filtered = lowpass_spike_train(spikes, filter_tau_s, t0, t1, filter_points);

    let mut visible_spikes: Vec<f64> = spikes
        .iter()
        .copied()
        .filter(|t| t.is_finite() && (t0..=t1).contains(t))
        .map(|t| t * unit.scale)
        .collect();
    visible_spikes.sort_by(f64::total_cmp);

    let title = if waveforms.title.trim().is_empty() {
        "Neuron response".to_string()
    } else {
        waveforms.title.trim().to_string()
    };
    let time_label = format!("Time ({})", unit.name);

    write_svg(path, (WIDTH, NEURON_HEIGHT), |root| {
        let root = root.titled(&title, (FONT, 24))?;
        let height = root.dim_in_pixel().1 as i32;
        let panel = (height - X_LABEL_AREA as i32) / 4;
        let areas = root.split_by_breakpoints([] as [i32; 0], [panel, 2 * panel, 3 * panel]);

        let input_points = input_signal.map(|s| {
            let nano: Vec<f64> = s.values.iter().map(|v| v * 1e9).collect();
            min_max_decimate(&times, &nano, x_range.start, x_range.end, PLOT_COLUMNS)
        });
        let input_desc = match input {
            Some(name) => format!("Input {name} (nA)"),
            None => "Input (nA)".to_string(),
        };
        match &input_points {
            Some(points) => {
                line_panel(&areas[0], &x_range, None, &input_desc, points, &BLUE, false)?
            }
            None => note_panel(
                &areas[0],
                &x_range,
                &input_desc,
                "no input current recorded",
            )?,
        }

        let milli: Vec<f64> = membrane_signal.values.iter().map(|v| v * 1e3).collect();
        let membrane_points =
            min_max_decimate(&times, &milli, x_range.start, x_range.end, PLOT_COLUMNS);
        let membrane_desc = format!("Membrane {membrane} (mV)");
        line_panel(
            &areas[1],
            &x_range,
            None,
            &membrane_desc,
            &membrane_points,
            &RED,
            false,
        )?;

        raster_panel(&areas[2], &x_range, &visible_spikes)?;

        let filter_points = min_max_decimate(
            &filter_times,
            &filtered,
            x_range.start,
            x_range.end,
            PLOT_COLUMNS,
        );
        let filter_desc = "Filtered output (Hz)";
        line_panel(
            &areas[3],
            &x_range,
            Some(&time_label),
            filter_desc,
            &filter_points,
            &BLACK,
            true,
        )?;
        Ok(())
    })
}

/// One labelled curve: `(label, x, y)`.
pub type Series<'a> = (&'a str, &'a [f64], &'a [f64]);

/// Draws labelled curves `(label, x, y)` on one pair of axes into the SVG file
/// `path`, with a legend when any label is non-empty. For f–I curves,
/// parameter sweeps and the like; curves of up to 60 points also get markers.
/// Each curve's `x` and `y` must have the same length; non-finite points are
/// skipped, and no curves or no finite points draw empty axes with a note.
pub fn line_figure(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<(), OutputError> {
    panel_figure(path, title, x_label, &[(y_label, series)])
}

/// [`line_figure`] with several panels stacked over one x axis label, each
/// `(y label, curves)` with its own axes and legend: for traces of the same
/// run seen two ways (a classifier's unfiltered and filtered output).
pub fn panel_figure(
    path: &Path,
    title: &str,
    x_label: &str,
    panels: &[(&str, &[Series])],
) -> Result<(), OutputError> {
    for (label, x, y) in panels.iter().flat_map(|(_, s)| s.iter()) {
        if x.len() != y.len() {
            return Err(OutputError::InvalidFigureInput {
                path: path.to_path_buf(),
                message: format!(
                    "series `{label}` has {} x values but {} y values",
                    x.len(),
                    y.len()
                ),
            });
        }
    }
    let count = panels.len().max(1);
    let height = if count == 1 {
        LINE_HEIGHT
    } else {
        LINE_HEIGHT * 3 / 4 * count as u32
    };
    write_svg(path, (WIDTH, height), |root| {
        let root = root.titled(title, (FONT, 24))?;
        for (area, (y_label, series)) in root.split_evenly((count, 1)).iter().zip(panels) {
            draw_lines(area, x_label, y_label, series)?;
        }
        Ok(())
    })
}

/// One panel of [`panel_figure`].
fn draw_lines(
    area: &DrawingArea<SVGBackend, Shift>,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> DrawResult {
    let finite_points = || {
        series.iter().flat_map(|(_, x, y)| {
            x.iter()
                .zip(y.iter())
                .filter(|(a, b)| a.is_finite() && b.is_finite())
        })
    };
    let x_range = padded_range(finite_points().map(|(x, _)| *x), 0.0);
    let y_range = padded_range(finite_points().map(|(_, y)| *y), 0.05);
    let has_data = finite_points().next().is_some();
    let mut chart = ChartBuilder::on(area)
        .margin(MARGIN)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(x_range.clone(), y_range.clone())?;
    let x_ticks = tick_formatter(&x_range);
    let y_ticks = tick_formatter(&y_range);
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&x_ticks)
        .y_label_formatter(&y_ticks)
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 13))
        .draw()?;
    let mut any_label = false;
    for (index, (label, x, y)) in series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        let points = min_max_decimate(x, y, x_range.start, x_range.end, PLOT_COLUMNS);
        let drawn = chart.draw_series(LineSeries::new(
            points.iter().copied(),
            color.stroke_width(2),
        ))?;
        if !label.is_empty() {
            any_label = true;
            drawn.label(*label).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
        if points.len() <= 60 {
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
    }
    if !has_data {
        draw_note(&chart, &x_range, &y_range, "no data")?;
    }
    if any_label {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()?;
    }
    Ok(())
}

/// The unit of the shared time axis.
struct TimeUnit {
    name: &'static str,
    /// Seconds to this unit.
    scale: f64,
}

impl TimeUnit {
    fn for_span(span_s: f64) -> Self {
        let (name, scale) = if span_s >= 1.0 {
            ("s", 1.0)
        } else if span_s >= 1e-3 {
            ("ms", 1e3)
        } else if span_s >= 1e-6 {
            ("µs", 1e6)
        } else {
            ("ns", 1e9)
        };
        TimeUnit { name, scale }
    }
}

/// Renders into a string first, then writes `path`; a failed drawing or
/// write names the path.
fn write_svg(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> DrawResult,
) -> Result<(), OutputError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|_| draw(&root).map_err(|e| e.to_string()))
            .and_then(|_| root.present().map_err(|e| e.to_string()));
        drawn.map_err(|message| OutputError::Drawing {
            path: path.to_path_buf(),
            message,
        })?;
    }
    std::fs::write(path, svg).map_err(|e| OutputError::io(path, e))
}

/// Tick labels for an axis spanning `range`: plain decimals with no trailing
/// zeros for magnitudes from 1e-3 to 1e5 (`-55`, `0.25`), otherwise short
/// scientific notation (`2.5e-9`); float noise around zero prints as `0`.
fn tick_formatter(range: &std::ops::Range<f64>) -> impl Fn(&f64) -> String {
    let span = (range.end - range.start).abs();
    let scale = range.start.abs().max(range.end.abs());
    move |&v: &f64| {
        if !v.is_finite() {
            return format!("{v}");
        }
        if v == 0.0 || v.abs() <= span * 1e-9 {
            return "0".into();
        }
        let span_digits = if span > 0.0 {
            span.log10().floor() as i32
        } else {
            0
        };
        if (1e-3..1e5).contains(&scale) {
            let decimals = (1 - span_digits).clamp(0, 12) as usize;
            trim_zeros(&format!("{v:.decimals$}"))
        } else {
            let extra = if span > 0.0 {
                (scale / span).log10().ceil().max(0.0) as usize
            } else {
                0
            };
            let digits = (extra + 1).min(6);
            let text = format!("{v:.digits$e}");
            match text.split_once('e') {
                Some((mantissa, exponent)) => format!("{}e{exponent}", trim_zeros(mantissa)),
                None => text,
            }
        }
    }
}

/// `2.500` → `2.5`, `50.0` → `50`, `-0.0` → `0`.
fn trim_zeros(text: &str) -> String {
    let trimmed = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    };
    if trimmed == "-0" {
        "0".into()
    } else {
        trimmed.to_string()
    }
}

fn finite_min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// The finite range of `values` widened by `pad` of its width on each side;
/// a single value gets a range around it, no values give `0..1`.
fn padded_range(values: impl Iterator<Item = f64>, pad: f64) -> std::ops::Range<f64> {
    match finite_min_max(values) {
        None => 0.0..1.0,
        Some((lo, hi)) if hi > lo => {
            let margin = (hi - lo) * pad;
            lo - margin..hi + margin
        }
        Some((v, _)) => {
            let half = if v == 0.0 { 1.0 } else { v.abs() * 0.1 };
            v - half..v + half
        }
    }
}

/// Thins `(x, y)` for drawing on `columns` pixel columns spanning `x0..x1`:
/// each column keeps its first, lowest, highest and last point, in order, so
/// every extreme survives. Curves short enough to draw whole, and curves
/// whose `x` is not sorted, come back whole. Non-finite points are dropped.
pub(crate) fn min_max_decimate(
    xs: &[f64],
    ys: &[f64],
    x0: f64,
    x1: f64,
    columns: usize,
) -> Vec<(f64, f64)> {
    let finite: Vec<(f64, f64)> = xs
        .iter()
        .zip(ys)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(&x, &y)| (x, y))
        .collect();
    let sorted = finite.windows(2).all(|w| w[0].0 <= w[1].0);
    let span_ok = x1 > x0; // false for NaN too
    if finite.len() <= 4 * columns || columns == 0 || !span_ok || !sorted {
        return finite;
    }
    let per_unit = columns as f64 / (x1 - x0);
    let column_of = |x: f64| (((x - x0) * per_unit).floor().max(0.0) as usize).min(columns - 1);

    let mut out = Vec::with_capacity(4 * columns + 4);
    let mut start = 0;
    while start < finite.len() {
        let column = column_of(finite[start].0);
        let mut end = start + 1;
        let (mut low, mut high) = (start, start);
        while end < finite.len() && column_of(finite[end].0) == column {
            if finite[end].1 < finite[low].1 {
                low = end;
            }
            if finite[end].1 > finite[high].1 {
                high = end;
            }
            end += 1;
        }
        let mut keep = [start, low, high, end - 1];
        keep.sort_unstable();
        let mut previous = None;
        for k in keep {
            if previous != Some(k) {
                out.push(finite[k]);
                previous = Some(k);
            }
        }
        start = end;
    }
    out
}

/// Spike times thinned to one tick per pixel column (ticks closer than a
/// pixel would draw on top of each other). `ticks` must be sorted.
fn thin_ticks(ticks: &[f64], x0: f64, x1: f64, columns: usize) -> Vec<f64> {
    let span_ok = x1 > x0; // false for NaN too
    if !span_ok || columns == 0 {
        return ticks.to_vec();
    }
    let per_unit = columns as f64 / (x1 - x0);
    let mut out: Vec<f64> = Vec::new();
    let mut last_column = None;
    for &t in ticks {
        let column = ((t - x0) * per_unit).floor() as i64;
        if last_column != Some(column) {
            out.push(t);
            last_column = Some(column);
        }
    }
    out
}

fn panel_chart<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    x_range: &std::ops::Range<f64>,
    y_range: std::ops::Range<f64>,
    x_desc: Option<&str>,
) -> Result<
    ChartContext<
        'a,
        SVGBackend<'b>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    Box<dyn std::error::Error>,
> {
    let chart = ChartBuilder::on(area)
        .margin_left(MARGIN)
        .margin_right(MARGIN)
        .margin_top(6)
        .margin_bottom(6)
        .x_label_area_size(if x_desc.is_some() { X_LABEL_AREA } else { 0 })
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(x_range.clone(), y_range)?;
    Ok(chart)
}

/// A panel with one curve; `from_zero` keeps 0 at the bottom of the y axis
/// (for traces that are never negative, such as a rate).
#[allow(clippy::too_many_arguments)]
fn line_panel(
    area: &DrawingArea<SVGBackend, Shift>,
    x_range: &std::ops::Range<f64>,
    x_desc: Option<&str>,
    y_desc: &str,
    points: &[(f64, f64)],
    color: &RGBColor,
    from_zero: bool,
) -> DrawResult {
    let mut y_range = padded_range(points.iter().map(|p| p.1), 0.08);
    if from_zero {
        y_range = 0.0..y_range.end.max(1.0);
    }
    let x_ticks = tick_formatter(x_range);
    let y_ticks = tick_formatter(&y_range);
    let mut chart = panel_chart(area, x_range, y_range, x_desc)?;
    let mut mesh = chart.configure_mesh();
    mesh.y_desc(y_desc)
        .x_label_formatter(&x_ticks)
        .y_label_formatter(&y_ticks)
        .y_labels(5)
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 12));
    if let Some(desc) = x_desc {
        mesh.x_desc(desc);
    }
    mesh.draw()?;
    chart.draw_series(LineSeries::new(
        points.iter().copied(),
        color.stroke_width(1),
    ))?;
    Ok(())
}

fn note_panel(
    area: &DrawingArea<SVGBackend, Shift>,
    x_range: &std::ops::Range<f64>,
    y_desc: &str,
    note: &str,
) -> DrawResult {
    let mut chart = panel_chart(area, x_range, 0.0..1.0, None)?;
    chart
        .configure_mesh()
        .y_desc(y_desc)
        .y_labels(0)
        .axis_desc_style((FONT, 15))
        .draw()?;
    draw_note(&chart, x_range, &(0.0..1.0), note)
}

fn draw_note<DB: DrawingBackend>(
    chart: &ChartContext<
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    x_range: &std::ops::Range<f64>,
    y_range: &std::ops::Range<f64>,
    note: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let at = (
        x_range.start + 0.4 * (x_range.end - x_range.start),
        (y_range.start + y_range.end) / 2.0,
    );
    chart.plotting_area().draw(&Text::new(
        note.to_string(),
        at,
        (FONT, 16).into_font().color(&BLACK.mix(0.6)),
    ))?;
    Ok(())
}

fn raster_panel(
    area: &DrawingArea<SVGBackend, Shift>,
    x_range: &std::ops::Range<f64>,
    sorted_spikes: &[f64],
) -> DrawResult {
    let mut chart = panel_chart(area, x_range, 0.0..1.0, None)?;
    chart
        .configure_mesh()
        .y_desc(format!("Spikes (n = {})", sorted_spikes.len()))
        .y_labels(0)
        .disable_y_mesh()
        .axis_desc_style((FONT, 15))
        .draw()?;
    let ticks = thin_ticks(sorted_spikes, x_range.start, x_range.end, PLOT_COLUMNS);
    chart.draw_series(
        ticks
            .into_iter()
            .map(|t| PathElement::new(vec![(t, 0.15), (t, 0.85)], SPIKE_COLOR.stroke_width(1))),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Signal, SignalKind};

    /// A sawtooth membrane (linear rise, instant reset) and a step input.
    fn lif_like(points: usize, t_stop: f64) -> (Waveforms, Vec<f64>) {
        let period = t_stop / 25.0;
        let sweep = uniform_grid(0.0, t_stop, points);
        let membrane = sweep
            .iter()
            .map(|&t| -0.07 + 0.02 * (t % period) / period)
            .collect();
        let input = sweep
            .iter()
            .map(|&t| if t > 0.0 { 2.5e-9 } else { 0.0 })
            .collect();
        let spikes = (1..25).map(|k| k as f64 * period).collect();
        let w = Waveforms {
            title: "LIF neuron, 2.5 nA".into(),
            analysis: "tran".into(),
            sweep_name: "time".into(),
            sweep,
            signals: vec![
                Signal {
                    name: "v(mem)".into(),
                    kind: SignalKind::Voltage,
                    values: membrane,
                },
                Signal {
                    name: "i(iin)".into(),
                    kind: SignalKind::Current,
                    values: input,
                },
            ],
        };
        (w, spikes)
    }

    fn assert_svg(path: &Path, needles: &[&str]) -> String {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..text.len().min(200)]);
        assert!(text.trim_end().ends_with("</svg>"));
        for needle in needles {
            assert!(text.contains(needle), "missing `{needle}`");
        }
        text
    }

    #[test]
    fn neuron_figure_has_four_labelled_panels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("neuron.svg");
        let (w, spikes) = lif_like(5_000, 0.5);
        neuron_figure(&path, &w, Some("i(iin)"), "v(mem)", &spikes, 20e-3).unwrap();
        let svg = assert_svg(
            &path,
            &[
                "LIF neuron, 2.5 nA",
                "Input i(iin) (nA)",
                "Membrane v(mem) (mV)",
                "Spikes (n = 24)",
                "Filtered output (Hz)",
                "Time (ms)",
            ],
        );
        // One raster tick per spike, in the raster colour.
        let ticks = svg.matches("stroke=\"#141478\"").count();
        assert_eq!(ticks, 24);
        // Tick labels are trimmed decimals: `100`, not `100.0`.
        assert!(svg.contains(">\n100\n<") && !svg.contains(">\n100.0\n<"));
    }

    #[test]
    fn long_traces_are_thinned_but_keep_extremes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.svg");
        let (w, spikes) = lif_like(200_001, 2.0);
        neuron_figure(&path, &w, Some("I(IIN)"), "v(mem)", &spikes, 50e-3).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size < 2_000_000, "SVG of {size} bytes: thinning failed");
        assert_svg(&path, &["Time (s)"]);

        let membrane = &w.signal("v(mem)").unwrap().values;
        let thin = min_max_decimate(&w.sweep, membrane, 0.0, 2.0, 800);
        assert!(thin.len() <= 4 * 800, "{} points", thin.len());
        let (lo, hi) = finite_min_max(membrane.iter().copied()).unwrap();
        let (thin_lo, thin_hi) = finite_min_max(thin.iter().map(|p| p.1)).unwrap();
        assert_eq!((thin_lo, thin_hi), (lo, hi));
        assert!(thin.windows(2).all(|p| p[0].0 <= p[1].0));
        // Every reset (a drop of ~20 mV) is still a drop in the thinned curve.
        let drops = thin.windows(2).filter(|p| p[1].1 < p[0].1 - 0.015).count();
        assert_eq!(drops, 24);
    }

    #[test]
    fn no_spikes_missing_input_and_empty_data_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let (w, _) = lif_like(100, 1e-4);
        let path = dir.path().join("quiet.svg");
        neuron_figure(&path, &w, None, "v(mem)", &[], 1e-3).unwrap();
        assert_svg(
            &path,
            &["no input current recorded", "Spikes (n = 0)", "Time (µs)"],
        );

        let empty = Waveforms {
            title: String::new(),
            analysis: "tran".into(),
            sweep_name: "time".into(),
            sweep: vec![],
            signals: vec![Signal {
                name: "v(mem)".into(),
                kind: SignalKind::Voltage,
                values: vec![],
            }],
        };
        let path = dir.path().join("empty.svg");
        neuron_figure(&path, &empty, None, "v(mem)", &[0.5], 1e-3).unwrap();
        assert_svg(&path, &["Neuron response", "Membrane v(mem) (mV)"]);

        let path = dir.path().join("empty_lines.svg");
        line_figure(&path, "nothing", "I (A)", "f (Hz)", &[]).unwrap();
        assert_svg(&path, &["nothing", "no data", "I (A)", "f (Hz)"]);
        line_figure(&path, "nan", "x", "y", &[("a", &[f64::NAN], &[1.0])]).unwrap();
        assert_svg(&path, &["no data"]);
    }

    #[test]
    fn neuron_figure_errors_name_the_file_and_the_signal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.svg");
        let (w, spikes) = lif_like(100, 0.1);
        let err = neuron_figure(&path, &w, Some("i(nope)"), "v(mem)", &spikes, 1e-3)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.svg") && err.contains("i(nope)") && err.contains("v(mem)"),
            "{err}"
        );
        let err = neuron_figure(&path, &w, None, "v(mem)", &spikes, 0.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("positive"), "{err}");
        assert!(!path.exists());
        let unwritable = dir.path().join("no_dir").join("x.svg");
        let err = neuron_figure(&unwritable, &w, None, "v(mem)", &spikes, 1e-3)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no_dir"), "{err}");
    }

    #[test]
    fn line_figure_draws_series_with_legend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fi.svg");
        let current: Vec<f64> = (0..40).map(|k| k as f64 * 0.1e-9).collect();
        let rate: Vec<f64> = current
            .iter()
            .map(|i| (i * 1e11 - 1.0).max(0.0) * 8.0)
            .collect();
        let model: Vec<f64> = rate.iter().map(|r| r * 1.1).collect();
        line_figure(
            &path,
            "f-I curve",
            "Input current (A)",
            "Rate (Hz)",
            &[("circuit", &current, &rate), ("model", &current, &model)],
        )
        .unwrap();
        let svg = assert_svg(
            &path,
            &[
                "f-I curve",
                "Input current (A)",
                "Rate (Hz)",
                "circuit",
                "model",
            ],
        );
        assert!(svg.matches("<circle").count() >= 80, "markers missing");

        let err = line_figure(&path, "t", "x", "y", &[("short", &[1.0, 2.0], &[1.0])])
            .unwrap_err()
            .to_string();
        assert!(err.contains("short") && err.contains("fi.svg"), "{err}");
    }

    #[test]
    fn tick_labels_are_short_and_exact() {
        let ms = tick_formatter(&(0.0..500.0));
        assert_eq!([ms(&0.0), ms(&50.0), ms(&450.0)], ["0", "50", "450"]);
        let mv = tick_formatter(&(-71.6..-48.4));
        assert_eq!([mv(&-55.0), mv(&-70.0)], ["-55", "-70"]);
        let na = tick_formatter(&(-0.2..2.7));
        assert_eq!([na(&0.5), na(&2.0), na(&1e-17)], ["0.5", "2", "0"]);
        let amps = tick_formatter(&(0.0..3.9e-9));
        assert_eq!([amps(&5e-10), amps(&2.5e-9)], ["5e-10", "2.5e-9"]);
        let offset = tick_formatter(&(1.0e6..1.0001e6));
        assert_eq!(offset(&1.00005e6), "1.00005e6");
    }

    #[test]
    fn decimation_leaves_short_or_unsorted_curves_whole() {
        let x = [0.0, 1.0, 2.0];
        let y = [1.0, f64::NAN, 3.0];
        assert_eq!(
            min_max_decimate(&x, &y, 0.0, 2.0, 10),
            [(0.0, 1.0), (2.0, 3.0)]
        );
        let xs: Vec<f64> = (0..100).map(|k| ((k * 37) % 100) as f64).collect();
        assert_eq!(min_max_decimate(&xs, &xs, 0.0, 99.0, 5).len(), 100);
        assert_eq!(
            thin_ticks(&[0.0, 0.001, 0.5, 0.9], 0.0, 1.0, 10),
            [0.0, 0.5, 0.9]
        );
    }
}

/// Draws a heatmap of `values[row][col]` (row ↔ `y_labels`, column ↔
/// `x_labels`) into the SVG file `path`, each cell coloured on a
/// blue-to-yellow scale and annotated with its value. For two-parameter
/// sweeps and confusion matrices; non-finite cells are left grey.
pub fn heatmap_figure(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    x_labels: &[String],
    y_labels: &[String],
    values: &[Vec<f64>],
) -> Result<(), OutputError> {
    if values.len() != y_labels.len() || values.iter().any(|r| r.len() != x_labels.len()) {
        return Err(OutputError::InvalidFigureInput {
            path: path.to_path_buf(),
            message: format!(
                "heatmap needs {} rows of {} values",
                y_labels.len(),
                x_labels.len()
            ),
        });
    }
    let (lo, hi) = finite_min_max(values.iter().flatten().copied()).unwrap_or((0.0, 1.0));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let (nx, ny) = (x_labels.len().max(1), y_labels.len().max(1));
    write_svg(path, (WIDTH, LINE_HEIGHT + 100), |root| {
        let root = root.titled(title, (FONT, 24))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(MARGIN)
            .x_label_area_size(X_LABEL_AREA + 20)
            .y_label_area_size(Y_LABEL_AREA + 30)
            .build_cartesian_2d(-0.5..nx as f64 - 0.5, -0.5..ny as f64 - 0.5)?;
        let xl = |v: &f64| {
            x_labels
                .get(v.floor() as usize)
                .cloned()
                .unwrap_or_default()
        };
        let yl = |v: &f64| {
            y_labels
                .get(v.floor() as usize)
                .cloned()
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_labels(nx.clamp(2, 20) + 1)
            .y_labels(ny.clamp(2, 20) + 1)
            .x_label_formatter(&xl)
            .y_label_formatter(&yl)
            .draw()?;
        for (r, row) in values.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                let color = if v.is_finite() {
                    let t = (v - lo) / span;
                    RGBColor(
                        (40.0 + 215.0 * t) as u8,
                        (60.0 + 170.0 * t) as u8,
                        (160.0 - 130.0 * t) as u8,
                    )
                } else {
                    RGBColor(200, 200, 200)
                };
                let (x0, y0) = (c as f64 - 0.5, r as f64 - 0.5);
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, y0), (x0 + 1.0, y0 + 1.0)],
                    color.filled(),
                )))?;
                if nx * ny <= 400 && v.is_finite() {
                    let text = trim_zeros(&format!("{v:.3}"));
                    chart.draw_series(std::iter::once(Text::new(
                        text,
                        (x0 + 0.3, y0 + 0.6),
                        (FONT, 12),
                    )))?;
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod heatmap_tests {
    use super::*;

    #[test]
    fn heatmap_labels_every_cell_and_checks_its_shape() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.svg");
        let labels = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        heatmap_figure(
            &p,
            "t",
            "x",
            "y",
            &labels(&["a", "b"]),
            &labels(&["r1", "r2", "r3"]),
            &[vec![1.0, 2.0], vec![3.0, f64::NAN], vec![5.0, 6.0]],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&p).unwrap();
        // plotters writes each text element's content on its own line.
        for text in ["a", "b", "r1", "r3", "6"] {
            assert!(svg.lines().any(|l| l.trim() == text), "{text} missing");
        }
        let bad = heatmap_figure(
            &p,
            "t",
            "x",
            "y",
            &labels(&["a"]),
            &labels(&["r1"]),
            &[vec![1.0, 2.0]],
        );
        assert!(bad.is_err());
    }
}
