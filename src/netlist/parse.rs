//! Cards: elements and directives, `.subckt` nesting and `.include` splicing.
//!
//! Each logical line is tokenized ([`super::lexer::tokenize`]) and read by a
//! cursor that knows the byte → line:col map, so every error points at the
//! offending token (or just past the end of the card when something is
//! missing).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ast::*;
use super::expr::{builtin_arity, is_identifier, parse_expression, parse_number};
use super::lexer::{logical_lines, tokenize, LogicalLine, TokKind, Token};
use super::ParseError;

/// Limits that keep hostile input from exhausting the stack.
const MAX_SUBCKT_NESTING: usize = 64;
const MAX_INCLUDE_DEPTH: usize = 64;

/// One file being read; `.include` pushes another on top.
struct Source {
    file: Arc<PathBuf>,
    /// Canonical path, to detect recursive includes.
    identity: PathBuf,
    lines: std::vec::IntoIter<LogicalLine>,
}

struct Parser {
    sources: Vec<Source>,
}

/// A `.subckt` waiting for its `.ends`.
struct OpenSubckt {
    name: String,
    span: Span,
}

pub(crate) fn parse_netlist(text: &str, path: &Path) -> Result<Netlist, ParseError> {
    let file = Arc::new(path.to_path_buf());
    let lexed = logical_lines(text, true);
    let identity = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut parser = Parser {
        sources: vec![Source {
            file: file.clone(),
            identity,
            lines: lexed.lines.into_iter(),
        }],
    };
    let cards = parser.block(None, 0)?;
    Ok(Netlist {
        title: lexed.title.unwrap_or_default(),
        path: file,
        cards,
    })
}

fn unterminated(open: &OpenSubckt) -> ParseError {
    ParseError {
        span: open.span.clone(),
        message: format!(
            "unterminated .subckt '{}' (opened at line {})",
            open.name, open.span.line
        ),
    }
}

/// Directives that may appear between `.subckt` and `.ends`.
fn allowed_in_subckt(directive: &str) -> bool {
    matches!(directive, "param" | "func" | "model")
}

impl Parser {
    fn next_line(&mut self) -> Option<(Arc<PathBuf>, LogicalLine)> {
        loop {
            let source = self.sources.last_mut()?;
            if let Some(line) = source.lines.next() {
                return Some((source.file.clone(), line));
            }
            self.sources.pop();
        }
    }

    /// Cards up to the end of input (top level) or the `.ends` of `open`.
    fn block(&mut self, open: Option<&OpenSubckt>, depth: usize) -> Result<Vec<Card>, ParseError> {
        let mut cards = Vec::new();
        loop {
            let Some((file, line)) = self.next_line() else {
                return match open {
                    Some(open) => Err(unterminated(open)),
                    None => Ok(cards),
                };
            };
            let tokens = tokenize(&line.text)
                .map_err(|(offset, message)| error_at(&file, &line, offset, message))?;
            let mut cur = Cur {
                file: &file,
                line: &line,
                toks: &tokens,
                i: 0,
            };
            if line.orphan_continuation {
                return Err(cur.error(
                    0,
                    "continuation line '+' with no card before it".to_string(),
                ));
            }
            let Some(first) = cur.peek() else { continue };
            let raw = cur.raw(first);
            if first.kind != TokKind::Word {
                return Err(cur.error(
                    first.start,
                    format!("expected an element or a directive, found '{raw}'"),
                ));
            }
            let lower = raw.to_ascii_lowercase();
            let Some(directive) = lower.strip_prefix('.') else {
                cards.push(Card::Element(element(&mut cur)?));
                continue;
            };
            match directive {
                "end" => {
                    cur.bump();
                    cur.finish()?;
                    // `.end` in an included file ends that file only.
                    if self.sources.len() > 1 {
                        self.sources.pop();
                        continue;
                    }
                    return match open {
                        Some(open) => Err(unterminated(open)),
                        None => Ok(cards),
                    };
                }
                "ends" => {
                    let Some(open) = open else {
                        return Err(
                            cur.error(first.start, format!("'{raw}' without a matching .subckt"))
                        );
                    };
                    cur.bump();
                    if let Some(name) = cur.peek().filter(|t| t.kind == TokKind::Word) {
                        let written = cur.raw(name);
                        if !written.eq_ignore_ascii_case(&open.name) {
                            return Err(cur.error(
                                name.start,
                                format!(
                                    "'.ends {written}' does not match '.subckt {}' (opened at line {})",
                                    open.name, open.span.line
                                ),
                            ));
                        }
                        cur.bump();
                    }
                    cur.finish()?;
                    return Ok(cards);
                }
                "subckt" => {
                    if depth >= MAX_SUBCKT_NESTING {
                        return Err(cur.error(
                            first.start,
                            "subcircuit definitions nested too deeply".to_string(),
                        ));
                    }
                    let header = subckt_header(&mut cur)?;
                    let open_here = OpenSubckt {
                        name: header.name.clone(),
                        span: header.span.clone(),
                    };
                    let body = self.block(Some(&open_here), depth + 1)?;
                    cards.push(Card::Subckt(Subckt {
                        cards: body,
                        ..header
                    }));
                }
                "include" | "inc" => self.include(&mut cur)?,
                _ => {
                    if let Some(open) = open {
                        if !allowed_in_subckt(directive) && is_known_directive(directive) {
                            return Err(cur.error(
                                first.start,
                                format!("'{raw}' is not allowed inside .subckt '{}'", open.name),
                            ));
                        }
                    }
                    cards.push(directive_card(&mut cur, directive)?);
                }
            }
        }
    }

