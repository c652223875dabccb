//! Abstract neuron models behind the same step interface as the circuit
//! engine, each with its analytic f–I curve.
//!
//! - [`Lif`]: Nengo's LIF (normalised voltage, threshold 1, reset to 0,
//!   refractory period tau_ref, exact exponential update, spike times from
//!   the exact threshold crossing).
//! - [`SpikingRelu`]: Nengo's SpikingRectifiedLinear (an integrate-and-fire
//!   neuron without leak): v += J·dt, spikes = floor(v), v −= spikes.
//! - [`AnalyticMif`]: the MIF of thesis eq. 1.5 as a closed form: RC
//!   charging towards V_inf = E_rest + R_off·I between events, an
//!   instantaneous reset when V reaches the effective threshold.
//!
//! Inputs are currents in amperes, as for circuits; each model states how
//! it maps a current to its own drive.

use super::{check_advance_args, NeuronError, NeuronModel, RateModel};

/// Instances per block of the vectorised fast path. A block with no
/// instance on the slow path (spike, refractory) costs only the
/// branch-free loop.
const SOA_BLOCK: usize = 64;

/// Relative margin below threshold under which the fast path trusts its
/// no-spike verdict; closer calls go to the exact slow path.
const FAST_MARGIN: f64 = 1e-12;

/// The normalised LIF voltage at which the fast path hands over.
const LIF_FAST_LIMIT: f64 = 1.0 - FAST_MARGIN;

/// [`check_advance_args`] with the common all-valid case in one
/// branch-free pass the compiler vectorises (the generic check stops at
/// the first bad input, a loop that does not vectorise and cost a sixth
/// of the LIF step); any failure is handed to it for the exact error.
fn check_args(len: usize, dt: f64, input_currents: &[f64]) -> Result<(), NeuronError> {
    // 0·x is ±0 for finite x and NaN for ±inf or NaN; eight independent
    // sums of it (each ±0 while every input is finite) vectorise.
    let mut sums = [0.0f64; 8];
    let mut chunks = input_currents.chunks_exact(8);
    for chunk in &mut chunks {
        for (sum, x) in sums.iter_mut().zip(chunk) {
            *sum += 0.0 * x;
        }
    }
    let all_finite =
        sums.iter().all(|&s| s == 0.0) && chunks.remainder().iter().all(|x| x.is_finite());
    if all_finite && input_currents.len() == len && dt > 0.0 && dt.is_finite() {
        Ok(())
    } else {
        check_advance_args(len, dt, input_currents)
    }
}

/// Bit k set where `flags[k]` is 1 (every flag is 0 or 1).
#[inline(always)]
fn flag_mask(flags: &[u8; SOA_BLOCK]) -> u64 {
    let mut mask = 0u64;
    for (w, bytes) in flags.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        // Byte i (0 or 1) of `word` lands on bit 56 + i: no carries, since
        // every partial product sits on its own bit.
        mask |= (word.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * w);
    }
    mask
}

/// Runs `body` compiled for AVX2 where the CPU has it (four f64 lanes in
/// the fast paths instead of SSE2's two), else as it is. The results are
/// the same: Rust neither fuses nor reorders floating-point operations,
/// and the library calls (ln, exp_m1) are the same functions. The body
/// must be an `#[inline(always)]` closure, or it keeps SSE2 code.
#[inline(always)]
fn with_wide_vectors<R>(body: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn wide<R>(body: impl FnOnce() -> R) -> R {
            body()
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU was just checked to support AVX2.
            return unsafe { wide(body) };
        }
    }
    body()
}

/// The slow lanes of one block, in instance order (the first `count`
/// entries are live), padded to a multiple of four for [`ln4_from_one`].
struct SlowLanes {
    lane: [u8; SOA_BLOCK],
    /// Whether the lane may take the one-spike shortcut.
    shortcut: [bool; SOA_BLOCK],
    /// Argument of the shortcut's logarithm.
    ratio: [f64; SOA_BLOCK + 3],
    log: [f64; SOA_BLOCK + 3],
    /// The drive: J for the LIF, V_inf for the analytic MIF.
    current: [f64; SOA_BLOCK],
}

impl SlowLanes {
    fn new() -> Self {
        SlowLanes {
            lane: [0; SOA_BLOCK],
            shortcut: [false; SOA_BLOCK],
            // Entries past `count` hold 1 or an earlier block's ratio: all
            // valid arguments of the logarithm.
            ratio: [1.0; SOA_BLOCK + 3],
            log: [0.0; SOA_BLOCK + 3],
            current: [0.0; SOA_BLOCK],
        }
    }

    /// `log[m] = ln ratio[m]` for the first `count` lanes, four at a time.
    #[inline(always)]
    fn take_logs(&mut self, count: usize) {
        for group in (0..count).step_by(4) {
            let ratio: [f64; 4] = self.ratio[group..group + 4].try_into().expect("4");
            self.log[group..group + 4].copy_from_slice(&ln4_from_one(ratio));
        }
    }
}

