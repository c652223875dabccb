//! Malformed netlists: each must give a located error (exact line:col and
//! the key words of the message), and none may panic.

use std::path::Path;

use circsnn::netlist::{parse_file, parse_str};

/// One malformed netlist: the main file (title line first), extra files
/// beside it, and where the error must be.
struct Case {
    text: &'static str,
    files: &'static [(&'static str, &'static str)],
    /// File the error must be located in.
    file: &'static str,
    line: u32,
    col: u32,
    message: &'static str,
}

const fn case(text: &'static str, line: u32, col: u32, message: &'static str) -> Case {
    Case {
        text,
        files: &[],
        file: "main.cir",
        line,
        col,
        message,
    }
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Unsupported elements and directives.
    case("t\nQ1 c b e qmod\n", 2, 1, "unsupported element 'Q1' (bipolar transistor)"),
    case("t\nR1 a b 1\n  M1 d g s b nmos\n", 3, 3, "unsupported element 'M1' (MOSFET)"),
    case("t\nD1 a k dmod\n", 2, 1, "unsupported element 'D1' (diode)"),
    case("t\nB1 a 0 V={2*V(b)}\n", 2, 1, "unsupported element 'B1' (behavioural source)"),
    case("t\nK1 L1 L2 0.9\n", 2, 1, "unsupported element 'K1' (coupled inductors)"),
    case("t\nT1 a 0 b 0 Z0=50 TD=1n\n", 2, 1, "unsupported element 'T1' (transmission line)"),
    case("t\n1R a b 1\n", 2, 1, "expected an element or a directive, found '1R'"),
    case("t\n.ac dec 10 1 1k\n", 2, 1, "unsupported directive '.ac'"),
    case("t\n.four 1k v(a)\n", 2, 1, "unsupported directive '.four'"),
    case("t\n.control\nrun\n.endc\n", 2, 1, "unsupported directive '.control'"),
    case("t\nYFOO a b c\n", 2, 1, "unsupported Y device 'YFOO'"),
    case("t\nE1 a 0 VALUE={V(b)*2}\n", 2, 8, "behavioural E sources"),
    // Missing pieces: the error is just past the end of the card.
    case("t\nR1 a\n", 2, 5, "expected node 2 of 2 after 'R1 a', found end of line"),
    case("t\nR1 a b\n", 2, 7, "expected a value after 'R1 a b', found end of line"),
    case("t\nYMEMRISTOR M1 a\n", 2, 16, "expected node 2 of 2 after 'YMEMRISTOR M1 a'"),
    case("t\nS1 a b c d\n", 2, 11, "expected a switch model name after 'S1 a b c d'"),
    case("t\nX1\n", 2, 3, "expected nodes and a subcircuit name after 'X1', found end of line"),
    case("t\nV1 a 0\n", 2, 7, "expected a source value (DC v, SIN(...)"),
    case("t\n.model m\n", 2, 9, "expected a model type after '.model m'"),
    case("t\n.include\n", 2, 9, "expected a file name after '.include'"),
    // Bad numbers and values.
    case("t\nR1 a b 1.2.3k\n", 2, 8, "bad number '1.2.3k'"),
    case("t\nC1 a b 2*k\n", 2, 8, "write expressions in braces: {2*k}"),
    case("t\nR1 a b #1\n", 2, 8, "bad value '#1'"),
    // Braces, quotes, parentheses and expressions.
    case("t\nR1 a b {1+2\n", 2, 8, "unclosed '{' (missing '}')"),
    case("t\nR1 a b 1}\n", 2, 9, "unmatched '}'"),
    case("t\nR1 a b 'x+1\n", 2, 8, "unclosed quote"),
    case("t\nV1 a 0 SIN(0 1 1k\n", 2, 11, "unclosed '(' (missing ')')"),
    case("t\n.tran 1u 1m)\n", 2, 12, "unmatched ')'"),
    case("t\nR1 a b {1 + * 2}\n", 2, 13, "expected a number, a name or '(', found '*'"),
    case("t\nR1 a b {(1+2}\n", 2, 9, "unclosed '('"),
    case("t\nR1 a b {}\n", 2, 9, "found end of expression"),
    case("t\nR1 a b {exp(1, 2)}\n", 2, 9, "function 'exp' takes 1 argument, found 2"),
    case("t\nR1 a b {2 x}\n", 2, 11, "expected an operator, found 'x'"),
    // .param and .func.
    case("t\n.param\n", 2, 7, "expected name=value after '.param', found end of line"),
    case("t\n.param a\n", 2, 9, "expected '=' after '.param a', found end of line"),
    case("t\n.param =1\n", 2, 8, "'=' without a parameter name"),
    case("t\n.param a=\n", 2, 10, "expected a value after '.param a=', found end of line"),
    case("t\n.param 1a=2\n", 2, 8, "bad parameter name '1a'"),
    case("t\n.param b = a * 2\n", 2, 14, "unexpected '*' after '.param b = a' (write expressions in braces"),
    case("t\n.func exp(x) {x}\n", 2, 7, "cannot redefine the built-in function 'exp'"),
    case("t\n.func f(x, x) {x}\n", 2, 12, "argument 'x' is given twice"),
    // Subcircuits.
    case("t\nR1 a b 1\n.subckt foo a b\nR2 a b 1\n", 3, 1, "unterminated .subckt 'foo' (opened at line 3)"),
    case("t\n.subckt foo a\nR1 a 0 1\n.ends bar\n", 4, 7, "'.ends bar' does not match '.subckt foo'"),
    case("t\n.ends\n", 2, 1, "'.ends' without a matching .subckt"),
    case("t\n.subckt s a\n.tran 1u 1m\n.ends\n", 3, 1, "'.tran' is not allowed inside .subckt 's'"),
    case("t\n.subckt s a\nR1 a 0 1\n.end\n", 2, 1, "unterminated .subckt 's'"),
    // Sources.
    case("t\nV1 a 0 PWL(0 0 1m)\n", 2, 8, "PWL needs time-value pairs, found an odd number of values (3)"),
    case("t\nV1 a 0 AC 1\n", 2, 8, "AC source specifications are not supported"),
    case("t\nV1 a 0 SIN(0 1)\n", 2, 15, "needs at least 3 values, found 2"),
    case("t\nV1 a 0 PULSE(0 1 0 1n 1n 1 2 3)\n", 2, 30, "takes at most 7 values, found 8"),
    case("t\nV1 a 0 SFFM(0 1 1k)\n", 2, 8, "unsupported source waveform 'SFFM'"),
    case("t\nV1 a 0 DC 1 DC 2\n", 2, 13, "the DC value is given twice"),
    case("t\nV1 a 0 SIN(0 1 1k) 5\n", 2, 20, "unexpected '5' after 'V1 a 0 SIN(0 1 1k)'"),
    case("t\nV1 a 0 SIN 0 1 1k\n", 2, 12, "expected '(' after 'SIN', found '0' (waveform arguments go in parentheses)"),
    // Analyses and outputs.
    case("t\n.tran 1u\n", 2, 9, "expected tstop after '.tran 1u', found end of line"),
    case("t\n.tran 1u 1m 0 1u 5\n", 2, 18, "unexpected '5' after '.tran 1u 1m 0 1u' (.tran takes"),
    case("t\n.tran 1u 1m uic 5\n", 2, 17, "unexpected '5'"),
    case("t\n.dc V1 0 1\n", 2, 11, "expected a step after '.dc V1 0 1'"),
    case("t\n.op now\n", 2, 5, "unexpected 'now' after '.op'"),
    case("t\n.ic v(a,b)=1\n", 2, 8, "differential .ic v(a,b) is not supported"),
    case("t\n.ic a=1\n", 2, 5, "expected v(node)=value after '.ic', found 'a'"),
    case("t\n.print tran p(a)\n", 2, 13, "unknown output variable 'p(...)'"),
    case("t\n.print N(m1)\n", 2, 10, "expected N(<type>!<name>:<state>)"),
    case("t\n.save\n", 2, 6, "expected an output variable after '.save'"),
    // .spike, .neuron, .step, .options.
    case("t\n.spike mem FOO=1\n", 2, 12, "unknown .spike rule 'FOO'"),
    case("t\n.spike mem\n", 2, 11, "expected a spike rule"),
    case("t\n.spike mem RESET=R1 LEVEL=0.5\n", 2, 21, "LEVEL= applies only to MEMRISTOR="),
    case("t\n.spike mem RESET=R1 VTH=1\n", 2, 21, "'VTH=' conflicts with 'RESET='"),
    case("t\n.neuron dt=1u\n", 2, 1, "'.neuron' needs input=<node>"),
    case("t\n.step V1 0 1 0.1\n", 2, 7, "only '.step param' sweeps are supported"),
    case("t\n.step param x list\n", 2, 19, "expected a list of values"),
    case("t\n.options\n", 2, 9, "expected an option"),
    // Stray tokens, continuation lines.
    case("t\nR1 a b 1k 2k\n", 2, 11, "unexpected '2k' after 'R1 a b 1k'"),
    case("t\n+ R1 a b 1\n", 2, 1, "continuation line '+' with no card before it"),
    case("t\nV1 a 0\n* comment\n+ PWL(0 0\n+ 1m 1 2m)\n", 4, 3, "odd number of values (5)"),
    case("t\nR1 a b\n+ 1k\n+ 2k\n", 4, 3, "unexpected '2k'"),
    // Includes.
    Case {
        text: "t\nR1 a 0 1\n  .include nope.cir\n",
        files: &[],
        file: "main.cir",
        line: 3,
        col: 3,
        message: "cannot read included file",
    },
    Case {
        text: "t\n.include a.inc\n",
        files: &[
            ("a.inc", "R1 a 0 1\n.include b.inc\n"),
            ("b.inc", "* b\n.include a.inc\n"),
        ],
        file: "b.inc",
        line: 2,
        col: 1,
        message: "recursive .include: ",
    },
    Case {
        text: "t\n.include self.cir\n",
        files: &[("self.cir", ".include self.cir\n")],
        file: "self.cir",
        line: 1,
        col: 1,
        message: "recursive .include: ",
    },
    Case {
        text: "t\n.include bad.inc\n",
        files: &[("bad.inc", "R1 a 0 1\nR2 a 0 {1+}\n")],
        file: "bad.inc",
        line: 2,
        col: 11,
        message: "expected a number, a name or '('",
    },
];

