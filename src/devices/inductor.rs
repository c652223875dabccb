//! Linear inductor with its current i as an unknown:
//! KCL gets ±i, and the branch row is v_a − v_b − d(L i)/dt = 0.

use super::*;

#[derive(Clone, Debug)]
pub struct Inductor {
    pub name: String,
    pub a: Node,
    pub b: Node,
    pub inductance: f64,
    /// Initial current, used with UIC.
    pub ic: Option<f64>,
    pub branch: usize,
    s_ai: Slot,
    s_bi: Slot,
    s_ia: Slot,
    s_ib: Slot,
    s_ii: Slot,
}

impl Inductor {
    pub fn new(name: String, a: Node, b: Node, inductance: f64, ic: Option<f64>) -> Self {
        Inductor {
            name,
            a,
            b,
            inductance,
            ic,
            branch: 0,
            s_ai: None,
            s_bi: None,
            s_ia: None,
            s_ib: None,
            s_ii: None,
        }
    }
}

impl Device for Inductor {
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
        self.s_ai = p.entry(self.a, i);
        self.s_bi = p.entry(self.b, i);
        self.s_ia = p.entry(i, self.a);
        self.s_ib = p.entry(i, self.b);
        self.s_ii = p.entry(i, i);
    }
    fn eval(&self, ctx: &EvalCtx, s: &mut Stamp) {
        let i = ctx.x[self.branch];
        let br = Some(self.branch);
        s.branch_current(self.a, self.b, self.s_ai, self.s_bi, i);
        s.f(br, ctx.v(self.a) - ctx.v(self.b));
        s.jf(self.s_ia, 1.0);
        s.jf(self.s_ib, -1.0);
        s.q(br, -self.inductance * i);
        s.jq(self.s_ii, -self.inductance);
    }
    fn initial_condition(&self, x: &mut [f64]) {
        if let Some(ic) = self.ic {
            x[self.branch] = ic;
        }
    }
    fn dc_paths(&self) -> Vec<(Node, Node)> {
        vec![(self.a, self.b)]
    }
    fn terminals(&self) -> Vec<Node> {
        vec![self.a, self.b]
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