/// ln x for finite x ≥ 1, four lanes at once in plain arithmetic the
/// compiler vectorises (the library logarithm is a call per lane and was a
/// third of the LIF step). x = 2^e·m with m in [√½, √2]; ln m = 2 atanh s,
/// s = (m − 1)/(m + 1), |s| ≤ 0.172, by its series to s^21 (the rest is
/// below 1e-18 relative). Within a few ulp of `f64::ln`.
#[inline(always)]
fn ln4_from_one(x: [f64; 4]) -> [f64; 4] {
    const MANTISSA: u64 = (1 << 52) - 1;
    const ONE_BITS: u64 = 0x3ff0_0000_0000_0000;
    const TWO_52: f64 = 4_503_599_627_370_496.0;
    // 1/(2k + 1), k = 10 down to 1: the atanh series in z = s².
    const SERIES: [f64; 10] = [
        1.0 / 21.0,
        1.0 / 19.0,
        1.0 / 17.0,
        1.0 / 15.0,
        1.0 / 13.0,
        1.0 / 11.0,
        1.0 / 9.0,
        1.0 / 7.0,
        1.0 / 5.0,
        1.0 / 3.0,
    ];
    let mut out = [0.0; 4];
    for (y, &x) in out.iter_mut().zip(&x) {
        let bits = x.to_bits();
        // The biased exponent as a float, exactly: 2^52 + n − 2^52.
        let biased = f64::from_bits(TWO_52.to_bits() | (bits >> 52)) - TWO_52;
        let m = f64::from_bits((bits & MANTISSA) | ONE_BITS);
        let high = m > std::f64::consts::SQRT_2;
        let m = if high { 0.5 * m } else { m };
        let e = biased - if high { 1022.0 } else { 1023.0 };
        let f = m - 1.0;
        let s = f / (2.0 + f);
        let z = s * s;
        let mut p = SERIES[0];
        for c in &SERIES[1..] {
            p = p * z + c;
        }
        *y = e * std::f64::consts::LN_2 + (2.0 * s + 2.0 * s * z * p);
    }
    out
}

fn check_positive(name: &str, v: f64) -> Result<(), NeuronError> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(NeuronError::InvalidParameter(format!(
            "{name} must be positive and finite, got {v}"
        )))
    }
}

/// Nengo's leaky integrate-and-fire neuron. The drive is J = I /
/// `rheobase` (so J = 1 is the threshold current) and the normalised
/// voltage follows τ_rc dv/dt = J − v; a spike happens when v reaches 1,
/// then v = 0 for τ_ref.
///
/// The update is exact: it is Nengo's (v −= (J − v)·expm1(−Δt/τ_rc), spike
/// time from log1p of the overshoot, the refractory remainder carried into
/// the next step as a fraction of dt), except that time left in a step
/// after a refractory period ends is integrated rather than dropped, and a
/// step may hold more than one spike. The simulated rate therefore equals
/// [`RateModel::rate`] for any dt. (The common one-spike step takes its
/// logarithm from a vectorised series within a few ulp of `f64::ln`.)
#[derive(Clone, Debug)]
pub struct Lif {
    /// Membrane time constant (s).
    pub tau_rc: f64,
    /// Refractory period (s).
    pub tau_ref: f64,
    /// Current at which J = 1 (A).
    pub rheobase: f64,
    /// Lower bound on the normalised voltage (Nengo's min_voltage).
    pub min_voltage: f64,
    voltage: Vec<f64>,
    /// Refractory time left at the start of the next step (s).
    refractory: Vec<f64>,
    /// Whether some instance may still be refractory: when not, the fast
    /// path does not read `refractory` at all.
    refractory_pending: bool,
}

impl Lif {
    pub fn new(n: usize, tau_rc: f64, tau_ref: f64, rheobase: f64) -> Result<Self, NeuronError> {
        check_positive("tau_rc", tau_rc)?;
        check_positive("rheobase", rheobase)?;
        if !(tau_ref >= 0.0 && tau_ref.is_finite()) {
            return Err(NeuronError::InvalidParameter(format!(
                "tau_ref must be >= 0, got {tau_ref}"
            )));
        }
        Ok(Lif {
            tau_rc,
            tau_ref,
            rheobase,
            min_voltage: 0.0,
            voltage: vec![0.0; n],
            refractory: vec![0.0; n],
            refractory_pending: false,
        })
    }

    /// The abstract twin of the circuit LIF of devices.md §3: τ = R·C =
    /// 2 ms, no refractory period, rheobase (V_th − E_L)/R = 2 nA.
    pub fn circuit_equivalent(n: usize) -> Self {
        Lif::new(n, 2e-3, 0.0, 2e-9).expect("constants are valid")
    }

    /// Step one instance; pushes spikes at offsets within [0, dt].
    #[inline]
    fn step_one(
        &self,
        v: &mut f64,
        refractory: &mut f64,
        j: f64,
        dt: f64,
        instance: usize,
        spikes: &mut Vec<(usize, f64)>,
    ) {
        if *refractory >= dt {
            *refractory -= dt;
            return;
        }
        let mut t = *refractory;
        *refractory = 0.0;
        loop {
            let rest = dt - t;
            if j > 1.0 {
                // Time for v to reach 1 on the way to J.
                let to_threshold = if *v >= 1.0 {
                    0.0
                } else {
                    self.tau_rc * ((j - *v) / (j - 1.0)).ln()
                };
                if to_threshold <= rest {
                    spikes.push((instance, t + to_threshold));
                    *v = 0.0;
                    t += to_threshold + self.tau_ref;
                    if t >= dt {
                        *refractory = t - dt;
                        return;
                    }
                    continue;
                }
            }
            *v -= (j - *v) * (-rest / self.tau_rc).exp_m1();
            *v = v.max(self.min_voltage);
            return;
        }
    }
}