#[test]
fn malformed_netlists_give_located_errors() {
    let mut failures = Vec::new();
    for (index, c) in CASES.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in c.files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let main = dir.path().join("main.cir");
        std::fs::write(&main, c.text).unwrap();
        match parse_file(&main) {
            Ok(n) => failures.push(format!(
                "case {index} {:?}: parsed without error: {:?}",
                c.text, n.cards
            )),
            Err(e) => {
                let file_ok = e.span.file.as_path() == dir.path().join(c.file);
                let place_ok = (e.span.line, e.span.col) == (c.line, c.col);
                if !file_ok || !place_ok || !e.message.contains(c.message) {
                    failures.push(format!(
                        "case {index} {:?}:\n   want {}:{}:{}: ...{}...\n   got  {e}",
                        c.text, c.file, c.line, c.col, c.message
                    ));
                }
            }
        }
    }
    assert!(CASES.len() >= 35);
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn error_messages_display_as_file_line_col() {
    let err = parse_str("t\nR1 a b\n", Path::new("dir/x.cir")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dir/x.cir:2:7: expected a value after 'R1 a b', found end of line"
    );
    let missing = parse_file(Path::new("/nonexistent/circsnn/none.cir")).unwrap_err();
    assert_eq!((missing.span.line, missing.span.col), (0, 0));
    assert!(missing
        .to_string()
        .contains("/nonexistent/circsnn/none.cir"));
}