    /// `.include file`: read the file relative to the including one and
    /// read its lines next.
    fn include(&mut self, cur: &mut Cur) -> Result<(), ParseError> {
        let Some(card) = cur.bump() else {
            unreachable!("the directive token was peeked")
        };
        let name = match cur.peek() {
            Some(t) if matches!(t.kind, TokKind::Str | TokKind::Quote) => {
                let (start, end) = t.inner_range();
                &cur.line.text[start..end]
            }
            Some(t) if t.kind == TokKind::Word => cur.raw(t),
            _ => return Err(cur.expected("a file name")),
        };
        if name.is_empty() {
            return Err(cur.expected("a file name"));
        }
        cur.bump();
        cur.finish()?;
        let span = cur.span_at(card.start);
        let directory = cur.file.parent().unwrap_or(Path::new(""));
        let target = directory.join(name);
        if self.sources.len() >= MAX_INCLUDE_DEPTH {
            return Err(ParseError {
                span,
                message: ".include files nested too deeply".to_string(),
            });
        }
        let bytes = std::fs::read(&target).map_err(|e| ParseError {
            span: span.clone(),
            message: format!("cannot read included file '{}': {e}", target.display()),
        })?;
        let identity = std::fs::canonicalize(&target).unwrap_or_else(|_| target.clone());
        if let Some(first) = self.sources.iter().position(|s| s.identity == identity) {
            let chain: Vec<String> = self.sources[first..]
                .iter()
                .map(|s| s.file.display().to_string())
                .chain(std::iter::once(target.display().to_string()))
                .collect();
            return Err(ParseError {
                span,
                message: format!("recursive .include: {}", chain.join(" -> ")),
            });
        }
        let lexed = logical_lines(&String::from_utf8_lossy(&bytes), false);
        self.sources.push(Source {
            file: Arc::new(target),
            identity,
            lines: lexed.lines.into_iter(),
        });
        Ok(())
    }
}

fn error_at(file: &Arc<PathBuf>, line: &LogicalLine, offset: usize, message: String) -> ParseError {
    let p = line.pos[offset.min(line.pos.len() - 1)];
    ParseError {
        span: Span {
            file: file.clone(),
            line: p.line,
            col: p.col,
        },
        message,
    }
}

/// Keep error messages short when they quote a long card.
fn shorten(text: &str) -> String {
    const MAX: usize = 48;
    let count = text.chars().count();
    if count <= MAX {
        text.to_string()
    } else {
        let tail: String = text.chars().skip(count - MAX).collect();
        format!("...{tail}")
    }
}

/// A cursor over the tokens of one logical line.
struct Cur<'a> {
    file: &'a Arc<PathBuf>,
    line: &'a LogicalLine,
    toks: &'a [Token],
    i: usize,
}

impl<'a> Cur<'a> {
    fn span_at(&self, offset: usize) -> Span {
        let p = self.line.pos[offset.min(self.line.pos.len() - 1)];
        Span {
            file: self.file.clone(),
            line: p.line,
            col: p.col,
        }
    }

    fn error(&self, offset: usize, message: String) -> ParseError {
        ParseError {
            span: self.span_at(offset),
            message,
        }
    }

