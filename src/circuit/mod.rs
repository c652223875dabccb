//! Elaboration: a parsed [`Netlist`] becomes a [`Circuit`] — parameters
//! evaluated, subcircuits flattened with hierarchical names (`x1.rm`,
//! `x1.n3`), nodes and extra unknowns numbered, models bound to instances,
//! and the topology checked (floating nodes, loops of voltage sources).

mod overrides;
pub mod params;
mod topology;

use crate::devices::{
    capacitor::Capacitor, inductor::Inductor, isource::ISource, memristor::Memristor,
    memristor::TsmModel, reset::Reset, reset::ResetModel, resistor::Resistor, switch::Switch,
    switch::SwitchModel, vccs::Vccs, vcvs::Vcvs, vsource::VSource, waveform::SourceFn, Device,
    Node, UnknownKind,
};
use crate::netlist::{
    self, Assign, Card, Element, ElementKind, Expr, Netlist, OutputVar, Span, SpikeRule, StepSpec,
    Subckt, Waveform,
};
use params::{define_all, Func, Scope};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// An elaboration error, located where the netlist says so.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{message}", span.as_ref().map(|s| format!("{s}: ")).unwrap_or_default())]
pub struct ElabError {
    pub span: Option<Span>,
    pub message: String,
}

fn err<T>(span: &Span, message: impl Into<String>) -> Result<T, ElabError> {
    Err(ElabError {
        span: Some(span.clone()),
        message: message.into(),
    })
}

/// Integration method for `.tran`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Backward Euler (order 1).
    Be,
    /// Trapezoidal rule (order 2), SPICE's default.
    Trap,
    /// Variable-step BDF2 (ngspice's `gear` at order 2); circsnn's default
    /// because it is L-stable on the stiff memristor switching.
    Bdf2,
}

/// `.options` values (SPICE names and defaults where SPICE has them).
#[derive(Clone, Debug, serde::Serialize)]
pub struct SimOptions {
    pub reltol: f64,
    /// Current tolerance (A).
    pub abstol: f64,
    /// Voltage tolerance (V).
    pub vntol: f64,
    /// Tolerance of dimensionless device states (memristor x).
    pub xtol: f64,
    pub method: Method,
    /// Upper bound on the time step (s), on top of `.tran`'s tmax.
    pub maxstep: Option<f64>,
    pub gmin: f64,
    /// Newton iteration limit for `.op`/`.dc`.
    pub itl1: usize,
    /// Newton iteration limit per time step.
    pub itl4: usize,
    /// Truncation-error tolerance factor (SPICE's trtol).
    pub trtol: f64,
    /// Highest order of the variable-order BDF (`method=gear`), 1 to 5
    /// (ngspice's and Xyce's `maxord`). None: each engine's default, 2 for
    /// `circsnn sim` (as ngspice), 4 for the batched neuron engine.
    pub maxord: Option<usize>,
}

impl SimOptions {
    /// The highest integration order: 1 for BE, 2 for TRAP, and for BDF
    /// `maxord`, else the engine's own default.
    pub fn max_order(&self, bdf_default: usize) -> usize {
        match self.method {
            Method::Be => 1,
            Method::Trap => 2,
            Method::Bdf2 => self.maxord.unwrap_or(bdf_default),
        }
    }
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            reltol: 1e-3,
            abstol: 1e-12,
            vntol: 1e-6,
            xtol: 1e-6,
            method: Method::Bdf2,
            maxstep: None,
            gmin: 1e-12,
            itl1: 100,
            itl4: 20,
            trtol: 1.0,
            maxord: None,
        }
    }
}

/// One analysis to run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Analysis {
    Op,
    Dc {
        source: String,
        start: f64,
        stop: f64,
        step: f64,
    },
    Tran {
        tstep: f64,
        tstop: f64,
        tstart: f64,
        tmax: Option<f64>,
        uic: bool,
    },
}

