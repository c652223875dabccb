//! Card-level tests of the parser: every element, every directive,
//! includes, subcircuits and the reference netlists of devices.md §6.

use std::path::Path;

use super::*;

fn parse(text: &str) -> Netlist {
    parse_str(text, Path::new("test.cir")).unwrap_or_else(|e| panic!("{e}"))
}

/// The cards of a netlist whose first line is a title.
fn cards(body: &str) -> Vec<Card> {
    parse(&format!("title\n{body}")).cards
}

fn one(body: &str) -> Card {
    let mut all = cards(body);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn element(body: &str) -> Element {
    match one(body) {
        Card::Element(e) => e,
        other => panic!("not an element: {other:?}"),
    }
}

fn fail(body: &str) -> ParseError {
    match parse_str(&format!("title\n{body}"), Path::new("test.cir")) {
        Ok(n) => panic!("expected an error, parsed {:?}", n.cards),
        Err(e) => e,
    }
}

fn num(v: f64) -> Expr {
    Expr::Num(v)
}

fn var(name: &str) -> Expr {
    Expr::Var(name.into())
}

fn assign(name: &str, value: Expr) -> (String, Expr) {
    (name.to_string(), value)
}

fn pairs(list: &[Assign]) -> Vec<(String, Expr)> {
    list.iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect()
}

fn close(a: &Expr, b: f64) -> bool {
    match a {
        Expr::Num(v) => (v - b).abs() <= 1e-12 * b.abs().max(1e-300),
        _ => false,
    }
}

#[test]
fn title_is_the_first_line_even_if_it_looks_like_a_card() {
    let n = parse("R1 a b 1k\nR2 a b 2k\n");
    assert_eq!(n.title, "R1 a b 1k");
    assert_eq!(n.cards.len(), 1);
    assert_eq!(parse("").title, "");
    assert!(parse("only a title").cards.is_empty());
}

#[test]
fn resistor_and_spans() {
    let e = element("  Rload OUT 0 10Meg");
    assert_eq!(e.name, "rload");
    assert_eq!(e.nodes, vec!["out", "0"]);
    assert_eq!(e.kind, ElementKind::Resistor { value: num(10e6) });
    assert_eq!((e.span.line, e.span.col), (2, 3));
    assert_eq!(e.span.file.as_path(), Path::new("test.cir"));
}

#[test]
fn values_number_brace_quote_and_bare_name() {
    let value = |body: &str| match element(body).kind {
        ElementKind::Resistor { value } => value,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        value("R1 a b {2*rval}"),
        Expr::Bin(BinOp::Mul, Box::new(num(2.0)), Box::new(var("rval")))
    );
    assert_eq!(
        value("R1 a b 'rval+1'"),
        Expr::Bin(BinOp::Add, Box::new(var("rval")), Box::new(num(1.0)))
    );
    assert_eq!(value("R1 a b RVAL"), var("rval"));
    assert_eq!(value("R1 a b -1.5k"), num(-1500.0));
}

#[test]
fn capacitor_and_inductor_with_initial_conditions() {
    let e = element("Cm mem 0 0.2nF IC=-70m");
    match e.kind {
        ElementKind::Capacitor { value, ic } => {
            assert!(close(&value, 0.2e-9));
            assert!(close(&ic.unwrap(), -0.07));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        element("C1 a b 1u").kind,
        ElementKind::Capacitor {
            value: num(1e-6),
            ic: None
        }
    );
    assert_eq!(
        element("L1 a b 1m ic = {i0}").kind,
        ElementKind::Inductor {
            value: num(1e-3),
            ic: Some(var("i0"))
        }
    );
}

#[test]
fn sources() {
    let spec = |body: &str| match element(body).kind {
        ElementKind::VSource(s) | ElementKind::ISource(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        spec("V1 a 0 DC 1"),
        SourceSpec {
            dc: Some(num(1.0)),
            waveform: None
        }
    );
    assert_eq!(
        spec("V1 a 0 1"),
        SourceSpec {
            dc: Some(num(1.0)),
            waveform: None
        }
    );
    assert_eq!(
        spec("V1 a 0 {vdd}"),
        SourceSpec {
            dc: Some(var("vdd")),
            waveform: None
        }
    );
    assert_eq!(
        spec("V1 a 0 vdd"),
        SourceSpec {
            dc: Some(var("vdd")),
            waveform: None
        }
    );
    assert_eq!(
        spec("V1 a 0 SIN(0 1 1k)"),
        SourceSpec {
            dc: None,
            waveform: Some(Waveform::Sin(vec![num(0.0), num(1.0), num(1e3)]))
        }
    );
    let s = spec("Iin 0 mem DC 0 SIN(1.5n 1.5n 1 0 0 -90)");
    assert_eq!(s.dc, Some(num(0.0)));
    let Some(Waveform::Sin(args)) = s.waveform else {
        panic!()
    };
    assert_eq!(args.len(), 6);
    assert!(close(&args[0], 1.5e-9));
    assert!(close(&args[5], -90.0));
    assert_eq!(
        spec("V1 a 0 PULSE(0, 1, 0 1n,1n 1 2)").waveform,
        Some(Waveform::Pulse(vec![
            num(0.0),
            num(1.0),
            num(0.0),
            num(1e-9),
            num(1e-9),
            num(1.0),
            num(2.0)
        ]))
    );
    assert_eq!(
        spec("V1 a 0 pwl(0 0 1m {v1})").waveform,
        Some(Waveform::Pwl(vec![
            num(0.0),
            num(0.0),
            num(1e-3),
            var("v1")
        ]))
    );
    assert_eq!(
        spec("I1 a 0 EXP(0 1 1u 1u)").waveform,
        Some(Waveform::Exp(vec![
            num(0.0),
            num(1.0),
            num(1e-6),
            num(1e-6)
        ]))
    );
    let s = spec("V1 a 0 2 PULSE(0 1)");
    assert_eq!(s.dc, Some(num(2.0)));
    assert!(matches!(s.waveform, Some(Waveform::Pulse(_))));
    let e = element("Vx a 0 0");
    assert!(matches!(e.kind, ElementKind::VSource(_)));
    assert!(matches!(element("Ix a 0 0").kind, ElementKind::ISource(_)));
}

#[test]
fn controlled_sources_and_switch() {
    let e = element("E1 out 0 in 0 10");
    assert_eq!(e.nodes, vec!["out", "0", "in", "0"]);
    assert_eq!(e.kind, ElementKind::Vcvs { gain: num(10.0) });
    assert_eq!(
        element("G1 out 0 in 0 1m").kind,
        ElementKind::Vccs { gain: num(1e-3) }
    );
    let s = element("S1 mem rest mem rest swreset");
    assert_eq!(s.nodes, vec!["mem", "rest", "mem", "rest"]);
    assert_eq!(
        s.kind,
        ElementKind::Switch {
            model: "swreset".into(),
            initially_on: None
        }
    );
    assert_eq!(
        element("S2 a b c d sw ON").kind,
        ElementKind::Switch {
            model: "sw".into(),
            initially_on: Some(true)
        }
    );
    assert_eq!(
        element("S2 a b c d sw off").kind,
        ElementKind::Switch {
            model: "sw".into(),
            initially_on: Some(false)
        }
    );
}

#[test]
fn y_devices_take_their_name_from_the_second_word() {
    let m = element("YMEMRISTOR M1 mem rest tsm1 X0=0.25");
    assert_eq!(m.name, "m1");
    assert_eq!(m.span.col, 12);
    assert_eq!(m.nodes, vec!["mem", "rest"]);
    let ElementKind::Memristor { model, params } = m.kind else {
        panic!()
    };
    assert_eq!(model, "tsm1");
    assert_eq!(pairs(&params), vec![assign("x0", num(0.25))]);
    let r = element("yreset R1 mem rest rst");
    assert_eq!(r.name, "r1");
    assert_eq!(
        r.kind,
        ElementKind::Reset {
            model: "rst".into()
        }
    );
    assert_eq!(r.nodes, vec!["mem", "rest"]);
}

#[test]
fn subcircuit_instances() {
    let x = element("X1 a b sub params: k=1 j={2*p}");
    assert_eq!(x.nodes, vec!["a", "b"]);
    let ElementKind::Subckt { subckt, params } = x.kind else {
        panic!()
    };
    assert_eq!(subckt, "sub");
    assert_eq!(pairs(&params)[0], assign("k", num(1.0)));
    assert_eq!(params[1].name, "j");
    let x = element("XN1 in out NEURON k = 1");
    assert_eq!(x.nodes, vec!["in", "out"]);
    assert_eq!(
        x.kind,
        ElementKind::Subckt {
            subckt: "neuron".into(),
            params: vec![x_param(&x, 0)]
        }
    );
    assert_eq!(
        element("X2 a b sub").kind,
        ElementKind::Subckt {
            subckt: "sub".into(),
            params: vec![]
        }
    );
    assert_eq!(element("X3 sub").nodes, Vec::<String>::new());
}

fn x_param(e: &Element, i: usize) -> Assign {
    match &e.kind {
        ElementKind::Subckt { params, .. } => params[i].clone(),
        _ => panic!(),
    }
}

#[test]
fn param_and_func() {
    let Card::Param(list) = one(".param a=1 b={a*2} C = 3k") else {
        panic!()
    };
    assert_eq!(
        list.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        vec!["a", "b", "c"]
    );
    assert_eq!(list[2].value, num(3e3));
    assert_eq!((list[1].span.line, list[1].span.col), (2, 12));
    let Card::Func {
        name, args, body, ..
    } = one(".func F(x, Y) {x*y}")
    else {
        panic!()
    };
    assert_eq!(
        (name.as_str(), args),
        ("f", vec!["x".to_string(), "y".to_string()])
    );
    assert_eq!(
        body,
        Expr::Bin(BinOp::Mul, Box::new(var("x")), Box::new(var("y")))
    );
    let Card::Func { args, .. } = one(".func g() = {1}") else {
        panic!()
    };
    assert!(args.is_empty());
}

#[test]
fn models() {
    let Card::Model { name, kind, params, span } =
        one(".MODEL tsm1 MEMRISTOR LEVEL=101 RON=100k ROFF=10meg VON=20m VOFF=2m TON=1u TOFF=1u VS=0.25m P=4")
    else {
        panic!()
    };
    assert_eq!((name.as_str(), kind.as_str()), ("tsm1", "memristor"));
    assert_eq!(params.len(), 9);
    assert_eq!(pairs(&params)[1], assign("ron", num(1e5)));
    assert_eq!(span.col, 1);
    let Card::Model { kind, params, .. } =
        one(".model swreset sw (vt=10.05m, vh=9.95m ron=100 roff=1e15)")
    else {
        panic!()
    };
    assert_eq!(kind, "sw");
    assert_eq!(params.len(), 4);
    let Card::Model { params, .. } = one(".model r1 r") else {
        panic!()
    };
    assert!(params.is_empty());
}

#[test]
fn initial_conditions_and_options() {
    let Card::Ic(list) = one(".ic v(mem)=-70m V(X) = {x0}") else {
        panic!()
    };
    assert_eq!(list[0].0, "mem");
    assert!(close(&list[0].1, -0.07));
    assert_eq!(
        (list[1].0.as_str(), &list[1].1, list[1].2.col),
        ("x", &var("x0"), 17)
    );
    let Card::Options(list) = one(".options reltol=1e-6 UIC method=gear") else {
        panic!()
    };
    assert_eq!(
        pairs(&list),
        vec![
            assign("reltol", num(1e-6)),
            assign("uic", num(1.0)),
            assign("method", var("gear"))
        ]
    );
    assert!(matches!(one(".option abstol=1p"), Card::Options(_)));
}

#[test]
fn analyses() {
    assert!(matches!(one(".op"), Card::Op { .. }));
    let Card::Dc {
        source,
        start,
        stop,
        step,
        ..
    } = one(".dc Vin 0 1 0.1")
    else {
        panic!()
    };
    assert_eq!(
        (source.as_str(), start, stop, step),
        ("vin", num(0.0), num(1.0), num(0.1))
    );
    let Card::Tran {
        tstep,
        tstop,
        tstart,
        tmax,
        uic,
        ..
    } = one(".TRAN 10u 1 UIC")
    else {
        panic!()
    };
    assert!(close(&tstep, 1e-5));
    assert_eq!((tstop, tstart, tmax, uic), (num(1.0), None, None, true));
    let Card::Tran {
        tstart, tmax, uic, ..
    } = one(".tran 1u 1m 0.5m 2u")
    else {
        panic!()
    };
    assert_eq!(
        (tstart, tmax, uic),
        (Some(num(0.5e-3)), Some(num(2e-6)), false)
    );
    let Card::Tran {
        tstart, tmax, uic, ..
    } = one(".tran 1u 1m 0 uic")
    else {
        panic!()
    };
    assert_eq!((tstart, tmax, uic), (Some(num(0.0)), None, true));
}

#[test]
fn output_variables() {
    let Card::Save { vars, .. } =
        one(".print tran v(mem) V(a,B) i(Vx) N(YMEMRISTOR!M1:X) x(m2) n(YMEMRISTOR!XN1:M1:R), all")
    else {
        panic!()
    };
    assert_eq!(
        vars,
        vec![
            OutputVar::Voltage("mem".into(), None),
            OutputVar::Voltage("a".into(), Some("b".into())),
            OutputVar::Current("vx".into()),
            OutputVar::DeviceState {
                device: "m1".into(),
                state: "x".into()
            },
            OutputVar::DeviceState {
                device: "m2".into(),
                state: "x".into()
            },
            OutputVar::DeviceState {
                device: "xn1:m1".into(),
                state: "r".into()
            },
            OutputVar::All,
        ]
    );
    let Card::Save { vars, .. } = one(".save all") else {
        panic!()
    };
    assert_eq!(vars, vec![OutputVar::All]);
    let Card::Save { vars, .. } = one(".print v(out)") else {
        panic!()
    };
    assert_eq!(vars, vec![OutputVar::Voltage("out".into(), None)]);
}

#[test]
fn spike_rules() {
    let Card::Spike { node, rule, .. } = one(".SPIKE mem MEMRISTOR=M1,M2 LEVEL=0.5") else {
        panic!()
    };
    assert_eq!(node, "mem");
    assert_eq!(
        rule,
        SpikeRule::Memristor {
            devices: vec!["m1".into(), "m2".into()],
            level: num(0.5)
        }
    );
    let Card::Spike { rule, .. } = one(".spike mem level=0.7 memristor = XM1 , XM2") else {
        panic!()
    };
    assert_eq!(
        rule,
        SpikeRule::Memristor {
            devices: vec!["xm1".into(), "xm2".into()],
            level: num(0.7)
        }
    );
    let Card::Spike { rule, .. } = one(".spike mem memristor=m1") else {
        panic!()
    };
    assert_eq!(
        rule,
        SpikeRule::Memristor {
            devices: vec!["m1".into()],
            level: num(0.5)
        }
    );
    let Card::Spike { rule, .. } = one(".SPIKE mem RESET=R1") else {
        panic!()
    };
    assert_eq!(
        rule,
        SpikeRule::Reset {
            device: "r1".into()
        }
    );
    let Card::Spike { rule, .. } = one(".spike mem VTH=-50m") else {
        panic!()
    };
    assert_eq!(rule, SpikeRule::Threshold { level: num(-0.05) });
}

#[test]
fn neuron_directive() {
    let Card::Neuron { params, span } = one(".NEURON INPUT=mem dt=1u") else {
        panic!()
    };
    assert_eq!(
        pairs(&params),
        vec![assign("input", var("mem")), assign("dt", num(1e-6))]
    );
    assert_eq!(span.col, 1);
    // A numeric node name stays a node name.
    let Card::Neuron { params, .. } = one(".neuron input=1") else {
        panic!()
    };
    assert_eq!(params[0].value, var("1"));
}

#[test]
fn step_sweeps() {
    let step = |body: &str| match one(body) {
        Card::Step { param, spec, .. } => (param, spec),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        step(".step param iin list 1n 2n, 3n").1,
        StepSpec::List(vec![num(1e-9), num(2e-9), num(3e-9)])
    );
    assert_eq!(
        step(".step param R 1k 10k 1k"),
        (
            "r".to_string(),
            StepSpec::Linear {
                start: num(1e3),
                stop: num(1e4),
                incr: num(1e3)
            }
        )
    );
    let decade = StepSpec::Decade {
        start: num(1.0),
        stop: num(1e3),
        points: num(10.0),
    };
    assert_eq!(step(".step dec param x 1 1k 10").1, decade);
    assert_eq!(step(".step param x dec 1 1k 10").1, decade);
    assert!(matches!(
        step(".step lin param x 0 1 0.1").1,
        StepSpec::Linear { .. }
    ));
}

#[test]
fn comments_continuations_and_case() {
    let body = "* a comment\nR1 A b ; inline\n+ 1k $ dollar comment\n\nC1 b 0\n+ 1u\n+ IC=0\n";
    let all = cards(body);
    assert_eq!(all.len(), 2);
    let Card::Element(r) = &all[0] else { panic!() };
    assert_eq!(r.nodes, vec!["a", "b"]);
    assert_eq!(r.kind, ElementKind::Resistor { value: num(1e3) });
    let Card::Element(c) = &all[1] else { panic!() };
    assert_eq!(
        c.kind,
        ElementKind::Capacitor {
            value: num(1e-6),
            ic: Some(num(0.0))
        }
    );
    assert_eq!(c.span.line, 6);
}

#[test]
fn errors_on_continuation_lines_point_at_the_right_line() {
    let e = fail("V1 a 0\n+ SIN(0 1\n+ 1k 2 3 4 5)");
    assert_eq!((e.span.line, e.span.col), (4, 12));
    assert!(e.message.contains("at most 6"), "{e}");
}

#[test]
fn end_stops_parsing() {
    let all = cards("R1 a b 1\n.end\nthis is not a card\n.ac dec 10 1 1k\n");
    assert_eq!(all.len(), 1);
}

#[test]
fn subcircuits_nest() {
    let text = ".subckt outer a b params: k=2\nR1 a b {k}\n.subckt inner x\nC1 x 0 1u\n.ends inner\nX1 a inner\n.ends OUTER\nX2 n1 n2 outer k=3\n";
    let all = cards(text);
    assert_eq!(all.len(), 2);
    let Card::Subckt(outer) = &all[0] else {
        panic!()
    };
    assert_eq!(outer.name, "outer");
    assert_eq!(outer.ports, vec!["a", "b"]);
    assert_eq!(pairs(&outer.params), vec![assign("k", num(2.0))]);
    assert_eq!(outer.span.line, 2);
    assert_eq!(outer.cards.len(), 3);
    let Card::Subckt(inner) = &outer.cards[1] else {
        panic!()
    };
    assert_eq!(
        (inner.name.as_str(), inner.ports.clone(), inner.cards.len()),
        ("inner", vec!["x".to_string()], 1)
    );
    // Parameters without `params:` and a bare `.ends`.
    let all = cards(".subckt s a k=1\nR1 a 0 {k}\n.ends\n");
    let Card::Subckt(s) = &all[0] else { panic!() };
    assert_eq!(s.ports, vec!["a"]);
    assert_eq!(s.params.len(), 1);
}

#[test]
fn includes_are_spliced_relative_to_the_including_file() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    // Included files have no title line.
    std::fs::write(
        lib.join("models.inc"),
        ".model tsm1 memristor level=101\n.include \"more.inc\"\n",
    )
    .unwrap();
    std::fs::write(lib.join("more.inc"), "R9 a 0 1k\n.end\nignored garbage\n").unwrap();
    let main = dir.path().join("main.cir");
    std::fs::write(
        &main,
        "title\nR1 a 0 1\n.include lib/models.inc\n.INC 'lib/more.inc'\nR2 b 0 2\n",
    )
    .unwrap();
    let n = parse_file(&main).unwrap();
    let names: Vec<String> = n
        .cards
        .iter()
        .map(|c| match c {
            Card::Element(e) => e.name.clone(),
            Card::Model { name, .. } => name.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names, vec!["r1", "tsm1", "r9", "r9", "r2"]);
    // Spans of included cards name the included file.
    let Card::Element(r9) = &n.cards[2] else {
        panic!()
    };
    assert_eq!(r9.span.file.as_path(), lib.join("more.inc"));
    assert_eq!(r9.span.line, 1);
}

#[test]
fn recursive_and_missing_includes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.inc"), "R1 a 0 1\n.include b.inc\n").unwrap();
    std::fs::write(dir.path().join("b.inc"), "\n\n.include a.inc\n").unwrap();
    let main = dir.path().join("main.cir");
    std::fs::write(&main, "title\n.include a.inc\n").unwrap();
    let err = parse_file(&main).unwrap_err();
    assert!(err.message.starts_with("recursive .include: "), "{err}");
    assert!(
        err.message.contains("a.inc -> ") && err.message.contains("b.inc -> "),
        "{err}"
    );
    assert_eq!(err.span.file.as_path(), dir.path().join("b.inc"));
    assert_eq!((err.span.line, err.span.col), (3, 1));

    std::fs::write(&main, "title\n  .include nothere.inc\n").unwrap();
    let err = parse_file(&main).unwrap_err();
    assert_eq!((err.span.line, err.span.col), (2, 3));
    assert!(
        err.message
            .contains(&dir.path().join("nothere.inc").display().to_string()),
        "{err}"
    );

    let err = parse_file(&dir.path().join("absent.cir")).unwrap_err();
    assert_eq!((err.span.line, err.span.col), (0, 0));
    assert!(err.message.contains("absent.cir"), "{err}");
}

#[test]
fn subckt_spanning_an_include_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.inc"), "R1 a b 1k\n").unwrap();
    let main = dir.path().join("main.cir");
    std::fs::write(&main, "t\n.subckt s a b\n.include body.inc\n.ends s\n").unwrap();
    let n = parse_file(&main).unwrap();
    let Card::Subckt(s) = &n.cards[0] else {
        panic!()
    };
    assert_eq!(s.cards.len(), 1);
}

fn reference(name: &str) -> Netlist {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("netlists")
        .join(name);
    parse_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn reference_lif() {
    let n = reference("lif.cir");
    assert!(n.title.starts_with("* lif.cir"));
    // .param iin, .param tstop, 5 elements, .model, .spike, .neuron, .options, .tran
    assert_eq!(n.cards.len(), 12);
    let Card::Element(reset) = &n.cards[6] else {
        panic!()
    };
    assert_eq!(reset.name, "r1");
    assert_eq!(
        reset.kind,
        ElementKind::Reset {
            model: "rst".into()
        }
    );
    assert!(n.cards.iter().any(
        |c| matches!(c, Card::Spike { rule: SpikeRule::Reset { device }, .. } if device == "r1")
    ));
    assert!(n
        .cards
        .iter()
        .any(|c| matches!(c, Card::Tran { uic: true, .. })));
    assert!(n.cards.iter().any(|c| matches!(c, Card::Neuron { .. })));
}

#[test]
fn reference_mif2() {
    let n = reference("mif2.cir");
    let memristors: Vec<&Element> = n
        .cards
        .iter()
        .filter_map(|c| match c {
            Card::Element(e) if matches!(e.kind, ElementKind::Memristor { .. }) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(
        memristors
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        vec!["m1", "m2"]
    );
    assert_eq!(memristors[1].nodes, vec!["mem", "rst"]);
    let models: Vec<&Vec<Assign>> = n
        .cards
        .iter()
        .filter_map(|c| match c {
            Card::Model { params, .. } => Some(params),
            _ => None,
        })
        .collect();
    let toff = models[1].iter().find(|a| a.name == "toff").unwrap();
    assert!(close(&toff.value, 2e-3));
    let von = models[1].iter().find(|a| a.name == "von").unwrap();
    assert!(close(&von.value, 29.5e-3));
    assert!(n.cards.iter().any(|c| matches!(
        c,
        Card::Spike { rule: SpikeRule::Memristor { devices, .. }, .. } if devices == &["m1", "m2"]
    )));
}

#[test]
fn reference_sine_bench() {
    let n = reference("mif_sine.cir");
    let Card::Element(iin) = &n.cards[0] else {
        panic!()
    };
    let ElementKind::ISource(spec) = &iin.kind else {
        panic!()
    };
    assert_eq!(spec.dc, Some(num(0.0)));
    let Some(Waveform::Sin(args)) = &spec.waveform else {
        panic!()
    };
    assert!(close(&args[2], 1.0) && close(&args[5], -90.0));
}
