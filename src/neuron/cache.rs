//! Measured f–I curves of a neuron netlist, with rheobase and saturation,
//! cached on disk so that `rate`, `train` and `classify` measure a circuit
//! once. The key is a SHA-256 of the parsed netlist (includes spliced in),
//! the `--param` overrides, the currents and the measurement windows.

use super::kernel::NeuronOptions;
use super::rate::{rate_curve, response_curve, RateMeasurement};
use crate::circuit::{self};
use crate::netlist::{self, Expr};
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Run `SETTLE_S` to let the start-up transient pass, then measure over
/// `MEASURE_S` (devices.md §7 uses 0.2 s runs).
pub const SETTLE_S: f64 = 0.02;
pub const MEASURE_S: f64 = 0.2;
/// Bump when the measurement changes, so old cache entries are ignored
/// (2: the batched engine integrates with variable-order BDF, session 14;
/// 3: first-spike latencies are recorded, session 20).
const CACHE_VERSION: u32 = 3;

/// One netlist's measured f–I curve.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RateCurveData {
    /// The netlist path as given.
    pub netlist: String,
    /// SHA-256 of the netlist file's text.
    pub netlist_sha256: String,
    /// `--param` overrides, as `name=value` text.
    pub overrides: Vec<String>,
    pub currents_a: Vec<f64>,
    pub rates_hz: Vec<f64>,
    /// Time of the first spike from rest at each current (s); None where
    /// the neuron did not fire within `settle_s + measure_s`.
    pub first_spike_s: Vec<Option<f64>>,
    pub settle_s: f64,
    pub measure_s: f64,
    /// The lowest current that fires (at least two spikes in the
    /// measurement window), refined by bisection to 1 pA; `None` when no
    /// current of the grid fires.
    pub rheobase_a: Option<f64>,
    /// The highest rate on the grid.
    pub max_rate_hz: f64,
    /// Slope of the curve over its last two points (Hz/A); near zero when
    /// the neuron saturates within the grid.
    pub slope_at_top_hz_per_a: f64,
}

/// Where cached curves live: `$CIRCSNN_CACHE`, else `$XDG_CACHE_HOME/circsnn`,
/// else `~/.cache/circsnn`, else `./.circsnn-cache`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CIRCSNN_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("circsnn");
    }
    if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h).join(".cache").join("circsnn");
    }
    PathBuf::from(".circsnn-cache")
}

/// SHA-256 of a file's bytes, as hex.
pub fn file_sha256(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The f–I curve of `netlist` at `currents` (A), from the cache when the
/// same measurement was made before, otherwise measured with the batched
/// engine (all currents at once) and stored.
pub fn rate_curve_cached(
    netlist: &Path,
    overrides: &[(String, Expr)],
    currents: &[f64],
    quiet: bool,
) -> anyhow::Result<RateCurveData> {
    let parsed = netlist::parse_file(netlist)?;
    let override_text: Vec<String> = overrides.iter().map(|(n, e)| format!("{n}={e}")).collect();
    let mut h = Sha256::new();
    h.update(format!(
        "v{CACHE_VERSION} {SETTLE_S} {MEASURE_S}\n{:?}\n{override_text:?}\n",
        parsed.cards
    ));
    for c in currents {
        h.update(c.to_le_bytes());
    }
    let key = hex(&h.finalize());
    let path = cache_dir().join(format!("rate-{key}.json"));
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Ok(mut data) = serde_json::from_str::<RateCurveData>(&text) {
            data.netlist = netlist.display().to_string();
            return Ok(data);
        }
    }
    let circuit = circuit::elaborate(&parsed, overrides)?;
    let started = std::time::Instant::now();
    let RateMeasurement {
        rates_hz: rates,
        first_spike_s,
    } = response_curve(
        &circuit,
        currents,
        SETTLE_S,
        MEASURE_S,
        NeuronOptions::from_circuit(&circuit),
    )
    .with_context(|| format!("rate curve of {}", netlist.display()))?;
    let rheobase_a = refine_rheobase(&circuit, currents, &rates)?;
    let n = currents.len();
    let slope_at_top_hz_per_a = if n >= 2 {
        (rates[n - 1] - rates[n - 2]) / (currents[n - 1] - currents[n - 2])
    } else {
        0.0
    };
    let data = RateCurveData {
        netlist: netlist.display().to_string(),
        netlist_sha256: file_sha256(netlist)?,
        overrides: override_text,
        currents_a: currents.to_vec(),
        rates_hz: rates.clone(),
        first_spike_s,
        settle_s: SETTLE_S,
        measure_s: MEASURE_S,
        rheobase_a,
        max_rate_hz: rates.iter().copied().fold(0.0, f64::max),
        slope_at_top_hz_per_a,
    };
    if !quiet {
        eprintln!(
            "measured the f–I curve of {} ({} points) in {:.2} s",
            netlist.display(),
            n,
            started.elapsed().as_secs_f64()
        );
    }
    // A failed cache write costs only a re-measurement next time.
    if std::fs::create_dir_all(cache_dir()).is_ok() {
        let tmp = path.with_extension("json.tmp");
        if std::fs::write(&tmp, serde_json::to_string_pretty(&data)?).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    Ok(data)
}

/// Bisect between the last silent and the first firing grid current.
fn refine_rheobase(
    circuit: &circuit::Circuit,
    currents: &[f64],
    rates: &[f64],
) -> anyhow::Result<Option<f64>> {
    let Some(first) = rates.iter().position(|&r| r > 0.0) else {
        return Ok(None);
    };
    // When the lowest grid current already fires, search down to zero.
    let (mut lo, mut hi) = if first == 0 {
        (0.0f64.min(currents[0]), currents[0])
    } else {
        (currents[first - 1], currents[first])
    };
    // 16 probes per round shrink the bracket 17×; stop at 1 pA.
    while hi - lo > 1e-12 {
        let probes: Vec<f64> = (1..=16).map(|k| lo + (hi - lo) * k as f64 / 17.0).collect();
        let r = rate_curve(circuit, &probes, SETTLE_S, MEASURE_S)?;
        match r.iter().position(|&x| x > 0.0) {
            Some(0) => hi = probes[0],
            Some(k) => {
                lo = probes[k - 1];
                hi = probes[k];
            }
            None => lo = probes[15],
        }
    }
    Ok(Some(hi))
}
