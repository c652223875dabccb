//! Linear capacitor: q = C (v_a − v_b).

use super::*;

#[derive(Clone, Debug)]
pub struct Capacitor {
    pub name: String,
    pub a: Node,
    pub b: Node,
    pub capacitance: f64,
    /// Initial voltage v_a − v_b, used with UIC.
    pub ic: Option<f64>,
    slots: Slots2,
}

impl Capacitor {
    pub fn new(name: String, a: Node, b: Node, capacitance: f64, ic: Option<f64>) -> Self {
        Capacitor {
            name,
            a,
            b,
            capacitance,
            ic,
            slots: Slots2::default(),
        }
    }
}

impl Device for Capacitor {
    fn name(&self) -> &str {
        &self.name
    }
    fn setup(&mut self, p: &mut dyn Pattern) {
        self.slots = Slots2::new(p, self.a, self.b);
    }
    fn eval(&self, ctx: &EvalCtx, s: &mut Stamp) {
        let q = self.capacitance * (ctx.v(self.a) - ctx.v(self.b));
        s.q(self.a, q);
        s.q(self.b, -q);
        self.slots.capacitance(s, self.capacitance);
    }
    fn initial_condition(&self, x: &mut [f64]) {
        if let (Some(ic), Some(a)) = (self.ic, self.a) {
            x[a] = self.b.map_or(0.0, |b| x[b]) + ic;
        }
    }
    fn dc_paths(&self) -> Vec<(Node, Node)> {
        Vec::new()
    }
    fn terminals(&self) -> Vec<Node> {
        vec![self.a, self.b]
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