/// A tiny deterministic PRNG (xorshift64*), so the fuzz corpus is fixed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bytes that exercise the lexer and parser: delimiters, comment and
/// continuation markers, suffix letters, digits, and a non-ASCII byte.
const INTERESTING: &[u8] =
    b"{}()'\"=,;$*+-./^ \n\t0123456789eEmMkKuUnNgGxXyYvViIrRcC!:\xc2\xb5\xff";

fn mutate(text: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut bytes = text.to_vec();
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            bytes.push(b'x');
        }
        let at = rng.below(bytes.len());
        match rng.below(5) {
            0 => bytes[at] = INTERESTING[rng.below(INTERESTING.len())],
            1 => {
                bytes.remove(at);
            }
            2 => bytes.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            3 => {
                // Duplicate a short chunk elsewhere (repeats cards, parens, ...).
                let len = 1 + rng.below(12.min(bytes.len() - at));
                let chunk = bytes[at..at + len].to_vec();
                let to = rng.below(bytes.len());
                bytes.splice(to..to, chunk);
            }
            _ => bytes[at] = rng.next() as u8,
        }
    }
    bytes
}

#[test]
fn random_mutations_of_the_reference_netlists_never_panic() {
    let netlists = Path::new(env!("CARGO_MANIFEST_DIR")).join("netlists");
    let mut sources: Vec<Vec<u8>> = std::fs::read_dir(&netlists)
        .unwrap()
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    sources.push(b"t\n.subckt s a b params: k=1\nR1 a b {k*2}\n.ends s\nX1 n1 0 s k={max(1, 2^-2)}\n.step param k list 1 2\n.ic v(n1)=1\n.print tran v(n1) i(V1) x(m1) N(YMEMRISTOR!m1:X)\n".to_vec());
    assert!(sources.len() >= 9);
    // Includes resolve against an empty directory, so they fail cleanly.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.cir");
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut errors) = (0, 0);
    for round in 0..600 {
        let source = &sources[round % sources.len()];
        let mutated = mutate(source, &mut rng);
        let text = String::from_utf8_lossy(&mutated);
        let physical_lines = text.split('\n').count() as u32;
        match parse_str(&text, &path) {
            Ok(_) => ok += 1,
            Err(e) => {
                errors += 1;
                // Every error points inside the text it came from.
                if e.span.file.as_path() == path {
                    assert!(
                        e.span.line >= 2 && e.span.line <= physical_lines,
                        "{e} for {text:?}"
                    );
                    let line = text.split('\n').nth(e.span.line as usize - 1).unwrap();
                    assert!(
                        e.span.col >= 1 && e.span.col as usize <= line.chars().count() + 1,
                        "{e} for {text:?}"
                    );
                }
                assert!(!e.message.is_empty());
            }
        }
    }
    eprintln!("fuzz: {ok} parsed, {errors} rejected");
    // Both outcomes occur, so the mutations reach past the lexer.
    assert!(ok > 20 && errors > 100, "ok {ok}, errors {errors}");
}