    fn raw(&self, t: Token) -> &'a str {
        &self.line.text[t.start..t.end]
    }

    fn peek(&self) -> Option<Token> {
        self.toks.get(self.i).copied()
    }

    fn peek_kind(&self, ahead: usize) -> Option<TokKind> {
        self.toks.get(self.i + ahead).map(|t| t.kind)
    }

    /// Whether the next token is the word `keyword` (case-insensitive).
    fn next_is_word(&self, keyword: &str) -> bool {
        self.peek()
            .is_some_and(|t| t.kind == TokKind::Word && self.raw(t).eq_ignore_ascii_case(keyword))
    }

    fn bump(&mut self) -> Option<Token> {
        let t = self.peek()?;
        self.i += 1;
        Some(t)
    }

    fn at_end(&self) -> bool {
        self.i >= self.toks.len()
    }

    /// Offset of the next token, or of the end of the line.
    fn here(&self) -> usize {
        self.peek().map_or(self.line.text.len(), |t| t.start)
    }

    fn describe_next(&self) -> String {
        match self.peek() {
            None => "end of line".to_string(),
            Some(t) => format!("'{}'", shorten(self.raw(t))),
        }
    }

    /// The card as read so far, for messages.
    fn so_far(&self) -> String {
        if self.i == 0 {
            return String::new();
        }
        shorten(&self.line.text[self.toks[0].start..self.toks[self.i - 1].end])
    }

    fn expected(&self, what: &str) -> ParseError {
        self.error(
            self.here(),
            format!(
                "expected {what} after '{}', found {}",
                self.so_far(),
                self.describe_next()
            ),
        )
    }

    fn expect(&mut self, kind: TokKind, what: &str) -> Result<Token, ParseError> {
        match self.peek() {
            Some(t) if t.kind == kind => {
                self.i += 1;
                Ok(t)
            }
            _ => Err(self.expected(what)),
        }
    }

    fn word(&mut self, what: &str) -> Result<(Token, &'a str), ParseError> {
        let t = self.expect(TokKind::Word, what)?;
        Ok((t, self.raw(t)))
    }

    /// A node (or device, model, source) name, lower-case.
    fn name(&mut self, what: &str) -> Result<String, ParseError> {
        Ok(self.word(what)?.1.to_ascii_lowercase())
    }

    /// A number, `{expr}`, `'expr'` or bare parameter name.
    fn value(&mut self, what: &str) -> Result<Expr, ParseError> {
        match self.peek() {
            Some(t) if matches!(t.kind, TokKind::Word | TokKind::Brace | TokKind::Quote) => {
                self.i += 1;
                self.value_of(t)
            }
            _ => Err(self.expected(what)),
        }
    }

    fn value_of(&self, t: Token) -> Result<Expr, ParseError> {
        match t.kind {
            TokKind::Brace | TokKind::Quote => {
                let (start, end) = t.inner_range();
                parse_expression(&self.line.text[start..end])
                    .map_err(|e| self.error(start + e.offset, e.message))
            }
            _ => word_value(self.raw(t)).map_err(|message| self.error(t.start, message)),
        }
    }

    fn finish(&self) -> Result<(), ParseError> {
        self.finish_with("")
    }

    /// No tokens may be left; `hint` says what the card takes.
    fn finish_with(&self, hint: &str) -> Result<(), ParseError> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(self.error(
                t.start,
                format!(
                    "unexpected '{}' after '{}'{hint}",
                    shorten(self.raw(t)),
                    self.so_far()
                ),
            )),
        }
    }

    /// `name=value`; with `flags`, a bare `name` means `name=1`.
    fn assignment(&mut self, flags: bool) -> Result<Assign, ParseError> {
        let Some(t) = self.peek() else {
            return Err(self.expected("name=value"));
        };
        match t.kind {
            TokKind::Eq => Err(self.error(t.start, "'=' without a parameter name".to_string())),
            TokKind::Word => {
                let raw = self.raw(t);
                if !is_identifier(raw) {
                    return Err(
                        self.error(t.start, format!("bad parameter name '{}'", shorten(raw)))
                    );
                }
                self.i += 1;
                let span = self.span_at(t.start);
                let name = raw.to_ascii_lowercase();
                if self.peek_kind(0) == Some(TokKind::Eq) {
                    self.i += 1;
                    let value = self.value("a value")?;
                    // `k = a * 2`: SPICE expressions need braces.
                    if let Some(next) = self.peek() {
                        let text = self.raw(next);
                        if next.kind == TokKind::Word && text.starts_with(['*', '/', '^', '+', '-'])
                        {
                            return Err(self.error(
                                next.start,
                                format!(
                                    "unexpected '{}' after '{}' (write expressions in braces: {{...}})",
                                    shorten(text),
                                    self.so_far()
                                ),
                            ));
                        }
                    }
                    Ok(Assign { name, value, span })
                } else if flags {
                    Ok(Assign {
                        name,
                        value: Expr::Num(1.0),
                        span,
                    })
                } else {
                    Err(self.expected("'='"))
                }
            }
            _ => Err(self.expected("name=value")),
        }
    }

    /// Assignments up to the end of the line.
    fn assignments(&mut self) -> Result<Vec<Assign>, ParseError> {
        let mut list = Vec::new();
        while !self.at_end() {
            list.push(self.assignment(false)?);
        }
        Ok(list)
    }

    /// `n` node names.
    fn nodes(&mut self, n: usize) -> Result<Vec<String>, ParseError> {
        let mut nodes = Vec::with_capacity(n);
        for k in 1..=n {
            match self.peek() {
                Some(t) if t.kind == TokKind::Word => {
                    self.i += 1;
                    nodes.push(self.raw(t).to_ascii_lowercase());
                }
                // The label is only formatted on the error path.
                _ => return Err(self.expected(&format!("node {k} of {n}"))),
            }
        }
        Ok(nodes)
    }
}

/// A bare word where a value is expected: a number or a parameter name.
fn word_value(raw: &str) -> Result<Expr, String> {
    let mut chars = raw.chars();
    let first = chars.next().unwrap_or(' ');
    let second = chars.next().unwrap_or(' ');
    let numeric = first.is_ascii_digit()
        || first == '.'
        || (matches!(first, '+' | '-') && (second.is_ascii_digit() || second == '.'));
    let hint = if raw.contains(['*', '/', '^', '+', '-']) {
        format!(" (write expressions in braces: {{{raw}}})")
    } else {
        String::new()
    };
    if numeric {
        parse_number(raw)
            .map(Expr::Num)
            .ok_or_else(|| format!("bad number '{}'{hint}", shorten(raw)))
    } else if is_identifier(raw) {
        Ok(Expr::Var(raw.to_ascii_lowercase()))
    } else {
        Err(format!(
            "bad value '{}', expected a number, a parameter name or {{expression}}{hint}",
            shorten(raw)
        ))
    }
}

/// What an unsupported element letter is, for the error message.
fn element_description(letter: char) -> &'static str {
    match letter {
        'a' => "XSPICE code model",
        'b' => "behavioural source",
        'd' => "diode",
        'f' => "current-controlled current source",
        'h' => "current-controlled voltage source",
        'j' => "JFET",
        'k' => "coupled inductors",
        'm' => "MOSFET",
        'n' => "Verilog-A device",
        'o' => "lossy transmission line",
        'p' => "coupled multiconductor line",
        'q' => "bipolar transistor",
        't' => "transmission line",
        'u' => "uniform RC line",
        'w' => "current-controlled switch",
        'z' => "MESFET",
        _ => "unknown element type",
    }
}

