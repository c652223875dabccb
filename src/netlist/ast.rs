//! The parsed netlist: cards exactly as written, each with its source span.
//!
//! Nothing here is evaluated: values are [`Expr`]s (a plain number is
//! `Expr::Num`), names keep the user's spelling, and node names are strings.
//! Elaboration (`circuit/`) resolves parameters, subcircuits and models.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a card (or a token in it) came from: 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub file: Arc<PathBuf>,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// An arithmetic expression: `{...}` in a netlist, or a bare number.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Num(f64),
    /// A parameter name (case-insensitive; stored lower-case).
    Var(String),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// A built-in function (exp, log, sqrt, sin, cos, tanh, abs, min, max)
    /// or a `.func`; the name is stored lower-case.
    Call(String, Vec<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

/// `name=value`, as in `.param`, `.model`, `.options`, instance parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Assign {
    /// Lower-case.
    pub name: String,
    pub value: Expr,
    pub span: Span,
}

/// The time-dependent part of an independent source.
#[derive(Clone, Debug, PartialEq)]
pub enum Waveform {
    /// SIN(vo va freq [td [theta [phase_deg]]])
    Sin(Vec<Expr>),
    /// PULSE(v1 v2 [td [tr [tf [pw [per]]]]])
    Pulse(Vec<Expr>),
    /// PWL(t1 v1 t2 v2 ...)
    Pwl(Vec<Expr>),
    /// EXP(v1 v2 [td1 [tau1 [td2 [tau2]]]])
    Exp(Vec<Expr>),
}

/// An independent V or I source's value: `[DC] v` and/or a waveform.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SourceSpec {
    pub dc: Option<Expr>,
    pub waveform: Option<Waveform>,
}

/// One element card. `name` is the full name as written (`Rm`, `XM1`,
/// `M1` for `YMEMRISTOR M1 ...`), compared case-insensitively.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    pub name: String,
    pub kind: ElementKind,
    /// Node names in card order (lower-case; `0` and `gnd` are ground).
    pub nodes: Vec<String>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ElementKind {
    /// R n1 n2 value
    Resistor { value: Expr },
    /// C n1 n2 value [IC=v]
    Capacitor { value: Expr, ic: Option<Expr> },
    /// L n1 n2 value [IC=i]
    Inductor { value: Expr, ic: Option<Expr> },
    /// V n+ n- source
    VSource(SourceSpec),
    /// I n+ n- source (current flows from n+ through the source to n-)
    ISource(SourceSpec),
    /// E n+ n- nc+ nc- gain
    Vcvs { gain: Expr },
    /// G n+ n- nc+ nc- transconductance
    Vccs { gain: Expr },
    /// S n+ n- nc+ nc- model [ON|OFF]
    Switch {
        model: String,
        initially_on: Option<bool>,
    },
    /// YMEMRISTOR name n+ n- model [X0=x]
    Memristor { model: String, params: Vec<Assign> },
    /// YRESET name mem ref model
    Reset { model: String },
    /// X n1 n2 ... subckt [params:] [k=v ...]
    Subckt { subckt: String, params: Vec<Assign> },
}

/// The quantity named by `.print`/`.save`: `v(a)`, `v(a,b)`, `i(Vx)`, or
/// a device state `N(YMEMRISTOR!M1:X)`, or `all`.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputVar {
    Voltage(String, Option<String>),
    Current(String),
    DeviceState { device: String, state: String },
    All,
}

/// How `.SPIKE` tells a spike.
#[derive(Clone, Debug, PartialEq)]
pub enum SpikeRule {
    /// `.SPIKE node MEMRISTOR=M1,M2 LEVEL=0.5`: upward crossing of max(x) = level.
    Memristor { devices: Vec<String>, level: Expr },
    /// `.SPIKE node RESET=R1`: each firing of the reset device.
    Reset { device: String },
    /// `.SPIKE node VTH=v`: upward crossing of V(node) = v.
    Threshold { level: Expr },
}

/// A `.step` sweep (issue: device sweeps).
#[derive(Clone, Debug, PartialEq)]
pub enum StepSpec {
    List(Vec<Expr>),
    Linear {
        start: Expr,
        stop: Expr,
        incr: Expr,
    },
    Decade {
        start: Expr,
        stop: Expr,
        points: Expr,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Subckt {
    /// Lower-case.
    pub name: String,
    pub ports: Vec<String>,
    /// Default parameter values from `params:` on the `.subckt` line.
    pub params: Vec<Assign>,
    pub cards: Vec<Card>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Card {
    Element(Element),
    Param(Vec<Assign>),
    /// `.func name(a, b) {expr}`
    Func {
        name: String,
        args: Vec<String>,
        body: Expr,
        span: Span,
    },
    Subckt(Subckt),
    /// `.model name type (k=v ...)`; `kind` lower-case (memristor, nreset, sw, ...).
    Model {
        name: String,
        kind: String,
        params: Vec<Assign>,
        span: Span,
    },
    /// `.ic v(node)=value ...`
    Ic(Vec<(String, Expr, Span)>),
    Options(Vec<Assign>),
    Op {
        span: Span,
    },
    /// `.dc src start stop step`
    Dc {
        source: String,
        start: Expr,
        stop: Expr,
        step: Expr,
        span: Span,
    },
    /// `.tran tstep tstop [tstart [tmax]] [uic]`
    Tran {
        tstep: Expr,
        tstop: Expr,
        tstart: Option<Expr>,
        tmax: Option<Expr>,
        uic: bool,
        span: Span,
    },
    /// `.print`/`.save` (`.print tran v(a)` keeps only the variables).
    Save {
        vars: Vec<OutputVar>,
        span: Span,
    },
    /// `.spike node rule`
    Spike {
        node: String,
        rule: SpikeRule,
        span: Span,
    },
    /// `.neuron input=node [k=v ...]` (see the batched engine).
    Neuron {
        params: Vec<Assign>,
        span: Span,
    },
    /// `.step param name ...`
    Step {
        param: String,
        spec: StepSpec,
        span: Span,
    },
}

/// A whole netlist file, with `.include`d files already spliced in.
#[derive(Clone, Debug, PartialEq)]
pub struct Netlist {
    pub title: String,
    pub path: Arc<PathBuf>,
    pub cards: Vec<Card>,
}
