//! Linear voltage-controlled current source G: a current gm · v(cp,cn)
//! flows from p through the source to n.

use super::*;

#[derive(Clone, Debug)]
pub struct Vccs {
    pub name: String,
    pub pos: Node,
    pub neg: Node,
    pub cpos: Node,
    pub cneg: Node,
    pub gm: f64,
    slots: [Slot; 4],
}

impl Vccs {
    pub fn new(name: String, pos: Node, neg: Node, cpos: Node, cneg: Node, gm: f64) -> Self {
        Vccs {
            name,
            pos,
            neg,
            cpos,
            cneg,
            gm,
            slots: [None; 4],
        }
    }
}

impl Device for Vccs {
    fn name(&self) -> &str {
        &self.name
    }
    fn setup(&mut self, p: &mut dyn Pattern) {
        self.slots = [
            p.entry(self.pos, self.cpos),
            p.entry(self.pos, self.cneg),
            p.entry(self.neg, self.cpos),
            p.entry(self.neg, self.cneg),
        ];
    }
    fn eval(&self, ctx: &EvalCtx, s: &mut Stamp) {
        let i = self.gm * (ctx.v(self.cpos) - ctx.v(self.cneg));
        s.f(self.pos, i);
        s.f(self.neg, -i);
        let [pc, pn, nc, nn] = self.slots;
        s.jf(pc, self.gm);
        s.jf(pn, -self.gm);
        s.jf(nc, -self.gm);
        s.jf(nn, self.gm);
    }
    fn dc_paths(&self) -> Vec<(Node, Node)> {
        Vec::new()
    }
    fn terminals(&self) -> Vec<Node> {
        vec![self.pos, self.neg, self.cpos, self.cneg]
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