/// How spikes are told (`.SPIKE`), resolved to unknowns and devices.
#[derive(Clone, Debug, PartialEq)]
pub enum SpikeDetector {
    /// Upward crossing of max over these state unknowns through `level`.
    States { unknowns: Vec<usize>, level: f64 },
    /// Each firing of this (reset) device.
    Reset { device: usize },
    /// Upward crossing of the node voltage through `level`.
    Threshold { level: f64 },
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpikeSpec {
    /// The membrane node (an unknown index).
    pub node: usize,
    pub detector: SpikeDetector,
}

/// `.NEURON INPUT=node`: where the batched engine injects synaptic current.
#[derive(Clone, Debug, PartialEq)]
pub struct NeuronSpec {
    pub input: usize,
    pub params: BTreeMap<String, f64>,
}

/// An MNA unknown and what it measures.
#[derive(Clone, Debug)]
pub struct Unknown {
    /// Output name: `v(mem)`, `i(vrest)`, `x(m1)`.
    pub name: String,
    pub kind: UnknownKind,
}

/// A flattened, numbered circuit ready for analysis.
#[derive(Debug)]
pub struct Circuit {
    pub title: String,
    /// Number of node-voltage unknowns; they come first.
    pub node_count: usize,
    pub unknowns: Vec<Unknown>,
    pub devices: Vec<Box<dyn Device>>,
    /// Source location of each device's card.
    pub device_spans: Vec<Span>,
    pub options: SimOptions,
    pub analyses: Vec<Analysis>,
    /// `.ic v(node)=value`.
    pub node_ics: Vec<(usize, f64)>,
    pub spike: Option<SpikeSpec>,
    pub neuron: Option<NeuronSpec>,
    pub saves: Vec<OutputVar>,
    /// `.step param name ...`, expanded to values.
    pub steps: Vec<(String, Vec<f64>)>,
    /// The global parameters after overrides.
    pub params: BTreeMap<String, f64>,
}

impl Circuit {
    pub fn unknown_index(&self, name: &str) -> Option<usize> {
        self.unknowns
            .iter()
            .position(|u| u.name.eq_ignore_ascii_case(name))
    }
    pub fn node_index(&self, node: &str) -> Option<usize> {
        self.unknown_index(&format!("v({})", node.to_ascii_lowercase()))
    }
    pub fn device_index(&self, name: &str) -> Option<usize> {
        self.devices
            .iter()
            .position(|d| d.name().eq_ignore_ascii_case(name))
    }
    /// A description of unknown i for error messages: `node 'mem'`,
    /// `branch current of 'vrest'`, `state of 'm1'`.
    pub fn describe_unknown(&self, i: usize) -> String {
        let Some(u) = self.unknowns.get(i) else {
            return format!("unknown #{i}");
        };
        let inner = &u.name[2..u.name.len() - 1];
        match u.kind {
            UnknownKind::Voltage => format!("node '{inner}'"),
            UnknownKind::Current => format!("branch current of '{inner}'"),
            UnknownKind::State => format!("state x of device '{inner}'"),
        }
    }
    /// Whether every device is linear (one Newton iteration is exact).
    pub fn is_linear(&self) -> bool {
        self.devices.iter().all(|d| d.is_linear())
    }
}

/// Parse and elaborate a netlist file, with `.param` overrides.
pub fn load(path: &Path, overrides: &[(String, Expr)]) -> anyhow::Result<Circuit> {
    let netlist = netlist::parse_file(path)?;
    Ok(elaborate(&netlist, overrides)?)
}

/// A `.model` card as found, bound later to each instance.
#[derive(Clone, Copy)]
struct ModelDef<'a> {
    kind: &'a str,
    params: &'a [Assign],
    span: &'a Span,
}

/// What `.tran` says about source defaults (PULSE rise time = tstep, ...).
#[derive(Clone, Copy)]
struct SourceDefaults {
    tstep: f64,
    tstop: f64,
}

struct Builder<'a> {
    node_ids: HashMap<String, usize>,
    node_names: Vec<String>,
    devices: Vec<Box<dyn Device>>,
    spans: Vec<Span>,
    element_names: HashMap<String, Span>,
    defaults: SourceDefaults,
    /// Subckt names being instantiated, for recursion errors.
    stack: Vec<String>,
    _lt: std::marker::PhantomData<&'a ()>,
}

/// Definitions visible in one scope: models and subcircuits.
#[derive(Clone, Default)]
struct Defs<'a> {
    models: HashMap<String, ModelDef<'a>>,
    subckts: HashMap<String, &'a Subckt>,
}

/// Collect `.model`, `.subckt`, `.param` and `.func` cards of one level.
fn collect_defs<'a>(
    cards: &'a [Card],
    parent: &Defs<'a>,
    scope: &mut Scope,
) -> Result<Defs<'a>, ElabError> {
    let mut defs = parent.clone();
    let mut local_models: HashMap<&str, &Span> = HashMap::new();
    let mut local_subckts: HashMap<&str, &Span> = HashMap::new();
    let mut param_defs: Vec<Assign> = Vec::new();
    let mut seen_params: HashMap<String, Span> = HashMap::new();
    for card in cards {
        match card {
            Card::Model {
                name,
                kind,
                params,
                span,
            } => {
                if let Some(prev) = local_models.insert(name, span) {
                    return err(
                        span,
                        format!("duplicate .model '{name}' (first defined at {prev})"),
                    );
                }
                defs.models
                    .insert(name.clone(), ModelDef { kind, params, span });
            }
            Card::Subckt(s) => {
                if let Some(prev) = local_subckts.insert(&s.name, &s.span) {
                    return err(
                        &s.span,
                        format!("duplicate .subckt '{}' (first defined at {prev})", s.name),
                    );
                }
                defs.subckts.insert(s.name.clone(), s);
            }
            Card::Param(list) => {
                for a in list {
                    if let Some(prev) = seen_params.insert(a.name.clone(), a.span.clone()) {
                        return err(
                            &a.span,
                            format!("duplicate .param '{}' (first defined at {prev})", a.name),
                        );
                    }
                    param_defs.push(a.clone());
                }
            }
            Card::Func {
                name,
                args,
                body,
                span,
            } => {
                if scope.funcs.contains_key(name) {
                    return err(span, format!("duplicate .func '{name}'"));
                }
                scope.funcs.insert(
                    name.clone(),
                    Func {
                        args: args.clone(),
                        body: body.clone(),
                    },
                );
            }
            _ => {}
        }
    }
    define_all(scope, &param_defs).map_err(|(span, message)| ElabError {
        span: Some(span),
        message,
    })?;
    Ok(defs)
}