impl Lif {
    /// The step of every instance, in blocks of [`SOA_BLOCK`]. Fast path,
    /// a branch-free loop the compiler vectorises: an instance that is not
    /// refractory and stays below threshold takes the exact exponential
    /// step. Any other lane keeps its old state and is redone, in instance
    /// order, by the exact slow path. `READ_REFRACTORY` is false when no
    /// instance is refractory (then the fast loop skips that array).
    #[inline(always)]
    fn advance_blocks<const READ_REFRACTORY: bool, const NO_REFRACTORY_PERIOD: bool>(
        &self,
        voltage: &mut [f64],
        refractory: &mut [f64],
        dt: f64,
        input_currents: &[f64],
        spikes_out: &mut Vec<(usize, f64)>,
    ) -> bool {
        let decay = (-dt / self.tau_rc).exp_m1();
        let inv_rheobase = 1.0 / self.rheobase;
        let min_voltage = self.min_voltage;
        let mut pending = false;
        let mut slow = SlowLanes::new();
        for (block, ((vs, rs), is)) in voltage
            .chunks_mut(SOA_BLOCK)
            .zip(refractory.chunks_mut(SOA_BLOCK))
            .zip(input_currents.chunks(SOA_BLOCK))
            .enumerate()
        {
            let mut flags = [0u8; SOA_BLOCK];
            if READ_REFRACTORY {
                for (((v, r), &current), flag) in
                    vs.iter_mut().zip(rs.iter()).zip(is).zip(&mut flags)
                {
                    let j = current * inv_rheobase;
                    let stepped = (*v - (j - *v) * decay).max(min_voltage);
                    let needs_slow = (*r > 0.0) | (stepped >= LIF_FAST_LIMIT);
                    *flag = needs_slow as u8;
                    *v = if needs_slow { *v } else { stepped };
                }
            } else {
                for ((v, &current), flag) in vs.iter_mut().zip(is).zip(&mut flags) {
                    let j = current * inv_rheobase;
                    let stepped = (*v - (j - *v) * decay).max(min_voltage);
                    let needs_slow = stepped >= LIF_FAST_LIMIT;
                    *flag = needs_slow as u8;
                    *v = if needs_slow { *v } else { stepped };
                }
            }
            let mut mask = flag_mask(&flags);
            if !NO_REFRACTORY_PERIOD {
                // Every slow lane takes the exact update, in instance order.
                while mask != 0 {
                    let k = mask.trailing_zeros() as usize;
                    mask &= mask - 1;
                    let (v, r) = (&mut vs[k], &mut rs[k]);
                    let j = is[k] * inv_rheobase;
                    self.step_one(v, r, j, dt, block * SOA_BLOCK + k, spikes_out);
                    pending |= *r > 0.0;
                }
                continue;
            }
            // No refractory period: the slow lanes, in instance order, are
            // gathered so that their one-spike shortcut runs four lanes at
            // a time.
            let mut count = 0;
            while mask != 0 {
                let k = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                let (v, j) = (vs[k], is[k] * inv_rheobase);
                // The common slow case, one spike: after the reset at
                // t_s = τ ln((J − v)/(J − 1)),
                // v(dt) = J − J e^{−dt/τ} (J − v)/(J − 1): one logarithm.
                // (`rs[k]` may be left over from a former tau_ref > 0.)
                let shortcut = rs[k] <= 0.0 && j > 1.0 && v < 1.0;
                slow.lane[count] = k as u8;
                slow.shortcut[count] = shortcut;
                // Other lanes get a harmless ratio; they take `step_one`.
                slow.ratio[count] = if shortcut { (j - v) / (j - 1.0) } else { 1.0 };
                slow.current[count] = j;
                count += 1;
            }
            slow.take_logs(count);
            for m in 0..count {
                let k = slow.lane[m] as usize;
                let (v, r, j) = (&mut vs[k], &mut rs[k], slow.current[m]);
                let instance = block * SOA_BLOCK + k;
                if slow.shortcut[m] {
                    let after = j - j * (1.0 + decay) * slow.ratio[m];
                    if after < LIF_FAST_LIMIT {
                        spikes_out.push((instance, self.tau_rc * slow.log[m]));
                        *v = after.max(min_voltage);
                        continue;
                    }
                }
                self.step_one(v, r, j, dt, instance, spikes_out);
                pending |= *r > 0.0;
            }
        }
        pending
    }

    /// [`Self::advance_blocks`] compiled for AVX2 (four f64 lanes instead
    /// of SSE2's two; the same arithmetic, see [`with_wide_vectors`]).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn advance_blocks_avx2<const READ_REFRACTORY: bool, const NO_REFRACTORY_PERIOD: bool>(
        &self,
        voltage: &mut [f64],
        refractory: &mut [f64],
        dt: f64,
        input_currents: &[f64],
        spikes_out: &mut Vec<(usize, f64)>,
    ) -> bool {
        self.advance_blocks::<READ_REFRACTORY, NO_REFRACTORY_PERIOD>(
            voltage,
            refractory,
            dt,
            input_currents,
            spikes_out,
        )
    }

    /// [`Self::advance_blocks`], on AVX2 where `wide` and the CPU has it.
    fn dispatch_blocks<const READ_REFRACTORY: bool, const NO_REFRACTORY_PERIOD: bool>(
        &self,
        voltage: &mut [f64],
        refractory: &mut [f64],
        dt: f64,
        input_currents: &[f64],
        spikes_out: &mut Vec<(usize, f64)>,
        wide: bool,
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if wide && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU was just checked to support AVX2.
            return unsafe {
                self.advance_blocks_avx2::<READ_REFRACTORY, NO_REFRACTORY_PERIOD>(
                    voltage,
                    refractory,
                    dt,
                    input_currents,
                    spikes_out,
                )
            };
        }
        let _ = wide;
        self.advance_blocks::<READ_REFRACTORY, NO_REFRACTORY_PERIOD>(
            voltage,
            refractory,
            dt,
            input_currents,
            spikes_out,
        )
    }

    /// [`NeuronModel::advance`] with the vector width chosen by the caller
    /// (`wide`: AVX2 where the CPU has it), so tests can run both.
    fn advance_with(
        &mut self,
        dt: f64,
        input_currents: &[f64],
        spikes_out: &mut Vec<(usize, f64)>,
        wide: bool,
    ) -> Result<(), NeuronError> {
        check_args(self.voltage.len(), dt, input_currents)?;
        let mut voltage = std::mem::take(&mut self.voltage);
        let mut refractory = std::mem::take(&mut self.refractory);
        let (v, r, s) = (&mut voltage[..], &mut refractory[..], &mut *spikes_out);
        // Separate instances per case: without the array reads and the
        // shortcut code they do not need, the loops are leaner.
        let pending = match (self.refractory_pending, self.tau_ref == 0.0) {
            (true, true) => self.dispatch_blocks::<true, true>(v, r, dt, input_currents, s, wide),
            (true, false) => self.dispatch_blocks::<true, false>(v, r, dt, input_currents, s, wide),
            (false, true) => self.dispatch_blocks::<false, true>(v, r, dt, input_currents, s, wide),
            (false, false) => {
                self.dispatch_blocks::<false, false>(v, r, dt, input_currents, s, wide)
            }
        };
        self.refractory_pending = pending;
        self.voltage = voltage;
        self.refractory = refractory;
        Ok(())
    }
}

