//! Linear resistor: i = (v_a − v_b)/R flows a → b.

use super::*;

#[derive(Clone, Debug)]
pub struct Resistor {
    pub name: String,
    pub a: Node,
    pub b: Node,
    pub resistance: f64,
    slots: Slots2,
}

impl Resistor {
    pub fn new(name: String, a: Node, b: Node, resistance: f64) -> Self {
        Resistor {
            name,
            a,
            b,
            resistance,
            slots: Slots2::default(),
        }
    }
}

impl Device for Resistor {
    fn name(&self) -> &str {
        &self.name
    }
    fn setup(&mut self, p: &mut dyn Pattern) {
        self.slots = Slots2::new(p, self.a, self.b);
    }
    fn eval(&self, ctx: &EvalCtx, s: &mut Stamp) {
        let g = 1.0 / self.resistance;
        let i = g * (ctx.v(self.a) - ctx.v(self.b));
        s.f(self.a, i);
        s.f(self.b, -i);
        self.slots.conductance(s, g);
    }
    fn power(&self, ctx: &EvalCtx) -> f64 {
        let v = ctx.v(self.a) - ctx.v(self.b);
        v * v / self.resistance
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