/// Elaborate a parsed netlist. `overrides` (the CLI's `--param
/// NAME=VALUE`) replace a `.param`, a model parameter (`tsm1.ron`) or an
/// element's value (`cm`); a name that matches none is an error.
pub fn elaborate(netlist: &Netlist, overrides: &[(String, Expr)]) -> Result<Circuit, ElabError> {
    elaborate_scaled(netlist, overrides, &[])
}

/// [`elaborate`], with the values of the names in `scales` then multiplied
/// by their factors (Monte Carlo device variation).
pub fn elaborate_scaled(
    netlist: &Netlist,
    overrides: &[(String, Expr)],
    scales: &[(String, f64)],
) -> Result<Circuit, ElabError> {
    let mut cards = netlist.cards.clone();
    overrides::apply(&mut cards, overrides)?;
    overrides::scale(&mut cards, scales)?;

    let mut global = Scope::default();
    let defs = collect_defs(&cards, &Defs::default(), &mut global)?;

    let mut options = SimOptions::default();
    let mut analyses = Vec::new();
    let mut defaults = SourceDefaults {
        tstep: 1e-6,
        tstop: 1.0,
    };
    for card in &cards {
        match card {
            Card::Options(list) => apply_options(&mut options, list, &global)?,
            Card::Op { .. } => analyses.push(Analysis::Op),
            Card::Dc {
                source,
                start,
                stop,
                step,
                span,
            } => {
                let (start, stop, step) = (
                    eval(&global, start, span)?,
                    eval(&global, stop, span)?,
                    eval(&global, step, span)?,
                );
                if step == 0.0 || (stop - start) * step < 0.0 {
                    return err(
                        span,
                        format!(".dc step {step} does not lead from {start} to {stop}"),
                    );
                }
                if ((stop - start) / step).abs() > 1e7 {
                    return err(span, ".dc sweep has more than 10 million points");
                }
                analyses.push(Analysis::Dc {
                    source: source.clone(),
                    start,
                    stop,
                    step,
                });
            }
            Card::Tran {
                tstep,
                tstop,
                tstart,
                tmax,
                uic,
                span,
            } => {
                let tstep_v = eval(&global, tstep, span)?;
                let tstop_v = eval(&global, tstop, span)?;
                let tstart_v = tstart
                    .as_ref()
                    .map(|e| eval(&global, e, span))
                    .transpose()?
                    .unwrap_or(0.0);
                let tmax_v = tmax.as_ref().map(|e| eval(&global, e, span)).transpose()?;
                if !(tstep_v > 0.0) {
                    return err(span, format!(".tran tstep must be positive, got {tstep_v}"));
                }
                if !(tstop_v > 0.0) {
                    return err(span, format!(".tran tstop must be positive, got {tstop_v}"));
                }
                if !(tstart_v >= 0.0 && tstart_v < tstop_v) {
                    return err(
                        span,
                        format!(".tran tstart ({tstart_v}) must be in [0, tstop)"),
                    );
                }
                if let Some(m) = tmax_v {
                    if !(m > 0.0) {
                        return err(span, format!(".tran tmax must be positive, got {m}"));
                    }
                }
                defaults = SourceDefaults {
                    tstep: tstep_v,
                    tstop: tstop_v,
                };
                analyses.push(Analysis::Tran {
                    tstep: tstep_v,
                    tstop: tstop_v,
                    tstart: tstart_v,
                    tmax: tmax_v,
                    uic: *uic,
                });
            }
            _ => {}
        }
    }

    let mut b = Builder {
        node_ids: HashMap::new(),
        node_names: Vec::new(),
        devices: Vec::new(),
        spans: Vec::new(),
        element_names: HashMap::new(),
        defaults,
        stack: Vec::new(),
        _lt: std::marker::PhantomData,
    };
    b.instantiate(&cards, "", &HashMap::new(), &global, &defs)?;
    if b.devices.is_empty() {
        return Err(ElabError {
            span: None,
            message: format!("{}: the netlist has no elements", netlist.path.display()),
        });
    }

    // Number the unknowns: nodes first, then each device's extra unknowns.
    let node_count = b.node_names.len();
    let mut unknowns: Vec<Unknown> = b
        .node_names
        .iter()
        .map(|n| Unknown {
            name: format!("v({n})"),
            kind: UnknownKind::Voltage,
        })
        .collect();
    for d in b.devices.iter_mut() {
        let extras = d.extra_unknowns();
        if extras.is_empty() {
            continue;
        }
        d.bind_extra(unknowns.len());
        for (suffix, kind) in extras {
            let prefix = match kind {
                UnknownKind::State => "x",
                _ => "i",
            };
            unknowns.push(Unknown {
                name: format!("{prefix}({}{suffix})", d.name()),
                kind,
            });
        }
    }

    topology::check(&b.devices, &b.spans, &b.node_names)?;

    let mut circuit = Circuit {
        title: netlist.title.clone(),
        node_count,
        unknowns,
        devices: b.devices,
        device_spans: b.spans,
        options,
        analyses,
        node_ics: Vec::new(),
        spike: None,
        neuron: None,
        saves: Vec::new(),
        steps: Vec::new(),
        params: global.values.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    };
    resolve_directives(&mut circuit, &cards, &global)?;
    for a in &circuit.analyses {
        if let Analysis::Dc { source, .. } = a {
            let ok = circuit.device_index(source).is_some_and(|i| {
                circuit.devices[i].as_any().is::<VSource>()
                    || circuit.devices[i].as_any().is::<ISource>()
            });
            if !ok {
                let span = cards.iter().find_map(|c| {
                    if let Card::Dc { span, .. } = c {
                        Some(span)
                    } else {
                        None
                    }
                });
                return Err(ElabError {
                    span: span.cloned(),
                    message: format!(
                        ".dc sweeps '{source}', which is not an independent V or I source"
                    ),
                });
            }
        }
    }
    Ok(circuit)
}

