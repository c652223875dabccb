//! The response of a circuit neuron to a constant input current held from
//! its initial state for a whole run: its spike times and the energy its
//! devices dissipate. A network's first layer under an analog image is
//! driven that way, and each of its neurons is a function of its current
//! alone, so one table over the current answers them all.
//!
//! The table is built where lookups need it, from neurons simulated by the
//! batched engine's own integrator at chosen currents ("points"), and read
//! by piecewise-quadratic interpolation. It is adaptive and checked: the
//! current axis is cut into cells (geometric, [`CELL_RATIO`] wide, plus one
//! cell from 0 A to [`FLOOR_A`]); a cell [a, b] is accepted when the
//! quadratic through a, its midpoint m and b predicts the responses at the
//! quarter points within [`TIME_TOLERANCE_S`] for every spike time and
//! [`ENERGY_TOLERANCE`] for the energy, with the same spike count at all
//! five points; otherwise it is halved. Reads then use the quadratics
//! through (a, q1, m) and (m, q3, b), half as wide, whose error is about an
//! eighth of the one checked. A change in spike count (a spike passing the
//! end of the run, the rheobase) is narrowed to [`MIN_WIDTH`] of the
//! current; a neuron whose current falls inside such a sliver is simulated
//! on its own.
//!
//! Points and cells are functions of the current only, so the table's
//! answers do not depend on which images came first or on the thread
//! count.

use super::NeuronError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What one neuron does under a constant current over the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// Spike times from the start of the run (s), increasing.
    pub spikes: Vec<f64>,
    /// Energy dissipated in the neuron's devices over the run (J).
    pub energy_j: f64,
}

/// Interpolated spike times may differ from simulated ones by this much
/// (s): a hundredth of the 1 µs to which the batched engine must agree
/// with the general one.
pub const TIME_TOLERANCE_S: f64 = 2e-7;
/// Interpolated energies may differ by this fraction of the energy.
pub const ENERGY_TOLERANCE: f64 = 1e-4;
/// Energies below this are compared absolutely (J).
const ENERGY_FLOOR_J: f64 = 1e-24;
/// The lowest geometric cell starts here; below it one cell reaches 0 A.
pub const FLOOR_A: f64 = 1e-15;
/// Ratio of a geometric cell's upper to its lower current.
pub const CELL_RATIO: f64 = 1.1;
/// A cell narrower than this fraction of its current is not split further.
pub const MIN_WIDTH: f64 = 1e-5;
/// The cell key of [0, FLOOR_A].
const FLOOR_KEY: i64 = -1;

/// One accepted piece of the table, or how it was split.
#[derive(Debug)]
enum Cell {
    /// Five points a, q1, m, q3, b at equal spacing, one spike count.
    Leaf([(f64, Arc<Response>); 5]),
    Split(f64, Box<Cell>, Box<Cell>),
    /// Too narrow to split again: its currents are simulated.
    Direct,
}

/// The table of one run duration.
#[derive(Debug, Default)]
struct Table {
    cells: HashMap<i64, Arc<Cell>>,
    points: usize,
}

/// Tables of one circuit, one per run duration, shared by every kernel of
/// the circuit (one per network a thread runs).
#[derive(Debug, Default)]
pub struct ResponseTables {
    tables: Mutex<HashMap<u64, Table>>,
}

/// The tables' answer to one batch of currents.
#[derive(Debug, Default)]
pub struct Answers {
    /// Instances answered by interpolation.
    pub interpolated: u64,
    /// Instances simulated on their own (inside a count change, or a
    /// negative current).
    pub simulated: u64,
    pub energy_j: f64,
}

fn cell_key(current: f64) -> i64 {
    if current < FLOOR_A {
        FLOOR_KEY
    } else {
        ((current / FLOOR_A).ln() / CELL_RATIO.ln()).floor() as i64
    }
}

fn cell_bounds(key: i64) -> (f64, f64) {
    match key {
        FLOOR_KEY => (0.0, FLOOR_A),
        k => (
            FLOOR_A * CELL_RATIO.powi(k as i32),
            FLOOR_A * CELL_RATIO.powi(k as i32 + 1),
        ),
    }
}