fn element(cur: &mut Cur) -> Result<Element, ParseError> {
    let Some(name_tok) = cur.bump() else {
        unreachable!("the name token was peeked")
    };
    let raw = cur.raw(name_tok);
    let name = raw.to_ascii_lowercase();
    let letter = name.chars().next().unwrap_or(' ');
    if !letter.is_ascii_alphabetic() {
        return Err(cur.error(
            name_tok.start,
            format!(
                "expected an element or a directive, found '{}'",
                shorten(raw)
            ),
        ));
    }
    let span = cur.span_at(name_tok.start);
    let simple = |kind: ElementKind, nodes: Vec<String>| -> Result<Element, ParseError> {
        Ok(Element {
            name: name.clone(),
            kind,
            nodes,
            span: span.clone(),
        })
    };
    match letter {
        'r' => {
            let nodes = cur.nodes(2)?;
            let value = cur.value("a value")?;
            cur.finish()?;
            simple(ElementKind::Resistor { value }, nodes)
        }
        'c' | 'l' => {
            let nodes = cur.nodes(2)?;
            let value = cur.value("a value")?;
            let mut ic = None;
            if cur.next_is_word("ic") {
                cur.bump();
                cur.expect(TokKind::Eq, "'='")?;
                ic = Some(cur.value("an initial condition")?);
            }
            cur.finish()?;
            let kind = if letter == 'c' {
                ElementKind::Capacitor { value, ic }
            } else {
                ElementKind::Inductor { value, ic }
            };
            simple(kind, nodes)
        }
        'v' | 'i' => {
            let nodes = cur.nodes(2)?;
            let spec = source_spec(cur)?;
            simple(
                if letter == 'v' {
                    ElementKind::VSource(spec)
                } else {
                    ElementKind::ISource(spec)
                },
                nodes,
            )
        }
        'e' | 'g' => {
            let mut nodes = cur.nodes(2)?;
            if let Some(t) = cur.peek() {
                let word = cur.raw(t).to_ascii_lowercase();
                let behavioural = matches!(
                    word.as_str(),
                    "value" | "poly" | "table" | "laplace" | "vol" | "cur"
                );
                if t.kind == TokKind::Word
                    && behavioural
                    && matches!(cur.peek_kind(1), Some(TokKind::Eq | TokKind::LParen))
                {
                    return Err(cur.error(
                        t.start,
                        format!(
                            "behavioural {} sources ('{}') are not supported; use fixed gains",
                            letter.to_ascii_uppercase(),
                            cur.raw(t)
                        ),
                    ));
                }
            }
            nodes.push(cur.name("control node 1 of 2")?);
            nodes.push(cur.name("control node 2 of 2")?);
            let gain = cur.value("a gain")?;
            cur.finish()?;
            simple(
                if letter == 'e' {
                    ElementKind::Vcvs { gain }
                } else {
                    ElementKind::Vccs { gain }
                },
                nodes,
            )
        }
        's' => {
            let mut nodes = cur.nodes(2)?;
            nodes.push(cur.name("control node 1 of 2")?);
            nodes.push(cur.name("control node 2 of 2")?);
            let model = cur.name("a switch model name")?;
            let mut initially_on = None;
            if cur.next_is_word("on") || cur.next_is_word("off") {
                initially_on = Some(cur.next_is_word("on"));
                cur.bump();
            }
            cur.finish_with(" (a switch takes n+ n- nc+ nc- model [ON|OFF])")?;
            simple(
                ElementKind::Switch {
                    model,
                    initially_on,
                },
                nodes,
            )
        }
        'y' => y_device(cur, name_tok),
        'x' => {
            let (nodes, subckt, params) = ports_and_params(cur, "nodes and a subcircuit name")?;
            simple(ElementKind::Subckt { subckt, params }, nodes)
        }
        other => Err(cur.error(
            name_tok.start,
            format!(
                "unsupported element '{}' ({})",
                shorten(raw),
                element_description(other)
            ),
        )),
    }
}

/// `YMEMRISTOR name n+ n- model [k=v ...]` and `YRESET name mem ref model`.
fn y_device(cur: &mut Cur, type_tok: Token) -> Result<Element, ParseError> {
    let raw = cur.raw(type_tok);
    let device = raw.to_ascii_lowercase();
    if device != "ymemristor" && device != "yreset" {
        return Err(cur.error(
            type_tok.start,
            format!(
                "unsupported Y device '{}' (supported: YMEMRISTOR, YRESET)",
                shorten(raw)
            ),
        ));
    }
    let (name_tok, name) = cur.word("a device name")?;
    let span = cur.span_at(name_tok.start);
    let name = name.to_ascii_lowercase();
    let nodes = cur.nodes(2)?;
    let model = cur.name("a model name")?;
    let kind = if device == "ymemristor" {
        ElementKind::Memristor {
            model,
            params: cur.assignments()?,
        }
    } else {
        cur.finish_with(" (YRESET takes name mem ref model)")?;
        ElementKind::Reset { model }
    };
    Ok(Element {
        name,
        kind,
        nodes,
        span,
    })
}