impl NeuronModel for Lif {
    fn len(&self) -> usize {
        self.voltage.len()
    }
    fn advance(
        &mut self,
        dt: f64,
        input_currents: &[f64],
        spikes_out: &mut Vec<(usize, f64)>,
    ) -> Result<(), NeuronError> {
        self.advance_with(dt, input_currents, spikes_out, true)
    }
    fn reset(&mut self) {
        self.voltage.fill(0.0);
        self.refractory.fill(0.0);
        self.refractory_pending = false;
    }
    fn membrane_voltages(&self) -> &[f64] {
        &self.voltage
    }
}

impl RateModel for Lif {
    /// r(J) = 1 / (τ_ref + τ_rc·ln(1 + 1/(J − 1))) for J > 1, else 0.
    fn rate(&self, current: f64) -> f64 {
        let j = current / self.rheobase;
        if j > 1.0 {
            1.0 / (self.tau_ref + self.tau_rc * (1.0 / (j - 1.0)).ln_1p())
        } else {
            0.0
        }
    }
}

/// Nengo's SpikingRectifiedLinear: a non-leaky integrate-and-fire neuron
/// whose rate is gain·max(I − threshold, 0) (Hz). The normalised voltage
/// integrates that rate; each whole unit is a spike.
#[derive(Clone, Debug)]
pub struct SpikingRelu {
    /// Hz per A above threshold.
    pub gain: f64,
    /// Input current below which the neuron is silent (A).
    pub threshold: f64,
    voltage: Vec<f64>,
}

impl SpikingRelu {
    pub fn new(n: usize, gain: f64, threshold: f64) -> Result<Self, NeuronError> {
        check_positive("gain", gain)?;
        if !threshold.is_finite() {
            return Err(NeuronError::InvalidParameter(format!(
                "threshold must be finite, got {threshold}"
            )));
        }
        Ok(SpikingRelu {
            gain,
            threshold,
            voltage: vec![0.0; n],
        })
    }
}

impl NeuronModel for SpikingRelu {
    fn len(&self) -> usize {
        self.voltage.len()
    }
    fn advance(
        &mut self,
        dt: f64,
        input_currents: &[f64],
        spikes_out: &mut Vec<(usize, f64)>,
    ) -> Result<(), NeuronError> {
        check_args(self.voltage.len(), dt, input_currents)?;
        with_wide_vectors(
            #[inline(always)]
            || {
                let (gain, threshold) = (self.gain, self.threshold);
                // Fast path (vectorised): lanes that do not reach 1 take the step;
                // the others keep their old voltage and are redone below.
                for (block, (vs, is)) in self
                    .voltage
                    .chunks_mut(SOA_BLOCK)
                    .zip(input_currents.chunks(SOA_BLOCK))
                    .enumerate()
                {
                    let mut flags = [0u8; SOA_BLOCK];
                    for ((v, &current), flag) in vs.iter_mut().zip(is).zip(&mut flags) {
                        let stepped = *v + gain * (current - threshold).max(0.0) * dt;
                        let needs_slow = stepped >= 1.0;
                        *flag = needs_slow as u8;
                        *v = if needs_slow { *v } else { stepped };
                    }
                    let mut mask = flag_mask(&flags);
                    while mask != 0 {
                        let k = mask.trailing_zeros() as usize;
                        mask &= mask - 1;
                        let (v, current) = (&mut vs[k], is[k]);
                        let rate = gain * (current - threshold).max(0.0);
                        let v0 = *v;
                        let stepped = v0 + rate * dt;
                        let count = stepped.floor();
                        if count >= 1.0 {
                            // The k-th spike is where the linear ramp crosses k.
                            for c in 1..=count as u64 {
                                spikes_out.push((block * SOA_BLOCK + k, (c as f64 - v0) / rate));
                            }
                            *v = stepped - count;
                        }
                    }
                }
            },
        );
        Ok(())
    }
    fn reset(&mut self) {
        self.voltage.fill(0.0);
    }
    fn membrane_voltages(&self) -> &[f64] {
        &self.voltage
    }
}

impl RateModel for SpikingRelu {
    fn rate(&self, current: f64) -> f64 {
        self.gain * (current - self.threshold).max(0.0)
    }
}

