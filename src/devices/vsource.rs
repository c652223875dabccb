//! Independent voltage source with its branch current as an unknown.
//! SPICE sign convention: i(V) is the current flowing into the + terminal
//! from the circuit, through the source, out of the − terminal.

use super::waveform::SourceFn;
use super::*;

#[derive(Clone, Debug)]
pub struct VSource {
    pub name: String,
    pub pos: Node,
    pub neg: Node,
    /// The value for `.op` and `.dc`.
    pub dc: f64,
    /// The time function for `.tran` (DC when absent).
    pub waveform: Option<SourceFn>,
    pub branch: usize,
    s_pi: Slot,
    s_ni: Slot,
    s_ip: Slot,
    s_in: Slot,
}

impl VSource {
    pub fn new(name: String, pos: Node, neg: Node, dc: f64, waveform: Option<SourceFn>) -> Self {
        VSource {
            name,
            pos,
            neg,
            dc,
            waveform,
            branch: 0,
            s_pi: None,
            s_ni: None,
            s_ip: None,
            s_in: None,
        }
    }
}

impl VSource {
    /// The source value the analysis asks for: DC for `.op`/`.dc`, the
    /// waveform at the current time for `.tran`.
    pub fn value(&self, ctx: &EvalCtx) -> f64 {
        match &self.waveform {
            Some(w) if !ctx.dc_analysis => w.value(ctx.time),
            _ => self.dc,
        }
    }
}

impl Device for VSource {
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
        self.s_pi = p.entry(self.pos, i);
        self.s_ni = p.entry(self.neg, i);
        self.s_ip = p.entry(i, self.pos);
        self.s_in = p.entry(i, self.neg);
    }
    fn eval(&self, ctx: &EvalCtx, s: &mut Stamp) {
        let i = ctx.x[self.branch];
        s.branch_current(self.pos, self.neg, self.s_pi, self.s_ni, i);
        let target = ctx.source_scale * self.value(ctx);
        s.f(
            Some(self.branch),
            ctx.v(self.pos) - ctx.v(self.neg) - target,
        );
        s.jf(self.s_ip, 1.0);
        s.jf(self.s_in, -1.0);
    }
    fn set_dc_value(&mut self, v: f64) -> Option<f64> {
        Some(std::mem::replace(&mut self.dc, v))
    }
    fn breakpoints(&self, tstop: f64, out: &mut Vec<f64>) {
        if let Some(w) = &self.waveform {
            w.breakpoints(tstop, out);
        }
    }
    fn dc_paths(&self) -> Vec<(Node, Node)> {
        vec![(self.pos, self.neg)]
    }
    fn voltage_defined(&self) -> Option<(Node, Node)> {
        Some((self.pos, self.neg))
    }
    fn terminals(&self) -> Vec<Node> {
        vec![self.pos, self.neg]
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
