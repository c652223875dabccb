//! The LIF reset event device (`YRESET name mem ref model`, `.MODEL m
//! NRESET VTH= VRESET= TREF=`): when v(mem,ref) rises through VTH the
//! solver lands a step on the crossing, and the device sets
//! v(mem) := v(ref) + VRESET. With TREF > 0 it then holds that voltage for
//! TREF as an ideal source; otherwise its branch carries no current.

use super::*;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResetModel {
    pub vth: f64,
    pub vreset: f64,
    pub tref: f64,
}

impl Default for ResetModel {
    fn default() -> Self {
        ResetModel {
            vth: 20e-3,
            vreset: 0.0,
            tref: 0.0,
        }
    }
}

impl ResetModel {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.vreset < self.vth) {
            return Err(format!(
                "VRESET ({}) must be below VTH ({})",
                self.vreset, self.vth
            ));
        }
        if !(self.tref >= 0.0 && self.tref.is_finite()) {
            return Err(format!("TREF must be >= 0, got {}", self.tref));
        }
        Ok(())
    }
}

/// How far below VTH the exact linear step hands over to the integrator (V).
const QUIESCENT_MARGIN_V: f64 = 1e-6;

#[derive(Clone, Debug)]
pub struct Reset {
    pub name: String,
    pub mem: Node,
    pub reference: Node,
    pub model: ResetModel,
    pub branch: usize,
    /// While clamped (refractory), the time the clamp ends.
    clamped_until: Option<f64>,
    slots: [Slot; 5],
}

impl Reset {
    pub fn new(name: String, mem: Node, reference: Node, model: ResetModel) -> Self {
        Reset {
            name,
            mem,
            reference,
            model,
            branch: 0,
            clamped_until: None,
            slots: [None; 5],
        }
    }
}

impl Device for Reset {
    fn name(&self) -> &str {
        &self.name
    }
    fn extra_unknowns(&self) -> Vec<(&'static str, UnknownKind)> {
        vec![("", UnknownKind::Current)]
    }
    fn bind_extra(&mut self, first: usize) {
        self.branch = first;
    }
    fn setup(&mut self, p: &mut dyn Pattern) {
        let i = Some(self.branch);
        self.slots = [
            p.entry(self.mem, i),
            p.entry(self.reference, i),
            p.entry(i, self.mem),
            p.entry(i, self.reference),
            p.entry(i, i),
        ];
    }
    fn eval(&self, ctx: &EvalCtx, s: &mut Stamp) {
        let i = ctx.x[self.branch];
        let [mi, ri, im, ir, ii] = self.slots;
        s.branch_current(self.mem, self.reference, mi, ri, i);
        let br = Some(self.branch);
        if self.clamped_until.is_some() {
            s.f(
                br,
                ctx.v(self.mem) - ctx.v(self.reference) - self.model.vreset,
            );
            s.jf(im, 1.0);
            s.jf(ir, -1.0);
        } else {
            s.f(br, i);
            s.jf(ii, 1.0);
        }
    }
    fn quiescent(&self, _x: &[f64], bounds: &mut Vec<QuiescentBound>) -> bool {
        if self.clamped_until.is_some() {
            return false;
        }
        // Stop just short of the threshold, so that the integrator sees
        // the crossing and locates the event itself.
        bounds.push(QuiescentBound {
            plus: self.mem,
            minus: self.reference,
            enter: self.model.vth - 2.0 * QUIESCENT_MARGIN_V,
            leave: self.model.vth - QUIESCENT_MARGIN_V,
        });
        true
    }
    fn event_count(&self) -> usize {
        1
    }
    fn event_indicator(&self, _k: usize, x: &[f64]) -> f64 {
        if self.clamped_until.is_some() {
            return -1.0;
        }
        let at = |n: Node| n.map_or(0.0, |i| x[i]);
        at(self.mem) - at(self.reference) - self.model.vth
    }
    fn fire(&mut self, _k: usize, time: f64, x: &mut [f64]) -> bool {
        if let Some(m) = self.mem {
            x[m] = self.reference.map_or(0.0, |r| x[r]) + self.model.vreset;
        }
        if self.model.tref > 0.0 {
            self.clamped_until = Some(time + self.model.tref);
        }
        true
    }
    /// The reset moves charge Q out of `mem` through itself (all of the
    /// change in `mem`'s capacitive charge: no other element there carries
    /// an impulse). With linear capacitors the port voltage falls linearly
    /// in the charge moved, so ∫ v dq = ½ (v_before + v_after) · Q: for a
    /// membrane C reset by ΔV to a fixed reference, the ½ C ΔV² that a
    /// capacitor discharged through any switch loses.
    fn jump_dissipation(&self, before: (&[f64], &[f64]), after: (&[f64], &[f64])) -> f64 {
        let Some(m) = self.mem else {
            return 0.0;
        };
        let port = |x: &[f64]| x[m] - self.reference.map_or(0.0, |r| x[r]);
        let moved = before.1[m] - after.1[m];
        0.5 * (port(before.0) + port(after.0)) * moved
    }
    fn next_timed_change(&self, time: f64) -> Option<f64> {
        self.clamped_until.filter(|&t| t > time)
    }
    fn timed_change(&mut self, _time: f64) {
        self.clamped_until = None;
    }
    fn reset_state(&mut self) {
        self.clamped_until = None;
    }
    fn dc_paths(&self) -> Vec<(Node, Node)> {
        Vec::new()
    }
    fn terminals(&self) -> Vec<Node> {
        vec![self.mem, self.reference]
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