/// Words then `[params:] k=v ...`: the last word before the parameters is
/// the (sub)circuit name for an X card; for `.subckt` the first word is.
/// Returns (other words, the name, parameters).
fn ports_and_params(
    cur: &mut Cur,
    what: &str,
) -> Result<(Vec<String>, String, Vec<Assign>), ParseError> {
    let mut words: Vec<Token> = Vec::new();
    while let Some(t) = cur.peek() {
        if t.kind != TokKind::Word {
            break;
        }
        let lower = cur.raw(t).to_ascii_lowercase();
        if lower == "params:" {
            if words.is_empty() {
                return Err(cur.expected(what));
            }
            cur.bump();
            if cur.at_end() {
                return Err(cur.expected("name=value"));
            }
            break;
        }
        if lower.starts_with("params:") {
            return Err(cur.error(t.start, "write a space after 'params:'".to_string()));
        }
        if cur.peek_kind(1) == Some(TokKind::Eq) {
            break;
        }
        words.push(t);
        cur.bump();
    }
    if words.is_empty() {
        return Err(cur.expected(what));
    }
    let params = cur.assignments()?;
    let mut names: Vec<String> = words
        .iter()
        .map(|&t| cur.raw(t).to_ascii_lowercase())
        .collect();
    let name = names.pop().unwrap_or_default();
    Ok((names, name, params))
}

fn subckt_header(cur: &mut Cur) -> Result<Subckt, ParseError> {
    let Some(card) = cur.bump() else {
        unreachable!("the directive token was peeked")
    };
    let span = cur.span_at(card.start);
    let name = cur.name("a subcircuit name")?;
    let mut ports = Vec::new();
    while let Some(t) = cur.peek() {
        if t.kind != TokKind::Word || cur.peek_kind(1) == Some(TokKind::Eq) {
            break;
        }
        let lower = cur.raw(t).to_ascii_lowercase();
        if lower == "params:" {
            cur.bump();
            if cur.at_end() {
                return Err(cur.expected("name=value"));
            }
            break;
        }
        if lower.starts_with("params:") {
            return Err(cur.error(t.start, "write a space after 'params:'".to_string()));
        }
        ports.push(lower);
        cur.bump();
    }
    let params = cur.assignments()?;
    Ok(Subckt {
        name,
        ports,
        params,
        cards: Vec::new(),
        span,
    })
}

/// Values inside `( ... )`, separated by spaces and/or commas.
/// Returns the values, the offset of each, and the closing parenthesis.
fn paren_values(cur: &mut Cur, what: &str) -> Result<(Vec<Expr>, Vec<usize>, Token), ParseError> {
    cur.expect(TokKind::LParen, &format!("'(' after {what}"))?;
    let mut values = Vec::new();
    let mut offsets = Vec::new();
    let mut after_value = false;
    loop {
        match cur.peek() {
            Some(t) if t.kind == TokKind::RParen => {
                cur.bump();
                return Ok((values, offsets, t));
            }
            Some(t) if t.kind == TokKind::Comma && after_value => {
                cur.bump();
                after_value = false;
            }
            Some(t) => {
                offsets.push(t.start);
                values.push(cur.value(&format!("a value or ')' in {what}"))?);
                after_value = true;
            }
            None => return Err(cur.expected("')'")),
        }
    }
}

/// `[DC] v`, `SIN(...)`, `PULSE(...)`, `PWL(...)`, `EXP(...)`.
fn source_spec(cur: &mut Cur) -> Result<SourceSpec, ParseError> {
    let mut spec = SourceSpec::default();
    while let Some(t) = cur.peek() {
        let word = cur.raw(t).to_ascii_lowercase();
        let call = t.kind == TokKind::Word && cur.peek_kind(1) == Some(TokKind::LParen);
        if t.kind == TokKind::Word && word == "ac" {
            return Err(cur.error(
                t.start,
                "AC source specifications are not supported (there is no .ac analysis)".into(),
            ));
        }
        if t.kind == TokKind::Word && word == "dc" && !call {
            if spec.dc.is_some() {
                return Err(cur.error(t.start, "the DC value is given twice".into()));
            }
            cur.bump();
            spec.dc = Some(cur.value("a DC value")?);
            continue;
        }
        let waveform_name = matches!(word.as_str(), "sin" | "pulse" | "pwl" | "exp" | "sffm");
        if t.kind == TokKind::Word && waveform_name && !call {
            cur.bump();
            return Err(cur.error(
                cur.here(),
                format!(
                    "expected '(' after '{}', found {} (waveform arguments go in parentheses)",
                    cur.raw(t),
                    cur.describe_next()
                ),
            ));
        }
        if call {
            let written = cur.raw(t).to_string();
            let (min, max, form) = match word.as_str() {
                "sin" => (3, 6, "vo va freq [td [theta [phase]]]"),
                "pulse" => (2, 7, "v1 v2 [td [tr [tf [pw [per]]]]]"),
                "exp" => (2, 6, "v1 v2 [td1 [tau1 [td2 [tau2]]]]"),
                "pwl" => (2, usize::MAX, "t1 v1 t2 v2 ..."),
                _ => {
                    return Err(
                        cur.error(t.start, format!("unsupported source waveform '{written}'"))
                    );
                }
            };
            if spec.waveform.is_some() {
                return Err(cur.error(t.start, "a source has at most one waveform".into()));
            }
            cur.bump();
            let (args, offsets, close) = paren_values(cur, &format!("'{written}'"))?;
            if args.len() < min {
                return Err(cur.error(
                    close.start,
                    format!(
                        "{written}({form}) needs at least {min} values, found {}",
                        args.len()
                    ),
                ));
            }
            if args.len() > max {
                return Err(cur.error(
                    offsets[max],
                    format!(
                        "{written}({form}) takes at most {max} values, found {}",
                        args.len()
                    ),
                ));
            }
            if word == "pwl" && args.len() % 2 == 1 {
                return Err(cur.error(
                    t.start,
                    format!(
                        "{written} needs time-value pairs, found an odd number of values ({})",
                        args.len()
                    ),
                ));
            }
            spec.waveform = Some(match word.as_str() {
                "sin" => Waveform::Sin(args),
                "pulse" => Waveform::Pulse(args),
                "exp" => Waveform::Exp(args),
                _ => Waveform::Pwl(args),
            });
            continue;
        }
        let is_value = matches!(t.kind, TokKind::Word | TokKind::Brace | TokKind::Quote);
        if !is_value || spec.dc.is_some() || spec.waveform.is_some() {
            break;
        }
        cur.bump();
        spec.dc = Some(cur.value_of(t)?);
    }
    if spec.dc.is_none() && spec.waveform.is_none() {
        return Err(
            cur.expected("a source value (DC v, SIN(...), PULSE(...), PWL(...) or EXP(...))")
        );
    }
    cur.finish()?;
    Ok(spec)
}

