//! Independent current source: the current flows from the + terminal
//! through the source to the − terminal (out of n+, into n−), as in SPICE.

use super::waveform::SourceFn;
use super::*;

#[derive(Clone, Debug)]
pub struct ISource {
    pub name: String,
    pub pos: Node,
    pub neg: Node,
    /// The value for `.op` and `.dc`.
    pub dc: f64,
    /// The time function for `.tran` (DC when absent).
    pub waveform: Option<SourceFn>,
}

impl ISource {
    pub fn new(name: String, pos: Node, neg: Node, dc: f64, waveform: Option<SourceFn>) -> Self {
        ISource {
            name,
            pos,
            neg,
            dc,
            waveform,
        }
    }
}

impl ISource {
    /// The source value the analysis asks for: DC for `.op`/`.dc`, the
    /// waveform at the current time for `.tran`.
    pub fn value(&self, ctx: &EvalCtx) -> f64 {
        match &self.waveform {
            Some(w) if !ctx.dc_analysis => w.value(ctx.time),
            _ => self.dc,
        }
    }
}

impl Device for ISource {
    fn name(&self) -> &str {
        &self.name
    }
    fn setup(&mut self, _p: &mut dyn Pattern) {}
    fn eval(&self, ctx: &EvalCtx, s: &mut Stamp) {
        let i = ctx.source_scale * self.value(ctx);
        s.f(self.pos, i);
        s.f(self.neg, -i);
    }
    fn set_dc_value(&mut self, v: f64) -> Option<f64> {
        Some(std::mem::replace(&mut self.dc, v))
    }
    fn breakpoints(&self, tstop: f64, out: &mut Vec<f64>) {
        if let Some(w) = &self.waveform {
            w.breakpoints(tstop, out);
        }
    }
    fn probes(&self) -> Vec<Probe> {
        vec![Probe {
            name: format!("i({})", self.name),
            kind: SignalKind::Current,
        }]
    }
    fn probe_values(&self, ctx: &EvalCtx, out: &mut Vec<f64>) {
        out.push(ctx.source_scale * self.value(ctx));
    }
    fn dc_paths(&self) -> Vec<(Node, Node)> {
        Vec::new()
    }
    fn terminals(&self) -> Vec<Node> {
        vec![self.pos, self.neg]
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