fn eval(scope: &Scope, e: &Expr, span: &Span) -> Result<f64, ElabError> {
    scope.eval(e).map_err(|m| ElabError {
        span: Some(span.clone()),
        message: m,
    })
}

fn apply_options(o: &mut SimOptions, list: &[Assign], scope: &Scope) -> Result<(), ElabError> {
    for a in list {
        if a.name == "method" {
            let m = match &a.value {
                Expr::Var(v) => v.as_str(),
                _ => "",
            };
            o.method = match m {
                "be" | "euler" => Method::Be,
                "trap" | "trapezoidal" => Method::Trap,
                "gear" | "bdf2" => Method::Bdf2,
                _ => return err(&a.span, "method must be one of be, trap, gear (bdf2)"),
            };
            continue;
        }
        let v = eval(scope, &a.value, &a.span)?;
        let positive = |v: f64| -> Result<f64, ElabError> {
            if v > 0.0 {
                Ok(v)
            } else {
                err(
                    &a.span,
                    format!("option {} must be positive, got {v}", a.name),
                )
            }
        };
        match a.name.as_str() {
            "reltol" => o.reltol = positive(v)?,
            "abstol" => o.abstol = positive(v)?,
            "vntol" => o.vntol = positive(v)?,
            "xtol" => o.xtol = positive(v)?,
            "maxstep" => o.maxstep = Some(positive(v)?),
            "gmin" => o.gmin = positive(v)?,
            "trtol" => o.trtol = positive(v)?,
            "itl1" => o.itl1 = positive(v)?.round() as usize,
            "itl4" => o.itl4 = positive(v)?.round() as usize,
            "maxord" => {
                let max = crate::solver::integrator::MAX_BDF_ORDER;
                if !(v >= 1.0 && v <= max as f64 && v.fract() == 0.0) {
                    return err(
                        &a.span,
                        format!("option maxord must be a whole number from 1 to {max}, got {v}"),
                    );
                }
                o.maxord = Some(v as usize);
            }
            // Accepted for compatibility with ngspice decks; circsnn's
            // charge handling needs no separate tolerance.
            "chgtol" => {}
            other => {
                return err(
                    &a.span,
                    format!("unsupported option '{other}' (supported: reltol, abstol, vntol, xtol, method, maxstep, gmin, itl1, itl4, trtol, maxord, chgtol)"),
                )
            }
        }
    }
    Ok(())
}