fn is_known_directive(name: &str) -> bool {
    matches!(
        name,
        "param"
            | "func"
            | "model"
            | "ic"
            | "options"
            | "option"
            | "opt"
            | "op"
            | "dc"
            | "tran"
            | "print"
            | "save"
            | "spike"
            | "neuron"
            | "step"
    )
}

fn directive_card(cur: &mut Cur, directive: &str) -> Result<Card, ParseError> {
    let Some(card) = cur.peek() else {
        unreachable!("the directive token was peeked")
    };
    let span = cur.span_at(card.start);
    if !is_known_directive(directive) {
        return Err(cur.error(
            card.start,
            format!("unsupported directive '{}'", shorten(cur.raw(card))),
        ));
    }
    cur.bump();
    let result = match directive {
        "param" => {
            if cur.at_end() {
                return Err(cur.expected("name=value"));
            }
            Card::Param(cur.assignments()?)
        }
        "func" => func(cur, span)?,
        "model" => {
            let name = cur.name("a model name")?;
            let kind = cur.name("a model type")?;
            let parenthesised = cur.peek_kind(0) == Some(TokKind::LParen);
            if parenthesised {
                cur.bump();
            }
            let mut params = Vec::new();
            while let Some(t) = cur.peek() {
                match t.kind {
                    TokKind::RParen if parenthesised => {
                        cur.bump();
                        break;
                    }
                    TokKind::Comma if !params.is_empty() => {
                        cur.bump();
                    }
                    _ => params.push(cur.assignment(false)?),
                }
            }
            cur.finish()?;
            Card::Model {
                name,
                kind,
                params,
                span,
            }
        }
        "ic" => {
            if cur.at_end() {
                return Err(cur.expected("v(node)=value"));
            }
            let mut entries = Vec::new();
            while let Some(t) = cur.peek() {
                if !(cur.next_is_word("v") && cur.peek_kind(1) == Some(TokKind::LParen)) {
                    return Err(cur.expected("v(node)=value"));
                }
                cur.bump();
                cur.bump();
                let node = cur.name("a node name")?;
                if let Some(comma) = cur.peek().filter(|c| c.kind == TokKind::Comma) {
                    return Err(cur.error(
                        comma.start,
                        "differential .ic v(a,b) is not supported".into(),
                    ));
                }
                cur.expect(TokKind::RParen, "')'")?;
                cur.expect(TokKind::Eq, "'='")?;
                let value = cur.value("a value")?;
                entries.push((node, value, cur.span_at(t.start)));
            }
            Card::Ic(entries)
        }
        "options" | "option" | "opt" => {
            if cur.at_end() {
                return Err(cur.expected("an option (name=value or a flag)"));
            }
            let mut list = Vec::new();
            while !cur.at_end() {
                list.push(cur.assignment(true)?);
            }
            Card::Options(list)
        }
        "op" => {
            cur.finish()?;
            Card::Op { span }
        }
        "dc" => {
            let source = cur.name("a source name")?;
            let start = cur.value("a start value")?;
            let stop = cur.value("a stop value")?;
            let step = cur.value("a step")?;
            cur.finish_with(
                " (.dc takes source start stop step; nested sweeps are not supported)",
            )?;
            Card::Dc {
                source,
                start,
                stop,
                step,
                span,
            }
        }
        "tran" => {
            let tstep = cur.value("tstep")?;
            let tstop = cur.value("tstop")?;
            let mut optional = Vec::new();
            let mut uic = false;
            while !cur.at_end() {
                if cur.next_is_word("uic") {
                    cur.bump();
                    uic = true;
                    break;
                }
                if optional.len() == 2 {
                    break;
                }
                optional.push(cur.value(if optional.is_empty() {
                    "tstart or UIC"
                } else {
                    "tmax or UIC"
                })?);
            }
            cur.finish_with(" (.tran takes tstep tstop [tstart [tmax]] [UIC])")?;
            let mut optional = optional.into_iter();
            Card::Tran {
                tstep,
                tstop,
                tstart: optional.next(),
                tmax: optional.next(),
                uic,
                span,
            }
        }
        "print" | "save" => {
            if directive == "print"
                && ["tran", "dc", "op"].iter().any(|a| cur.next_is_word(a))
                && cur.peek_kind(1) != Some(TokKind::LParen)
            {
                cur.bump();
            }
            if cur.at_end() {
                return Err(cur.expected("an output variable"));
            }
            let mut vars = Vec::new();
            while let Some(t) = cur.peek() {
                if t.kind == TokKind::Comma && !vars.is_empty() {
                    cur.bump();
                    continue;
                }
                vars.push(output_var(cur)?);
            }
            Card::Save { vars, span }
        }
        "spike" => spike(cur, span)?,
        "neuron" => {
            if cur.at_end() {
                return Err(cur.expected("input=<node>"));
            }
            let mut params = Vec::new();
            while !cur.at_end() {
                if cur.next_is_word("input") && cur.peek_kind(1) == Some(TokKind::Eq) {
                    let Some(key) = cur.bump() else { break };
                    cur.bump();
                    // The input is a node name, kept as a variable so that
                    // numeric node names survive (`input=1`).
                    let node = cur.name("the input node")?;
                    params.push(Assign {
                        name: "input".into(),
                        value: Expr::Var(node),
                        span: cur.span_at(key.start),
                    });
                } else {
                    params.push(cur.assignment(false)?);
                }
            }
            if !params.iter().any(|p| p.name == "input") {
                return Err(cur.error(card.start, "'.neuron' needs input=<node>".into()));
            }
            Card::Neuron { params, span }
        }
        "step" => step(cur, span)?,
        _ => unreachable!("is_known_directive lists the directives handled here"),
    };
    Ok(result)
}

