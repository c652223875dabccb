//! Linear voltage-controlled voltage source E: v(p,n) = gain · v(cp,cn),
//! with its output current as an unknown.

use super::*;

#[derive(Clone, Debug)]
pub struct Vcvs {
    pub name: String,
    pub pos: Node,
    pub neg: Node,
    pub cpos: Node,
    pub cneg: Node,
    pub gain: f64,
    pub branch: usize,
    slots: [Slot; 6],
}

impl Vcvs {
    pub fn new(name: String, pos: Node, neg: Node, cpos: Node, cneg: Node, gain: f64) -> Self {
        Vcvs {
            name,
            pos,
            neg,
            cpos,
            cneg,
            gain,
            branch: 0,
            slots: [None; 6],
        }
    }
}

impl Device for Vcvs {
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
            p.entry(self.pos, i),
            p.entry(self.neg, i),
            p.entry(i, self.pos),
            p.entry(i, self.neg),
            p.entry(i, self.cpos),
            p.entry(i, self.cneg),
        ];
    }
    fn eval(&self, ctx: &EvalCtx, s: &mut Stamp) {
        let i = ctx.x[self.branch];
        let [pi, ni, ip, inn, icp, icn] = self.slots;
        s.branch_current(self.pos, self.neg, pi, ni, i);
        let r =
            ctx.v(self.pos) - ctx.v(self.neg) - self.gain * (ctx.v(self.cpos) - ctx.v(self.cneg));
        s.f(Some(self.branch), r);
        s.jf(ip, 1.0);
        s.jf(inn, -1.0);
        s.jf(icp, -self.gain);
        s.jf(icn, self.gain);
    }
    fn dc_paths(&self) -> Vec<(Node, Node)> {
        vec![(self.pos, self.neg)]
    }
    fn voltage_defined(&self) -> Option<(Node, Node)> {
        Some((self.pos, self.neg))
    }
    fn terminals(&self) -> Vec<Node> {
        vec![self.pos, self.neg, self.cpos, self.cneg]
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
