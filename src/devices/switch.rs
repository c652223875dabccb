//! Voltage-controlled switch S with hysteresis (SPICE `sw` model): it turns
//! on when v(cp,cn) rises above VT+VH and off when it falls below VT−VH.
//! The switching instants are located in time as events, so the
//! conductance is piecewise constant and Newton never sees the jump.

use super::*;

#[derive(Clone, Debug, PartialEq)]
pub struct SwitchModel {
    pub vt: f64,
    pub vh: f64,
    pub ron: f64,
    pub roff: f64,
}

impl Default for SwitchModel {
    fn default() -> Self {
        SwitchModel {
            vt: 0.0,
            vh: 0.0,
            ron: 1.0,
            roff: 1e12,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Switch {
    pub name: String,
    pub a: Node,
    pub b: Node,
    pub cpos: Node,
    pub cneg: Node,
    pub model: SwitchModel,
    pub initially_on: bool,
    on: bool,
    slots: Slots2,
}

impl Switch {
    pub fn new(
        name: String,
        a: Node,
        b: Node,
        cpos: Node,
        cneg: Node,
        model: SwitchModel,
        initially_on: bool,
    ) -> Self {
        Switch {
            name,
            a,
            b,
            cpos,
            cneg,
            model,
            initially_on,
            on: initially_on,
            slots: Slots2::default(),
        }
    }
    pub fn is_on(&self) -> bool {
        self.on
    }
    fn conductance(&self) -> f64 {
        1.0 / if self.on {
            self.model.ron
        } else {
            self.model.roff
        }
    }
}

impl Device for Switch {
    fn name(&self) -> &str {
        &self.name
    }
    fn setup(&mut self, p: &mut dyn Pattern) {
        self.slots = Slots2::new(p, self.a, self.b);
    }
    fn eval(&self, ctx: &EvalCtx, s: &mut Stamp) {
        let g = self.conductance();
        let i = g * (ctx.v(self.a) - ctx.v(self.b));
        s.f(self.a, i);
        s.f(self.b, -i);
        self.slots.conductance(s, g);
    }
    fn power(&self, ctx: &EvalCtx) -> f64 {
        let v = ctx.v(self.a) - ctx.v(self.b);
        v * v * self.conductance()
    }
    fn event_count(&self) -> usize {
        1
    }
    fn event_indicator(&self, _k: usize, x: &[f64]) -> f64 {
        let at = |n: Node| n.map_or(0.0, |i| x[i]);
        let vc = at(self.cpos) - at(self.cneg);
        if self.on {
            (self.model.vt - self.model.vh) - vc
        } else {
            vc - (self.model.vt + self.model.vh)
        }
    }
    fn fire(&mut self, _k: usize, _time: f64, _x: &mut [f64]) -> bool {
        self.on = !self.on;
        false
    }
    fn reset_state(&mut self) {
        self.on = self.initially_on;
    }
    fn dc_paths(&self) -> Vec<(Node, Node)> {
        vec![(self.a, self.b)]
    }
    fn terminals(&self) -> Vec<Node> {
        vec![self.a, self.b, self.cpos, self.cneg]
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