/// `.func name(a, b) [=] {body}`
fn func(cur: &mut Cur, span: Span) -> Result<Card, ParseError> {
    let (name_tok, raw) = cur.word("a function name")?;
    if !is_identifier(raw) {
        return Err(cur.error(
            name_tok.start,
            format!("bad function name '{}'", shorten(raw)),
        ));
    }
    let name = raw.to_ascii_lowercase();
    if builtin_arity(&name).is_some() {
        return Err(cur.error(
            name_tok.start,
            format!("cannot redefine the built-in function '{name}'"),
        ));
    }
    cur.expect(TokKind::LParen, "'('")?;
    let mut args: Vec<String> = Vec::new();
    if cur.peek_kind(0) == Some(TokKind::RParen) {
        cur.bump();
    } else {
        loop {
            let (arg_tok, arg) = cur.word("an argument name")?;
            let arg = arg.to_ascii_lowercase();
            if !is_identifier(&arg) {
                return Err(cur.error(
                    arg_tok.start,
                    format!("bad argument name '{}'", shorten(&arg)),
                ));
            }
            if args.contains(&arg) {
                return Err(cur.error(arg_tok.start, format!("argument '{arg}' is given twice")));
            }
            args.push(arg);
            match cur.peek_kind(0) {
                Some(TokKind::Comma) => {
                    cur.bump();
                }
                Some(TokKind::RParen) => {
                    cur.bump();
                    break;
                }
                _ => return Err(cur.expected("',' or ')'")),
            }
        }
    }
    if cur.peek_kind(0) == Some(TokKind::Eq) {
        cur.bump();
    }
    let body = cur.value("a function body {expr}")?;
    cur.finish()?;
    Ok(Card::Func {
        name,
        args,
        body,
        span,
    })
}

/// `v(a)`, `v(a,b)`, `i(vx)`, `x(m1)`, `N(YMEMRISTOR!m1:X)`, `all`.
fn output_var(cur: &mut Cur) -> Result<OutputVar, ParseError> {
    const EXPECTED: &str =
        "an output variable (v(node), i(source), x(device), N(YMEMRISTOR!name:X) or all)";
    let Some(t) = cur.peek().filter(|t| t.kind == TokKind::Word) else {
        return Err(cur.expected(EXPECTED));
    };
    let raw = cur.raw(t);
    let lower = raw.to_ascii_lowercase();
    if cur.peek_kind(1) != Some(TokKind::LParen) {
        if lower == "all" {
            cur.bump();
            return Ok(OutputVar::All);
        }
        return Err(cur.expected(EXPECTED));
    }
    if !matches!(lower.as_str(), "v" | "i" | "x" | "n") {
        return Err(cur.error(
            t.start,
            format!(
                "unknown output variable '{}(...)' (expected v(...), i(...), x(...) or N(...))",
                shorten(raw)
            ),
        ));
    }
    cur.bump();
    cur.bump();
    let var = match lower.as_str() {
        "v" => {
            let a = cur.name("a node name")?;
            let b = if cur.peek_kind(0) == Some(TokKind::Comma) {
                cur.bump();
                Some(cur.name("a second node name")?)
            } else {
                None
            };
            OutputVar::Voltage(a, b)
        }
        "i" => OutputVar::Current(cur.name("a source name")?),
        "x" => OutputVar::DeviceState {
            device: cur.name("a device name")?,
            state: "x".into(),
        },
        _ => {
            let (spec_tok, spec) = cur.word("a device state such as YMEMRISTOR!M1:X")?;
            let parsed = spec.split_once('!').and_then(|(kind, rest)| {
                let (device, state) = rest.rsplit_once(':')?;
                (!kind.is_empty() && !device.is_empty() && !state.is_empty())
                    .then_some((device, state))
            });
            let Some((device, state)) = parsed else {
                return Err(cur.error(
                    spec_tok.start,
                    format!(
                        "expected N(<type>!<name>:<state>) such as N(YMEMRISTOR!M1:X), found '{}'",
                        shorten(spec)
                    ),
                ));
            };
            OutputVar::DeviceState {
                device: device.to_ascii_lowercase(),
                state: state.to_ascii_lowercase(),
            }
        }
    };
    cur.expect(TokKind::RParen, "')'")?;
    Ok(var)
}