fn midpoint(a: f64, b: f64) -> f64 {
    a + 0.5 * (b - a)
}

/// The quadratic through values at s = 0, 1/2, 1, read at s.
fn quadratic(v: [f64; 3], s: f64) -> f64 {
    2.0 * (s - 0.5) * (s - 1.0) * v[0] - 4.0 * s * (s - 1.0) * v[1] + 2.0 * s * (s - 0.5) * v[2]
}

/// Whether the quadratic through a, m, b predicts q1 and q3.
fn accepted(p: &[&Response; 5]) -> bool {
    let n = p[0].spikes.len();
    if p.iter().any(|r| r.spikes.len() != n) {
        return false;
    }
    // (Nodes a, m, b at s = 0, 1/2, 1; q1, q3 at s = 1/4, 3/4.)
    let holds = |value: &dyn Fn(&Response) -> f64, tol: &dyn Fn(f64) -> f64| {
        let nodes = [value(p[0]), value(p[2]), value(p[4])];
        [(1, 0.25), (3, 0.75)].iter().all(|&(i, s)| {
            let actual = value(p[i]);
            (quadratic(nodes, s) - actual).abs() <= tol(actual)
        })
    };
    (0..n).all(|k| holds(&|r| r.spikes[k], &|_| TIME_TOLERANCE_S))
        && holds(&|r| r.energy_j, &|e| {
            ENERGY_TOLERANCE * e.abs().max(ENERGY_FLOOR_J)
        })
}

/// Build the cell [a, b] from its end and middle points, simulating the
/// rest with `simulate` (one current at a time).
fn build(
    ends: [(f64, Arc<Response>); 2],
    middle: (f64, Arc<Response>),
    simulate: &dyn Fn(f64) -> Result<Response, NeuronError>,
    points: &mut usize,
) -> Result<Cell, NeuronError> {
    let [(a, ra), (b, rb)] = ends;
    let (m, rm) = middle;
    if b - a <= MIN_WIDTH * b {
        return Ok(Cell::Direct);
    }
    let (q1, q3) = (midpoint(a, m), midpoint(m, b));
    let (r1, r3) = (Arc::new(simulate(q1)?), Arc::new(simulate(q3)?));
    *points += 2;
    if accepted(&[&ra, &r1, &rm, &r3, &rb]) {
        return Ok(Cell::Leaf([(a, ra), (q1, r1), (m, rm), (q3, r3), (b, rb)]));
    }
    let low = build([(a, ra), (m, rm.clone())], (q1, r1), simulate, points)?;
    let high = build([(m, rm), (b, rb)], (q3, r3), simulate, points)?;
    Ok(Cell::Split(m, Box::new(low), Box::new(high)))
}

/// The table's response at `current` inside `cell`; None inside a
/// `Direct` sliver.
fn read(cell: &Cell, current: f64, spikes: &mut Vec<f64>) -> Option<f64> {
    match cell {
        Cell::Split(m, low, high) => read(if current < *m { low } else { high }, current, spikes),
        Cell::Direct => None,
        Cell::Leaf(p) => {
            let half = if current < p[2].0 { &p[0..3] } else { &p[2..5] };
            let s = ((current - half[0].0) / (half[2].0 - half[0].0)).clamp(0.0, 1.0);
            let at = |value: &dyn Fn(&Response) -> f64| {
                quadratic([value(&half[0].1), value(&half[1].1), value(&half[2].1)], s)
            };
            for k in 0..half[0].1.spikes.len() {
                spikes.push(at(&|r| r.spikes[k]));
            }
            Some(at(&|r| r.energy_j))
        }
    }
}

impl ResponseTables {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Points simulated so far for runs of `duration` (s).
    pub fn points(&self, duration: f64) -> usize {
        let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.get(&duration.to_bits()).map_or(0, |t| t.points)
    }

