//! Structural checks before any matrix is built: every node needs a DC
//! path to ground and at least two connections, and voltage-defining
//! elements (V, E) must not form a loop. These would otherwise surface as
//! an anonymous "singular matrix".

use super::ElabError;
use crate::devices::{Device, Node};
use crate::netlist::Span;

/// Union-find over node indices, with ground as index `n`.
struct Dsu(Vec<usize>);

impl Dsu {
    fn new(n: usize) -> Self {
        Dsu((0..=n).collect())
    }
    fn find(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }
    /// Join two sets; false when they were already one.
    fn union(&mut self, a: usize, b: usize) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        self.0[ra] = rb;
        ra != rb
    }
}

pub(super) fn check(
    devices: &[Box<dyn Device>],
    spans: &[Span],
    node_names: &[String],
) -> Result<(), ElabError> {
    let n = node_names.len();
    let ix = |node: Node| node.unwrap_or(n);
    let fail = |span: &Span, message: String| {
        Err(ElabError {
            span: Some(span.clone()),
            message,
        })
    };

    let mut connections = vec![0usize; n];
    let mut first_device = vec![usize::MAX; n];
    for (d, dev) in devices.iter().enumerate() {
        for node in dev.terminals().into_iter().flatten() {
            connections[node] += 1;
            if first_device[node] == usize::MAX {
                first_device[node] = d;
            }
        }
    }
    for (i, &count) in connections.iter().enumerate() {
        if count < 2 {
            let d = first_device[i];
            return fail(
                &spans[d],
                format!(
                    "node '{}' has only one connection (to {}); it is floating",
                    node_names[i],
                    devices[d].name()
                ),
            );
        }
    }

    let mut dc = Dsu::new(n);
    for dev in devices {
        for (a, b) in dev.dc_paths() {
            dc.union(ix(a), ix(b));
        }
    }
    let ground = dc.find(n);
    for i in 0..n {
        if dc.find(i) != ground {
            let d = first_device[i];
            return fail(
                &spans[d],
                format!(
                    "node '{}' has no DC path to ground (it connects only through capacitors, current sources or control inputs; first element: {})",
                    node_names[i],
                    devices[d].name()
                ),
            );
        }
    }

    let mut loops = Dsu::new(n);
    for (d, dev) in devices.iter().enumerate() {
        if let Some((a, b)) = dev.voltage_defined() {
            if a == b {
                return fail(
                    &spans[d],
                    format!(
                        "{} is shorted: both terminals are the same node",
                        dev.name()
                    ),
                );
            }
            if !loops.union(ix(a), ix(b)) {
                return fail(&spans[d], format!("{} closes a loop of voltage sources (V/E elements); the loop's voltages are over-determined", dev.name()));
            }
        }
    }
    Ok(())
}