/// `.spike node MEMRISTOR=M1,M2 [LEVEL=x]` / `RESET=R1` / `VTH=v`.
fn spike(cur: &mut Cur, span: Span) -> Result<Card, ParseError> {
    let node = cur.name("a node name")?;
    let mut rule: Option<(String, SpikeRule)> = None;
    let mut level: Option<(Token, Expr)> = None;
    while let Some(t) = cur.peek() {
        if t.kind == TokKind::Eq {
            return Err(cur.error(t.start, "'=' without a rule name".into()));
        }
        if t.kind != TokKind::Word {
            return Err(cur.expected("a spike rule"));
        }
        let written = cur.raw(t);
        let key = written.to_ascii_lowercase();
        if !matches!(key.as_str(), "memristor" | "reset" | "vth" | "level") {
            return Err(cur.error(
                t.start,
                format!(
                    "unknown .spike rule '{}' (expected MEMRISTOR=, RESET= or VTH=)",
                    shorten(written)
                ),
            ));
        }
        cur.bump();
        cur.expect(TokKind::Eq, "'='")?;
        if key == "level" {
            if level.is_some() {
                return Err(cur.error(t.start, "LEVEL= is given twice".into()));
            }
            level = Some((t, cur.value("a level")?));
            continue;
        }
        let parsed = match key.as_str() {
            "memristor" => {
                let mut devices = vec![cur.name("a device name")?];
                while cur.peek_kind(0) == Some(TokKind::Comma) {
                    cur.bump();
                    devices.push(cur.name("a device name")?);
                }
                SpikeRule::Memristor {
                    devices,
                    level: Expr::Num(0.5),
                }
            }
            "reset" => SpikeRule::Reset {
                device: cur.name("a reset device name")?,
            },
            _ => SpikeRule::Threshold {
                level: cur.value("a threshold voltage")?,
            },
        };
        if let Some((first, _)) = &rule {
            return Err(cur.error(
                t.start,
                format!(
                    "a .spike has one rule: '{}=' conflicts with '{first}='",
                    written.to_ascii_uppercase()
                ),
            ));
        }
        rule = Some((written.to_ascii_uppercase(), parsed));
    }
    let Some((_, mut rule)) = rule else {
        return Err(cur.expected("a spike rule (MEMRISTOR=..., RESET=... or VTH=...)"));
    };
    if let Some((level_tok, value)) = level {
        match &mut rule {
            SpikeRule::Memristor { level, .. } => *level = value,
            _ => return Err(cur.error(level_tok.start, "LEVEL= applies only to MEMRISTOR=".into())),
        }
    }
    Ok(Card::Spike { node, rule, span })
}

/// `.step param name list v...` / `.step param name start stop incr` /
/// `.step [dec|lin] param name start stop n` / `.step param name dec ...`.
fn step(cur: &mut Cur, span: Span) -> Result<Card, ParseError> {
    let (first_tok, first) = cur.word("'param'")?;
    let mut sweep = String::from("lin");
    match first.to_ascii_lowercase().as_str() {
        "param" => {}
        "dec" | "lin" => {
            sweep = first.to_ascii_lowercase();
            cur.expect(TokKind::Word, "'param'").and_then(|t| {
                if cur.raw(t).eq_ignore_ascii_case("param") {
                    Ok(t)
                } else {
                    Err(cur.error(
                        t.start,
                        format!("expected 'param', found '{}'", shorten(cur.raw(t))),
                    ))
                }
            })?;
        }
        "oct" => {
            return Err(cur.error(
                first_tok.start,
                "octave .step sweeps are not supported".into(),
            ))
        }
        _ => {
            return Err(cur.error(
                first_tok.start,
                format!(
                    "only '.step param' sweeps are supported, found '.step {}'",
                    shorten(first)
                ),
            ))
        }
    }
    let (name_tok, name) = cur.word("a parameter name")?;
    if !is_identifier(name) {
        return Err(cur.error(
            name_tok.start,
            format!("bad parameter name '{}'", shorten(name)),
        ));
    }
    let param = name.to_ascii_lowercase();
    if sweep == "lin" {
        for keyword in ["list", "dec", "lin", "oct"] {
            if cur.next_is_word(keyword) {
                let Some(t) = cur.bump() else { break };
                if keyword == "oct" {
                    return Err(cur.error(t.start, "octave .step sweeps are not supported".into()));
                }
                sweep = keyword.to_string();
                break;
            }
        }
    }
    let spec = if sweep == "list" {
        let mut values = Vec::new();
        while let Some(t) = cur.peek() {
            if t.kind == TokKind::Comma && !values.is_empty() {
                cur.bump();
                continue;
            }
            values.push(cur.value("a value")?);
        }
        if values.is_empty() {
            return Err(cur.expected("a list of values"));
        }
        StepSpec::List(values)
    } else {
        let start = cur.value("a start value")?;
        let stop = cur.value("a stop value")?;
        if sweep == "dec" {
            StepSpec::Decade {
                start,
                stop,
                points: cur.value("points per decade")?,
            }
        } else {
            StepSpec::Linear {
                start,
                stop,
                incr: cur.value("an increment")?,
            }
        }
    };
    cur.finish()?;
    Ok(Card::Step { param, spec, span })
}