    /// Answer `currents` (A) for a run of `duration` (s): spikes appended
    /// to `spikes_out` as (instance, time), ordered by instance then time.
    /// `simulate(currents)` runs neurons on their own over the run, in
    /// parallel, one response per current; it is given no current above
    /// [`highest_simulated`] of `currents`.
    pub fn answer(
        &self,
        duration: f64,
        currents: &[f64],
        spikes_out: &mut Vec<(usize, f64)>,
        simulate: &Simulate,
    ) -> Result<Answers, NeuronError> {
        let key = duration.to_bits();
        let mut missing: Vec<i64> = {
            let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
            let built = tables.get(&key);
            currents
                .iter()
                .filter(|&&i| i >= 0.0)
                .map(|&i| cell_key(i))
                .filter(|k| built.is_none_or(|t| !t.cells.contains_key(k)))
                .collect()
        };
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            // (Built without the lock: a cell is a function of its key, so
            // one built meanwhile by another kernel is the same.)
            let (cells, points) = build_cells(&missing, simulate)?;
            let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
            let table = tables.entry(key).or_default();
            table.points += points;
            for (k, cell) in missing.into_iter().zip(cells) {
                table.cells.entry(k).or_insert(cell);
            }
        }

        // Interpolate, noting the neurons to simulate on their own.
        let mut answers = Answers::default();
        let mut per_instance: Vec<Option<(usize, usize)>> = Vec::with_capacity(currents.len());
        let mut times: Vec<f64> = Vec::new();
        let mut direct: Vec<usize> = Vec::new();
        {
            let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
            let cells = tables.get(&key).map(|t| &t.cells);
            for (i, &current) in currents.iter().enumerate() {
                let start = times.len();
                let cell = (current >= 0.0)
                    .then(|| cells.and_then(|c| c.get(&cell_key(current))))
                    .flatten();
                match cell.and_then(|c| read(c, current, &mut times)) {
                    Some(e) => {
                        answers.energy_j += e;
                        answers.interpolated += 1;
                        per_instance.push(Some((start, times.len())));
                    }
                    None => {
                        times.truncate(start);
                        direct.push(i);
                        per_instance.push(None);
                    }
                }
            }
        }
        let own: Vec<f64> = direct.iter().map(|&i| currents[i]).collect();
        let simulated = if own.is_empty() {
            Vec::new()
        } else {
            simulate(&own)?
        };
        answers.simulated = simulated.len() as u64;
        let mut simulated = simulated.into_iter();
        for (i, slot) in per_instance.into_iter().enumerate() {
            match slot {
                Some((a, b)) => spikes_out.extend(times[a..b].iter().map(|&t| (i, t))),
                None => {
                    let r = simulated
                        .next()
                        .expect("one response per simulated current");
                    answers.energy_j += r.energy_j;
                    spikes_out.extend(r.spikes.iter().map(|&t| (i, t)));
                }
            }
        }
        Ok(answers)
    }
}

/// The highest current the tables may simulate to answer `currents`: the
/// top of the highest cell they fall in.
pub fn highest_simulated(currents: &[f64]) -> f64 {
    let top = currents.iter().fold(0.0f64, |m, &i| m.max(i));
    cell_bounds(cell_key(top)).1
}

/// Neurons simulated on their own over the run, one response per current.
type Simulate<'a> = dyn Fn(&[f64]) -> Result<Vec<Response>, NeuronError> + Sync + 'a;