/// The analytic MIF (thesis eq. 1.5): between events
/// V(t) = V_inf + (V0 − V_inf)·e^{−t/τ}, τ = R_off·C, V_inf = E_rest +
/// R_off·I. When V reaches the effective threshold the neuron spikes and V
/// jumps to the post-spike voltage (the memristor's fast discharge, about
/// 20 µs in the circuit, is taken as instantaneous).
#[derive(Clone, Debug)]
pub struct AnalyticMif {
    /// Membrane capacitance (F).
    pub c: f64,
    /// Off-state resistance of the memristor, the leak (Ω).
    pub r_off: f64,
    /// Resting potential (V).
    pub e_rest: f64,
    /// Effective threshold: where the memristor snaps on (V).
    pub v_th: f64,
    /// Post-spike voltage: where the memristor snaps off again (V).
    pub v_reset: f64,
    voltage: Vec<f64>,
}

impl AnalyticMif {
    pub fn new(
        n: usize,
        c: f64,
        r_off: f64,
        e_rest: f64,
        v_th: f64,
        v_reset: f64,
    ) -> Result<Self, NeuronError> {
        check_positive("c", c)?;
        check_positive("r_off", r_off)?;
        if !(e_rest.is_finite() && v_th.is_finite() && v_reset.is_finite()) {
            return Err(NeuronError::InvalidParameter(
                "e_rest, v_th and v_reset must be finite".into(),
            ));
        }
        if !(v_reset < v_th && e_rest < v_th) {
            return Err(NeuronError::InvalidParameter(format!(
                "need v_reset ({v_reset}) and e_rest ({e_rest}) below v_th ({v_th})"
            )));
        }
        Ok(AnalyticMif {
            c,
            r_off,
            e_rest,
            v_th,
            v_reset,
            voltage: vec![e_rest; n],
        })
    }

    /// The default MIF of devices.md §4: C = 0.2 nF, R_off = 10 MΩ,
    /// E_rest = −70 mV, effective threshold −51.3 mV (M1 snaps on about
    /// 1.3 mV below E_rest + V_on) and post-spike voltage −67 mV.
    pub fn default_mif(n: usize) -> Self {
        AnalyticMif::new(n, 0.2e-9, 10e6, -70e-3, -51.3e-3, -67e-3).expect("constants are valid")
    }

    /// Membrane time constant R_off·C (s).
    pub fn tau(&self) -> f64 {
        self.r_off * self.c
    }

    #[inline]
    fn step_one(
        &self,
        v: &mut f64,
        current: f64,
        dt: f64,
        instance: usize,
        spikes: &mut Vec<(usize, f64)>,
    ) {
        let tau = self.tau();
        let v_inf = self.e_rest + self.r_off * current;
        let mut t = 0.0;
        loop {
            let rest = dt - t;
            if v_inf > self.v_th {
                let to_threshold = if *v >= self.v_th {
                    0.0
                } else {
                    tau * ((v_inf - *v) / (v_inf - self.v_th)).ln()
                };
                if to_threshold <= rest {
                    spikes.push((instance, t + to_threshold));
                    *v = self.v_reset;
                    t += to_threshold;
                    continue;
                }
            }
            *v -= (v_inf - *v) * (-rest / tau).exp_m1();
            return;
        }
    }
}

impl NeuronModel for AnalyticMif {
    fn len(&self) -> usize {
        self.voltage.len()
    }
    fn advance(
        &mut self,
        dt: f64,
        input_currents: &[f64],
        spikes_out: &mut Vec<(usize, f64)>,
    ) -> Result<(), NeuronError> {
        check_args(self.voltage.len(), dt, input_currents)?;
        let mut voltage = std::mem::take(&mut self.voltage);
        let this = &*self;
        with_wide_vectors(
            #[inline(always)]
            || {
                // Fast path (vectorised): an instance that stays below threshold
                // (with a relative margin, so that the exact crossing test of
                // `step_one` decides every close call) takes the exact step.
                let decay = (-dt / this.tau()).exp_m1();
                let (e_rest, r_off, v_th) = (this.e_rest, this.r_off, this.v_th);
                let limit = v_th - FAST_MARGIN * (v_th.abs() + (v_th - this.v_reset).abs());
                let mut slow = SlowLanes::new();
                for (block, (vs, is)) in voltage
                    .chunks_mut(SOA_BLOCK)
                    .zip(input_currents.chunks(SOA_BLOCK))
                    .enumerate()
                {
                    let mut flags = [0u8; SOA_BLOCK];
                    for ((v, &current), flag) in vs.iter_mut().zip(is).zip(&mut flags) {
                        let v_inf = e_rest + r_off * current;
                        let stepped = *v - (v_inf - *v) * decay;
                        let needs_slow = (stepped >= limit) | (*v >= limit);
                        *flag = needs_slow as u8;
                        *v = if needs_slow { *v } else { stepped };
                    }
                    // The slow lanes, in instance order, gathered so that
                    // their one-spike shortcut runs four lanes at a time.
                    let mut mask = flag_mask(&flags);
                    let mut count = 0;
                    while mask != 0 {
                        let k = mask.trailing_zeros() as usize;
                        mask &= mask - 1;
                        let v = vs[k];
                        // The common slow case, one spike: after the reset at
                        // t_s = τ ln((V_inf − V)/(V_inf − V_th)),
                        // V(dt) = V_inf − (V_inf − V_reset) e^{−dt/τ} e^{t_s/τ}.
                        let v_inf = e_rest + r_off * is[k];
                        let shortcut = v_inf > v_th && v < v_th;
                        slow.lane[count] = k as u8;
                        slow.shortcut[count] = shortcut;
                        slow.ratio[count] = if shortcut {
                            (v_inf - v) / (v_inf - v_th)
                        } else {
                            1.0
                        };
                        slow.current[count] = v_inf;
                        count += 1;
                    }
                    slow.take_logs(count);
                    for m in 0..count {
                        let k = slow.lane[m] as usize;
                        let (v, v_inf) = (&mut vs[k], slow.current[m]);
                        let instance = block * SOA_BLOCK + k;
                        if slow.shortcut[m] {
                            let after =
                                v_inf - (v_inf - this.v_reset) * (1.0 + decay) * slow.ratio[m];
                            if after < limit {
                                spikes_out.push((instance, this.tau() * slow.log[m]));
                                *v = after;
                                continue;
                            }
                        }
                        this.step_one(v, is[k], dt, instance, spikes_out);
                    }
                }
            },
        );
        self.voltage = voltage;
        Ok(())
    }
    fn reset(&mut self) {
        self.voltage.fill(self.e_rest);
    }
    fn membrane_voltages(&self) -> &[f64] {
        &self.voltage
    }
}