impl<'a> Builder<'a> {
    /// Map a node name in the current subcircuit level to an unknown.
    fn node(&mut self, name: &str, prefix: &str, ports: &HashMap<String, Node>) -> Node {
        if name == "0" || name == "gnd" {
            return None;
        }
        if let Some(&n) = ports.get(name) {
            return n;
        }
        let full = format!("{prefix}{name}");
        if let Some(&i) = self.node_ids.get(&full) {
            return Some(i);
        }
        let i = self.node_names.len();
        self.node_names.push(full.clone());
        self.node_ids.insert(full, i);
        Some(i)
    }

    fn instantiate(
        &mut self,
        cards: &'a [Card],
        prefix: &str,
        ports: &HashMap<String, Node>,
        scope: &Scope,
        defs: &Defs<'a>,
    ) -> Result<(), ElabError> {
        for card in cards {
            let Card::Element(el) = card else { continue };
            let full_name = format!("{prefix}{}", el.name);
            if let Some(prev) = self.element_names.get(&full_name) {
                return err(
                    &el.span,
                    format!(
                        "duplicate element name '{}' (first defined at {prev})",
                        el.name
                    ),
                );
            }
            self.element_names
                .insert(full_name.clone(), el.span.clone());
            let nodes: Vec<Node> = el
                .nodes
                .iter()
                .map(|n| self.node(n, prefix, ports))
                .collect();
            if let ElementKind::Subckt { subckt, params } = &el.kind {
                self.instantiate_subckt(el, &full_name, subckt, params, &nodes, scope, defs)?;
                continue;
            }
            let device = self.build_device(el, full_name, &nodes, scope, defs)?;
            self.devices.push(device);
            self.spans.push(el.span.clone());
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn instantiate_subckt(
        &mut self,
        el: &'a Element,
        full_name: &str,
        subckt: &str,
        params: &[Assign],
        nodes: &[Node],
        scope: &Scope,
        defs: &Defs<'a>,
    ) -> Result<(), ElabError> {
        let Some(def) = defs.subckts.get(subckt).copied() else {
            return err(
                &el.span,
                format!("undefined subcircuit '{subckt}' (for {})", el.name),
            );
        };
        if self.stack.iter().any(|s| s == subckt) {
            let chain = self.stack.join(" → ");
            return err(
                &el.span,
                format!("recursive subcircuit '{subckt}' ({chain} → {subckt})"),
            );
        }
        if def.ports.len() != nodes.len() {
            return err(
                &el.span,
                format!(
                    "{} connects {} node(s) but .subckt {} has {} port(s) ({})",
                    el.name,
                    nodes.len(),
                    def.name,
                    def.ports.len(),
                    def.ports.join(" ")
                ),
            );
        }
        // Defaults from the .subckt line, then the instance's values, both
        // evaluated in the instantiating scope.
        let mut inner = Scope::child(scope);
        for a in &def.params {
            let v = eval(scope, &a.value, &a.span)?;
            inner.values.insert(a.name.clone(), v);
        }
        for a in params {
            if !def.params.iter().any(|d| d.name == a.name) {
                let known: Vec<&str> = def.params.iter().map(|d| d.name.as_str()).collect();
                return err(
                    &a.span,
                    format!(
                        "subcircuit '{}' has no parameter '{}' (it has: {})",
                        def.name,
                        a.name,
                        known.join(", ")
                    ),
                );
            }
            let v = eval(scope, &a.value, &a.span)?;
            inner.values.insert(a.name.clone(), v);
        }
        let inner_defs = collect_defs(&def.cards, defs, &mut inner)?;
        let port_map: HashMap<String, Node> = def
            .ports
            .iter()
            .cloned()
            .zip(nodes.iter().copied())
            .collect();
        self.stack.push(def.name.clone());
        let r = self.instantiate(
            &def.cards,
            &format!("{full_name}."),
            &port_map,
            &inner,
            &inner_defs,
        );
        self.stack.pop();
        r
    }

    fn source(
        &self,
        spec: &netlist::SourceSpec,
        scope: &Scope,
        span: &Span,
    ) -> Result<(f64, Option<SourceFn>), ElabError> {
        let d = self.defaults;
        let waveform = match &spec.waveform {
            None => None,
            Some(w) => {
                let args = |list: &[Expr],
                            min: usize,
                            max: usize,
                            what: &str|
                 -> Result<Vec<f64>, ElabError> {
                    if list.len() < min || list.len() > max {
                        return err(
                            span,
                            format!("{what} takes {min} to {max} arguments, got {}", list.len()),
                        );
                    }
                    list.iter().map(|e| eval(scope, e, span)).collect()
                };
                Some(match w {
                    Waveform::Sin(l) => {
                        let a = args(l, 3, 6, "SIN")?;
                        let get = |i: usize, def: f64| a.get(i).copied().unwrap_or(def);
                        SourceFn::Sin {
                            vo: a[0],
                            va: a[1],
                            freq: get(2, 1.0 / d.tstop),
                            td: get(3, 0.0),
                            theta: get(4, 0.0),
                            phase_rad: get(5, 0.0).to_radians(),
                        }
                    }
                    Waveform::Pulse(l) => {
                        let a = args(l, 2, 7, "PULSE")?;
                        let get = |i: usize, def: f64| a.get(i).copied().unwrap_or(def);
                        let f = SourceFn::Pulse {
                            v1: a[0],
                            v2: a[1],
                            td: get(2, 0.0),
                            tr: get(3, d.tstep),
                            tf: get(4, d.tstep),
                            pw: get(5, d.tstop),
                            per: get(6, d.tstop),
                        };
                        if let SourceFn::Pulse {
                            tr, tf, pw, per, ..
                        } = f
                        {
                            if tr < 0.0 || tf < 0.0 || pw < 0.0 || per < 0.0 {
                                return err(span, "PULSE times must not be negative");
                            }
                        }
                        f
                    }
                    Waveform::Pwl(l) => {
                        let a = args(l, 2, usize::MAX, "PWL")?;
                        let pts: Vec<(f64, f64)> = a.chunks(2).map(|c| (c[0], c[1])).collect();
                        if pts.windows(2).any(|w| w[1].0 <= w[0].0) {
                            return err(span, "PWL times must increase strictly");
                        }
                        SourceFn::Pwl(pts)
                    }
                    Waveform::Exp(l) => {
                        let a = args(l, 2, 6, "EXP")?;
                        let get = |i: usize, def: f64| a.get(i).copied().unwrap_or(def);
                        let td1 = get(2, 0.0);
                        let f = SourceFn::Exp {
                            v1: a[0],
                            v2: a[1],
                            td1,
                            tau1: get(3, d.tstep),
                            td2: get(4, td1 + d.tstep),
                            tau2: get(5, d.tstep),
                        };
                        if let SourceFn::Exp { tau1, tau2, .. } = f {
                            if tau1 <= 0.0 || tau2 <= 0.0 {
                                return err(span, "EXP time constants must be positive");
                            }
                        }
                        f
                    }
                })
            }
        };
        let dc = match &spec.dc {
            Some(e) => eval(scope, e, span)?,
            None => waveform.as_ref().map_or(0.0, |w| w.value(0.0)),
        };
        Ok((dc, waveform))
    }

    fn model(
        &self,
        defs: &Defs<'a>,
        name: &str,
        el: &Element,
        want: &[&str],
    ) -> Result<ModelDef<'a>, ElabError> {
        let Some(m) = defs.models.get(name).copied() else {
            return err(
                &el.span,
                format!("undefined model '{name}' (for {})", el.name),
            );
        };
        if !want.contains(&m.kind) {
            return err(
                &el.span,
                format!(
                    "model '{name}' is of type {}, but {} needs {}",
                    m.kind,
                    el.name,
                    want.join(" or ")
                ),
            );
        }
        Ok(m)
    }

    fn build_device(
        &mut self,
        el: &'a Element,
        name: String,
        n: &[Node],
        scope: &Scope,
        defs: &Defs<'a>,
    ) -> Result<Box<dyn Device>, ElabError> {
        let span = &el.span;
        let value = |e: &Expr| eval(scope, e, span);
        let positive = |e: &Expr, what: &str| -> Result<f64, ElabError> {
            let v = value(e)?;
            if v > 0.0 {
                Ok(v)
            } else {
                err(
                    span,
                    format!("{what} of {} must be positive, got {v}", el.name),
                )
            }
        };
        Ok(match &el.kind {
            ElementKind::Resistor { value: v } => {
                Box::new(Resistor::new(name, n[0], n[1], positive(v, "resistance")?))
            }
            ElementKind::Capacitor { value: v, ic } => {
                let ic = ic.as_ref().map(value).transpose()?;
                Box::new(Capacitor::new(
                    name,
                    n[0],
                    n[1],
                    positive(v, "capacitance")?,
                    ic,
                ))
            }
            ElementKind::Inductor { value: v, ic } => {
                let ic = ic.as_ref().map(value).transpose()?;
                Box::new(Inductor::new(
                    name,
                    n[0],
                    n[1],
                    positive(v, "inductance")?,
                    ic,
                ))
            }
            ElementKind::VSource(spec) => {
                let (dc, w) = self.source(spec, scope, span)?;
                Box::new(VSource::new(name, n[0], n[1], dc, w))
            }
            ElementKind::ISource(spec) => {
                let (dc, w) = self.source(spec, scope, span)?;
                Box::new(ISource::new(name, n[0], n[1], dc, w))
            }
            ElementKind::Vcvs { gain } => {
                Box::new(Vcvs::new(name, n[0], n[1], n[2], n[3], value(gain)?))
            }
            ElementKind::Vccs { gain } => {
                Box::new(Vccs::new(name, n[0], n[1], n[2], n[3], value(gain)?))
            }
            ElementKind::Switch {
                model,
                initially_on,
            } => {
                let m = self.model(defs, model, el, &["sw"])?;
                let mut sm = SwitchModel::default();
                for a in m.params {
                    let v = eval(scope, &a.value, &a.span)?;
                    match a.name.as_str() {
                        "vt" => sm.vt = v,
                        "vh" => sm.vh = v,
                        "ron" => sm.ron = v,
                        "roff" => sm.roff = v,
                        other => return err(&a.span, format!("unknown parameter '{other}' for sw model (expected VT, VH, RON, ROFF)")),
                    }
                }
                if !(sm.ron > 0.0 && sm.roff > 0.0 && sm.vh >= 0.0) {
                    return err(m.span, "sw model needs RON > 0, ROFF > 0 and VH >= 0");
                }
                Box::new(Switch::new(
                    name,
                    n[0],
                    n[1],
                    n[2],
                    n[3],
                    sm,
                    initially_on.unwrap_or(false),
                ))
            }
            ElementKind::Memristor { model, params } => {
                let m = self.model(defs, model, el, &["memristor"])?;
                let mut tm = TsmModel::default();
                let mut level = None;
                for a in m.params {
                    let v = eval(scope, &a.value, &a.span)?;
                    let slot = match a.name.as_str() {
                        "level" => {
                            level = Some(v);
                            continue;
                        }
                        "ron" => &mut tm.ron,
                        "roff" => &mut tm.roff,
                        "von" => &mut tm.von,
                        "voff" => &mut tm.voff,
                        "ton" => &mut tm.ton,
                        "toff" => &mut tm.toff,
                        "vs" => &mut tm.vs,
                        "p" => &mut tm.p,
                        other => {
                            return err(
                                &a.span,
                                format!("unknown parameter '{other}' for MEMRISTOR LEVEL=101 (expected RON, ROFF, VON, VOFF, TON, TOFF, VS, P)"),
                            )
                        }
                    };
                    *slot = v;
                }
                match level {
                    Some(101.0) => {}
                    Some(l) => return err(m.span, format!("MEMRISTOR LEVEL={l} is not supported (circsnn implements LEVEL=101, the threshold-switching memristor)")),
                    None => return err(m.span, "MEMRISTOR model needs LEVEL=101"),
                }
                tm.validate().map_err(|e| ElabError {
                    span: Some(m.span.clone()),
                    message: format!("model '{model}': {e}"),
                })?;
                let mut x0 = 0.0;
                for a in params {
                    match a.name.as_str() {
                        "x0" => x0 = eval(scope, &a.value, &a.span)?,
                        other => {
                            return err(
                                &a.span,
                                format!(
                                "unknown instance parameter '{other}' for YMEMRISTOR (expected X0)"
                            ),
                            )
                        }
                    }
                }
                if !(0.0..=1.0).contains(&x0) {
                    return err(
                        span,
                        format!("X0 of {} must be in [0, 1], got {x0}", el.name),
                    );
                }
                Box::new(Memristor::new(name, n[0], n[1], tm, x0))
            }
            ElementKind::Reset { model } => {
                let m = self.model(defs, model, el, &["nreset"])?;
                let mut rm = ResetModel::default();
                for a in m.params {
                    let v = eval(scope, &a.value, &a.span)?;
                    match a.name.as_str() {
                        "vth" => rm.vth = v,
                        "vreset" => rm.vreset = v,
                        "tref" => rm.tref = v,
                        other => return err(&a.span, format!("unknown parameter '{other}' for NRESET model (expected VTH, VRESET, TREF)")),
                    }
                }
                rm.validate().map_err(|e| ElabError {
                    span: Some(m.span.clone()),
                    message: format!("model '{model}': {e}"),
                })?;
                Box::new(Reset::new(name, n[0], n[1], rm))
            }
            ElementKind::Subckt { .. } => unreachable!("subcircuits are flattened by the caller"),
        })
    }
}

fn resolve_directives(c: &mut Circuit, cards: &[Card], scope: &Scope) -> Result<(), ElabError> {
    let node_of = |c: &Circuit, name: &str, span: &Span| -> Result<usize, ElabError> {
        c.node_index(name).ok_or_else(|| ElabError {
            span: Some(span.clone()),
            message: format!("unknown node '{name}'"),
        })
    };
    for card in cards {
        match card {
            Card::Ic(list) => {
                for (node, e, span) in list {
                    let i = node_of(c, node, span)?;
                    let v = eval(scope, e, span)?;
                    c.node_ics.push((i, v));
                }
            }
            Card::Save { vars, span } => {
                for v in vars {
                    let ok = match v {
                        OutputVar::Voltage(a, b) => {
                            c.node_index(a).is_some()
                                && b.as_ref().is_none_or(|b| c.node_index(b).is_some())
                        }
                        OutputVar::Current(d) => {
                            c.unknown_index(&format!("i({d})")).is_some()
                                || c.device_index(d).is_some()
                        }
                        OutputVar::DeviceState { device, .. } => {
                            c.unknown_index(&format!("x({device})")).is_some()
                        }
                        OutputVar::All => true,
                    };
                    if !ok {
                        return err(
                            span,
                            format!("cannot save {v:?}: no such node, branch or device"),
                        );
                    }
                    c.saves.push(v.clone());
                }
            }
            Card::Spike { node, rule, span } => {
                if c.spike.is_some() {
                    return err(span, "only one .SPIKE directive is allowed");
                }
                let node_i = node_of(c, node, span)?;
                let detector = match rule {
                    SpikeRule::Memristor { devices, level } => {
                        let mut unknowns = Vec::new();
                        for d in devices {
                            let i = c.device_index(d).ok_or_else(|| ElabError {
                                span: Some(span.clone()),
                                message: format!(".SPIKE names unknown device '{d}'"),
                            })?;
                            let Some(s) = c.devices[i].state_unknown() else {
                                return err(
                                    span,
                                    format!(
                                        ".SPIKE MEMRISTOR= names '{d}', which is not a memristor"
                                    ),
                                );
                            };
                            unknowns.push(s);
                        }
                        SpikeDetector::States {
                            unknowns,
                            level: eval(scope, level, span)?,
                        }
                    }
                    SpikeRule::Reset { device } => {
                        let i = c.device_index(device).ok_or_else(|| ElabError {
                            span: Some(span.clone()),
                            message: format!(".SPIKE names unknown device '{device}'"),
                        })?;
                        if !c.devices[i].as_any().is::<Reset>() {
                            return err(
                                span,
                                format!(
                                    ".SPIKE RESET= names '{device}', which is not a YRESET device"
                                ),
                            );
                        }
                        SpikeDetector::Reset { device: i }
                    }
                    SpikeRule::Threshold { level } => SpikeDetector::Threshold {
                        level: eval(scope, level, span)?,
                    },
                };
                c.spike = Some(SpikeSpec {
                    node: node_i,
                    detector,
                });
            }
            Card::Neuron { params, span } => {
                let mut input = None;
                let mut rest = BTreeMap::new();
                for a in params {
                    if a.name == "input" {
                        let Expr::Var(n) = &a.value else {
                            return err(&a.span, ".NEURON INPUT= must name a node");
                        };
                        input = Some(node_of(c, n, &a.span)?);
                    } else {
                        rest.insert(a.name.clone(), eval(scope, &a.value, &a.span)?);
                    }
                }
                let Some(input) = input else {
                    return err(span, ".NEURON needs INPUT=<node>");
                };
                c.neuron = Some(NeuronSpec {
                    input,
                    params: rest,
                });
            }
            Card::Step { param, spec, span } => {
                let values = match spec {
                    StepSpec::List(l) => l
                        .iter()
                        .map(|e| eval(scope, e, span))
                        .collect::<Result<Vec<_>, _>>()?,
                    StepSpec::Linear { start, stop, incr } => {
                        let (a, b, d) = (
                            eval(scope, start, span)?,
                            eval(scope, stop, span)?,
                            eval(scope, incr, span)?,
                        );
                        if d == 0.0 || (b - a) * d < 0.0 || ((b - a) / d).abs() > 1e6 {
                            return err(
                                span,
                                format!(".step from {a} to {b} by {d} is not a finite sweep"),
                            );
                        }
                        let n = ((b - a) / d + 1e-9).floor() as usize;
                        (0..=n).map(|k| a + k as f64 * d).collect()
                    }
                    StepSpec::Decade {
                        start,
                        stop,
                        points,
                    } => {
                        let (a, b, p) = (
                            eval(scope, start, span)?,
                            eval(scope, stop, span)?,
                            eval(scope, points, span)?,
                        );
                        if !(a > 0.0 && b > a && p >= 1.0) {
                            return err(span, ".step dec needs 0 < start < stop and points >= 1");
                        }
                        let n = ((b / a).log10() * p + 1e-9).floor() as usize;
                        (0..=n).map(|k| a * 10f64.powf(k as f64 / p)).collect()
                    }
                };
                if !c.params.contains_key(param) {
                    return err(
                        span,
                        format!(".step sweeps '{param}', which is not a .param"),
                    );
                }
                c.steps.push((param.clone(), values));
            }
            _ => {}
        }
    }
    Ok(())
}