/// The cells of `keys`: their end points and midpoints simulated in one
/// batch, then each cell refined on its own, cells in parallel.
fn build_cells(keys: &[i64], simulate: &Simulate) -> Result<(Vec<Arc<Cell>>, usize), NeuronError> {
    use rayon::prelude::*;
    let bounds: Vec<(f64, f64)> = keys.iter().map(|&k| cell_bounds(k)).collect();
    // Ends and midpoints: shared ends once.
    let mut first: Vec<f64> = bounds
        .iter()
        .flat_map(|&(a, b)| [a, midpoint(a, b), b])
        .collect();
    first.sort_by(f64::total_cmp);
    first.dedup();
    let responses: HashMap<u64, Arc<Response>> = first
        .iter()
        .map(|i| i.to_bits())
        .zip(simulate(&first)?.into_iter().map(Arc::new))
        .collect();
    let one = |i: f64| -> Result<Response, NeuronError> {
        Ok(simulate(&[i])?.pop().expect("one response per current"))
    };
    let built: Vec<Result<(Cell, usize), NeuronError>> = bounds
        .par_iter()
        .map(|&(a, b)| {
            let m = midpoint(a, b);
            let at = |i: f64| (i, responses[&i.to_bits()].clone());
            let mut points = 0;
            let cell = build([at(a), at(b)], at(m), &one, &mut points)?;
            Ok((cell, points))
        })
        .collect();
    let mut points = first.len();
    let mut cells = Vec::with_capacity(keys.len());
    for b in built {
        let (cell, p) = b?;
        points += p;
        cells.push(Arc::new(cell));
    }
    Ok((cells, points))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A neuron-like response: silent below 1 nA, then spikes at
    /// t_k = (k + 0.3) · P(I), P = 1 ms · sqrt(1 nA / (I − 1 nA)), up to
    /// 20 ms; energy 1 pJ per spike plus a leak growing with I.
    fn synthetic(i: f64) -> Response {
        let (rheobase, duration) = (1e-9, 20e-3);
        let mut spikes = Vec::new();
        if i > rheobase {
            let period = 1e-3 * (rheobase / (i - rheobase)).sqrt();
            let mut k = 0.0;
            while (k + 0.3) * period < duration {
                spikes.push((k + 0.3) * period);
                k += 1.0;
            }
        }
        let energy_j = 1e-12 * spikes.len() as f64 + 1e-6 * i * i;
        Response { spikes, energy_j }
    }

    fn answer(
        tables: &ResponseTables,
        currents: &[f64],
        calls: &Mutex<usize>,
    ) -> (Vec<(usize, f64)>, Answers) {
        let mut spikes = Vec::new();
        let simulate = |is: &[f64]| {
            *calls.lock().unwrap() += is.len();
            Ok(is.iter().map(|&i| synthetic(i)).collect())
        };
        let answers = tables
            .answer(20e-3, currents, &mut spikes, &simulate)
            .unwrap();
        (spikes, answers)
    }

    #[test]
    fn interpolated_responses_match_the_function_within_tolerance() {
        let tables = ResponseTables::new();
        let calls = Mutex::new(0);
        // Currents through the rheobase and up to 8 nA, and exact zeros.
        let currents: Vec<f64> = (0..3000)
            .map(|k| {
                if k % 10 == 0 {
                    0.0
                } else {
                    0.5e-9 + 7.5e-9 * (k as f64 / 3000.0).powi(2)
                }
            })
            .collect();
        let (spikes, answers) = answer(&tables, &currents, &calls);
        assert!(answers.interpolated >= 2990, "{answers:?}");
        let mut expected_energy = 0.0;
        let mut worst = 0.0f64;
        for (n, &i) in currents.iter().enumerate() {
            let want = synthetic(i);
            expected_energy += want.energy_j;
            let got: Vec<f64> = spikes.iter().filter(|s| s.0 == n).map(|s| s.1).collect();
            assert_eq!(got.len(), want.spikes.len(), "spike count at {i:e} A");
            for (g, w) in got.iter().zip(&want.spikes) {
                worst = worst.max((g - w).abs());
            }
        }
        assert!(
            worst <= 2.0 * TIME_TOLERANCE_S,
            "worst spike-time error {worst:e} s"
        );
        let rel = (answers.energy_j - expected_energy).abs() / expected_energy;
        assert!(rel < 1e-6, "energy off by {rel:e}");
        // The table counts its points; a second batch simulates nothing
        // new (but the neurons in count-change slivers) and gives the same
        // answers.
        let first = *calls.lock().unwrap();
        assert_eq!(tables.points(20e-3), first - answers.simulated as usize);
        let (again, _) = answer(&tables, &currents, &calls);
        assert_eq!(again, spikes);
        assert_eq!(*calls.lock().unwrap() - first, answers.simulated as usize);
    }

    #[test]
    fn a_negative_current_is_simulated_on_its_own() {
        let tables = ResponseTables::new();
        let calls = Mutex::new(0);
        let (_, answers) = answer(&tables, &[-1e-9, 2e-9], &calls);
        assert_eq!((answers.simulated, answers.interpolated), (1, 1));
    }
}