impl RateModel for AnalyticMif {
    /// r(I) = 1 / (τ·ln((V_inf − V_reset)/(V_inf − V_th))) when V_inf > V_th, else 0.
    fn rate(&self, current: f64) -> f64 {
        let v_inf = self.e_rest + self.r_off * current;
        if v_inf > self.v_th {
            1.0 / (self.tau() * ((v_inf - self.v_reset) / (v_inf - self.v_th)).ln())
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulated rate over `steps` steps of dt: (spikes − 1)/(last − first).
    fn simulated_rate(model: &mut dyn NeuronModel, current: f64, dt: f64, steps: usize) -> f64 {
        let inputs = vec![current; model.len()];
        let mut times = Vec::new();
        let mut spikes = Vec::new();
        for k in 0..steps {
            spikes.clear();
            model.advance(dt, &inputs, &mut spikes).unwrap();
            times.extend(
                spikes
                    .iter()
                    .filter(|s| s.0 == 0)
                    .map(|s| k as f64 * dt + s.1),
            );
        }
        crate::neuron::rate_from_spikes(&times)
    }

    #[test]
    fn lif_rate_matches_the_analytic_circuit_formula() {
        // devices.md §3: f = 1/(τ ln(RI/(RI − 20 mV))), R = 10 MΩ, τ = 2 ms.
        let lif = Lif::circuit_equivalent(1);
        for (i, want) in [(2.1e-9, 164.23), (2.4e-9, 279.06), (3.0e-9, 455.12)] {
            let r: f64 = 10e6 * i;
            let formula = 1.0 / (2e-3 * (r / (r - 20e-3)).ln());
            assert!((lif.rate(i) - formula).abs() < 1e-9 * formula);
            assert!(
                (lif.rate(i) - want).abs() < 0.01,
                "{} vs table {want}",
                lif.rate(i)
            );
        }
        assert_eq!(lif.rate(1.99e-9), 0.0);
    }

    #[test]
    fn lif_simulation_reproduces_its_rate_for_any_dt_and_refractory_period() {
        for tau_ref in [0.0, 2e-3, 0.7e-3] {
            let mut lif = Lif::new(2, 20e-3, tau_ref, 1e-9).unwrap();
            for current in [1.3e-9, 2.5e-9, 10e-9] {
                for dt in [1e-3, 0.1e-3, 7e-3] {
                    lif.reset();
                    let got = simulated_rate(&mut lif, current, dt, (3.0 / dt) as usize);
                    let want = lif.rate(current);
                    assert!(
                        (got - want).abs() < 1e-6 * want,
                        "tau_ref {tau_ref} I {current} dt {dt}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn lif_spike_time_is_the_exact_threshold_crossing() {
        // From v = 0 with J = 2: v(t) = 2(1 − e^{−t/τ}) hits 1 at τ ln 2.
        let mut lif = Lif::new(1, 10e-3, 0.0, 1e-9).unwrap();
        let mut spikes = Vec::new();
        lif.advance(10e-3, &[2e-9], &mut spikes).unwrap();
        assert_eq!(spikes.len(), 1);
        assert!((spikes[0].1 - 10e-3 * 2f64.ln()).abs() < 1e-15);
        // Below threshold: the exact exponential, no spike.
        lif.reset();
        spikes.clear();
        lif.advance(5e-3, &[0.5e-9], &mut spikes).unwrap();
        assert!(spikes.is_empty());
        assert!((lif.membrane_voltages()[0] - 0.5 * (1.0 - (-0.5f64).exp())).abs() < 1e-15);
    }

    #[test]
    fn lif_refractory_period_carries_into_the_next_step() {
        // J huge: spike almost at once, then silent for tau_ref = 2.5 steps.
        let mut lif = Lif::new(1, 20e-3, 2.5e-3, 1e-12).unwrap();
        let mut spikes = Vec::new();
        let mut per_step = Vec::new();
        for _ in 0..6 {
            spikes.clear();
            lif.advance(1e-3, &[1e-6], &mut spikes).unwrap();
            per_step.push(spikes.len());
        }
        assert_eq!(per_step, vec![1, 0, 1, 0, 0, 1]);
    }

    #[test]
    fn spiking_relu_counts_floor_of_integrated_rate() {
        let mut relu = SpikingRelu::new(3, 100e9, 1e-9).unwrap(); // 100 Hz per nA above 1 nA
        let inputs = [0.5e-9, 2.0e-9, 3.5e-9];
        assert_eq!(relu.rate(inputs[0]), 0.0);
        assert!((relu.rate(inputs[1]) - 100.0).abs() < 1e-9);
        let mut spikes = Vec::new();
        for _ in 0..1000 {
            relu.advance(1e-3, &inputs, &mut spikes).unwrap();
        }
        let count = |i| spikes.iter().filter(|s| s.0 == i).count();
        assert_eq!(count(0), 0);
        // 1 s at 100 Hz and 250 Hz (floating point may leave the last one pending).
        assert!((99..=100).contains(&count(1)), "{}", count(1));
        assert!((249..=250).contains(&count(2)), "{}", count(2));
        assert!(spikes.iter().all(|s| (0.0..=1e-3).contains(&s.1)));
        let simulated = simulated_rate(
            &mut SpikingRelu::new(1, 100e9, 1e-9).unwrap(),
            3.5e-9,
            1e-3,
            1000,
        );
        assert!((simulated - 250.0).abs() < 1e-6, "{simulated}");
    }

    #[test]
    fn analytic_mif_rate_formula_and_simulation_agree() {
        let mut mif = AnalyticMif::default_mif(1);
        assert_eq!(mif.rate(1.8e-9), 0.0); // V_inf = −52 mV, below threshold
        for current in [2.0e-9, 2.4e-9, 3.0e-9] {
            let v_inf: f64 = -70e-3 + 10e6 * current;
            let want = 1.0 / (2e-3 * ((v_inf + 67e-3) / (v_inf + 51.3e-3)).ln());
            assert!((mif.rate(current) - want).abs() < 1e-9 * want);
            mif.reset();
            let got = simulated_rate(&mut mif, current, 1e-3, 2000);
            assert!((got - want).abs() < 1e-6 * want, "{got} vs {want}");
        }
    }

    #[test]
    fn analytic_mif_is_close_to_the_circuit_mif_table() {
        // devices.md §7, MIF ngspice column. The analytic model ignores the
        // ~20 µs discharge, so it runs a little fast at high rates.
        let mif = AnalyticMif::default_mif(1);
        for (current, table) in [(2.0e-9, 193.21), (2.4e-9, 357.38), (3.0e-9, 559.55)] {
            let r = mif.rate(current);
            assert!(
                (r - table).abs() < 0.04 * table,
                "{current}: {r} vs {table}"
            );
        }
    }

    /// Same spikes (instances equal, times within 1e-15 s) and voltages
    /// within `v_tol`.
    fn assert_close(
        name: &str,
        got: &[(usize, f64)],
        want: &[(usize, f64)],
        v_got: &[f64],
        v_want: &[f64],
        v_tol: f64,
    ) {
        assert_eq!(got.len(), want.len(), "{name}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                g.0 == w.0 && (g.1 - w.1).abs() < 1e-15,
                "{name} {g:?} {w:?}"
            );
        }
        for (g, w) in v_got.iter().zip(v_want) {
            assert!((g - w).abs() < v_tol, "{name} {g} {w}");
        }
    }

    /// Mixed population (silent, near threshold, several spikes per step):
    /// the vectorised fast path and its one-spike shortcut give what the
    /// scalar exact update gives instance by instance, up to rounding.
    #[test]
    fn fast_path_equals_the_scalar_exact_update() {
        let n = 300;
        let inputs: Vec<f64> = (0..n)
            .map(|i| (i as f64 * 0.37).sin().abs() * 40e-9)
            .collect();
        let dt = 1e-3;
        // τ_ref = 0 takes the one-spike shortcut; the refractory case is
        // covered by the rate tests above.
        let mut lif = Lif::new(n, 5e-3, 0.0, 2e-9).unwrap();
        let mut mif = AnalyticMif::default_mif(n);
        let mut relu = SpikingRelu::new(n, 100e9, 1e-9).unwrap();
        let (mut lif_v, mut lif_r) = (vec![0.0; n], vec![0.0; n]);
        let mut mif_v = vec![mif.e_rest; n];
        let mut relu_v = vec![0.0; n];
        let mut got = Vec::new();
        let mut want = Vec::new();
        for _ in 0..200 {
            got.clear();
            want.clear();
            lif.advance(dt, &inputs, &mut got).unwrap();
            let scalar = lif.clone();
            for (i, &current) in inputs.iter().enumerate() {
                let j = current * (1.0 / scalar.rheobase);
                scalar.step_one(&mut lif_v[i], &mut lif_r[i], j, dt, i, &mut want);
            }
            // The one-spike shortcut differs from `step_one` by rounding only.
            assert_close("LIF", &got, &want, lif.membrane_voltages(), &lif_v, 1e-12);
            lif_v.copy_from_slice(lif.membrane_voltages());

            got.clear();
            want.clear();
            mif.advance(dt, &inputs, &mut got).unwrap();
            for (i, &current) in inputs.iter().enumerate() {
                mif.step_one(&mut mif_v[i], current, dt, i, &mut want);
            }
            assert_close("MIF", &got, &want, mif.membrane_voltages(), &mif_v, 1e-15);
            mif_v.copy_from_slice(mif.membrane_voltages());

            got.clear();
            want.clear();
            relu.advance(dt, &inputs, &mut got).unwrap();
            for (i, &current) in inputs.iter().enumerate() {
                let rate = relu.gain * (current - relu.threshold).max(0.0);
                let v0 = relu_v[i];
                relu_v[i] += rate * dt;
                let count = relu_v[i].floor();
                for c in 1..=count as u64 {
                    want.push((i, (c as f64 - v0) / rate));
                }
                relu_v[i] -= count;
            }
            assert_eq!(got, want, "IF");
            assert_eq!(relu.membrane_voltages(), &relu_v[..]);
        }
        assert!(want.len() > 10);
    }

    /// Inputs redrawn at random every step (J from −0.5 to 1, just above
    /// threshold, up to 60: several spikes per step), with and without a
    /// refractory period, on both vector widths: the fast path gives what
    /// the scalar exact update `step_one` gives instance by instance.
    #[test]
    fn lif_fast_path_equals_step_one_on_random_inputs() {
        let mut rng = crate::train::rng::SplitMix64::new(7);
        let mut uniform = move || rng.next_u64() as f64 / u64::MAX as f64;
        let (n, dt, rheobase) = (517, 1e-3, 2e-9); // n: a partial last block
        for tau_ref in [0.0, 0.3e-3, 2.5e-3] {
            for wide in [false, true] {
                let mut lif = Lif::new(n, 5e-3, tau_ref, rheobase).unwrap();
                let (mut v, mut r) = (vec![0.0; n], vec![0.0; n]);
                let (mut got, mut want) = (Vec::new(), Vec::new());
                let (mut multi, mut carried, mut silent) = (0, 0, 0);
                for _ in 0..300 {
                    let inputs: Vec<f64> = (0..n)
                        .map(|_| {
                            let (u, x) = (uniform(), uniform());
                            let j = if u < 0.05 {
                                1.0
                            } else if u < 0.3 {
                                -0.5 + 1.5 * x
                            } else if u < 0.6 {
                                1.0 + 0.5 * x
                            } else if u < 0.9 {
                                1.5 + 3.5 * x
                            } else {
                                5.0 + 55.0 * x
                            };
                            j * rheobase
                        })
                        .collect();
                    got.clear();
                    want.clear();
                    lif.advance_with(dt, &inputs, &mut got, wide).unwrap();
                    for (i, &current) in inputs.iter().enumerate() {
                        let j = current * (1.0 / rheobase);
                        silent += usize::from(j <= 1.0);
                        lif.step_one(&mut v[i], &mut r[i], j, dt, i, &mut want);
                    }
                    assert_eq!(got.len(), want.len(), "tau_ref {tau_ref} wide {wide}");
                    for (g, w) in got.iter().zip(&want) {
                        assert!(
                            g.0 == w.0 && (g.1 - w.1).abs() <= 1e-12 * w.1.abs().max(1e-6),
                            "tau_ref {tau_ref} wide {wide}: {g:?} vs {w:?}"
                        );
                    }
                    multi += got.windows(2).filter(|p| p[0].0 == p[1].0).count();
                    for ((g, w), (gr, wr)) in lif
                        .membrane_voltages()
                        .iter()
                        .zip(&v)
                        .zip(lif.refractory.iter().zip(&r))
                    {
                        assert!((g - w).abs() <= 1e-12, "tau_ref {tau_ref}: {g} vs {w}");
                        assert!((gr - wr).abs() <= 1e-15, "tau_ref {tau_ref}: {gr} vs {wr}");
                        carried += usize::from(*gr > 0.0);
                    }
                    // Rounding differences must not accumulate: restart the
                    // reference from the state under test.
                    v.copy_from_slice(lif.membrane_voltages());
                    r.copy_from_slice(&lif.refractory);
                }
                // Two spikes in one step need tau_ref < dt.
                if tau_ref < dt {
                    assert!(multi > 1000, "tau_ref {tau_ref}: {multi} repeated spikes");
                }
                assert!(silent > 10_000);
                if tau_ref > 0.0 {
                    assert!(carried > 1000, "tau_ref {tau_ref}: {carried}");
                } else {
                    assert_eq!(carried, 0);
                }
            }
        }
    }

    #[test]
    fn vector_logarithm_is_within_a_few_ulp_of_the_library_one() {
        let mut xs = vec![
            1.0,
            1.0 + f64::EPSILON,
            std::f64::consts::SQRT_2,
            2.0,
            1e300,
        ];
        let mut x = 1.0f64;
        while x < 1e12 {
            xs.push(x);
            x *= 1.000_37;
        }
        xs.extend((1..1000).map(|k| 1.0 + k as f64 * 1e-9));
        for chunk in xs.chunks(4) {
            let mut four = [1.0; 4];
            four[..chunk.len()].copy_from_slice(chunk);
            for (got, &x) in ln4_from_one(four).iter().zip(&four) {
                let want = x.ln();
                assert!(
                    (got - want).abs() <= 4.0 * f64::EPSILON * want.abs(),
                    "ln {x}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn a_non_finite_input_is_named_by_its_instance() {
        let mut lif = Lif::circuit_equivalent(20);
        let mut inputs = vec![1e-9; 20];
        let mut spikes = Vec::new();
        for (bad, value) in [(13, f64::INFINITY), (0, f64::NAN), (19, f64::NEG_INFINITY)] {
            inputs[bad] = value;
            assert!(matches!(
                lif.advance(1e-3, &inputs, &mut spikes),
                Err(NeuronError::InvalidInput { instance, .. }) if instance == bad
            ));
            inputs[bad] = 1e-9;
        }
        assert!(lif.advance(1e-3, &inputs, &mut spikes).is_ok());
        assert!(lif.membrane_voltages().iter().all(|&v| v > 0.0));
    }

    #[test]
    fn bad_parameters_are_errors() {
        assert!(Lif::new(1, 0.0, 0.0, 1e-9).is_err());
        assert!(Lif::new(1, 1e-3, -1.0, 1e-9).is_err());
        assert!(SpikingRelu::new(1, -1.0, 0.0).is_err());
        assert!(AnalyticMif::new(1, 0.2e-9, 10e6, -70e-3, -80e-3, -67e-3).is_err());
        let mut lif = Lif::circuit_equivalent(2);
        let mut s = Vec::new();
        assert!(matches!(
            lif.advance(1e-3, &[0.0], &mut s),
            Err(NeuronError::InputLength {
                expected: 2,
                got: 1
            })
        ));
        assert!(matches!(
            lif.advance(0.0, &[0.0, 0.0], &mut s),
            Err(NeuronError::InvalidStep(_))
        ));
        assert!(matches!(
            lif.advance(1e-3, &[0.0, f64::NAN], &mut s),
            Err(NeuronError::InvalidInput { instance: 1, .. })
        ));
    }
}
