//! Numbers with SPICE suffixes and `{...}` expressions (nom), plus a small
//! evaluator and a printer for [`Expr`].

use std::cell::Cell;
use std::fmt;

use nom::branch::alt;
use nom::bytes::complete::tag;
use nom::character::complete::{
    alpha0, alpha1, alphanumeric1, char, digit0, digit1, multispace0, one_of,
};
use nom::combinator::{cut, map, not, opt};
use nom::error::{ErrorKind, ParseError};
use nom::multi::{fold_many0, many0_count};
use nom::sequence::{pair, preceded, terminated};
use nom::{IResult, Parser};

use super::ast::{BinOp, Expr};

/// An expression error: byte offset into the parsed text and what went wrong.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExprError {
    pub offset: usize,
    pub message: String,
}

/// nom error type: where (as the length of the remaining input, so the
/// caller can turn it into an offset) and, for hard failures, a message.
#[derive(Debug)]
struct Fail {
    remaining: usize,
    message: Option<String>,
}

impl<'a> ParseError<&'a str> for Fail {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        Fail {
            remaining: input.len(),
            message: None,
        }
    }
    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type Res<'a, T> = IResult<&'a str, T, Fail>;

fn failure<T>(at: &str, message: String) -> Res<'_, T> {
    Err(nom::Err::Failure(Fail {
        remaining: at.len(),
        message: Some(message),
    }))
}

fn describe_at(input: &str) -> String {
    match input.chars().next() {
        None => "end of expression".to_string(),
        Some(c) => format!("'{c}'"),
    }
}

/// Deepest nesting (parentheses, unary signs, powers) accepted, so that a
/// hostile input cannot overflow the stack.
const MAX_DEPTH: u32 = 200;

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

struct DepthGuard;

impl DepthGuard {
    fn enter() -> Option<DepthGuard> {
        DEPTH.with(|d| {
            if d.get() >= MAX_DEPTH {
                None
            } else {
                d.set(d.get() + 1);
                Some(DepthGuard)
            }
        })
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Power of ten of an engineering suffix; unknown letters are a unit (0).
fn suffix_exponent(letters: &str) -> i64 {
    let lower = letters.to_ascii_lowercase();
    if lower.starts_with("meg") {
        return 6;
    }
    match lower.chars().next() {
        Some('f') => -15,
        Some('p') => -12,
        Some('n') => -9,
        Some('u') => -6,
        Some('m') => -3,
        Some('k') => 3,
        Some('g') => 9,
        Some('t') => 12,
        _ => 0,
    }
}

/// The part of `input` consumed by a parser that left `rest`.
fn consumed<'a>(input: &'a str, rest: &'a str) -> &'a str {
    &input[..input.len() - rest.len()]
}

/// Mantissa and optional exponent: `1`, `1.5`, `.5`, `5.`, `2e-3`.
/// (Sliced by hand: nom 8.0.0's `recognize` mis-slices `digit0` inside `opt`.)
fn mantissa_exponent(input: &str) -> Res<'_, &str> {
    let (rest, _) = alt((
        (digit1, opt((char('.'), digit0))).map(|_| ()),
        (char('.'), digit1).map(|_| ()),
    ))
    .parse(input)?;
    let (rest, _) = opt((one_of("eE"), opt(one_of("+-")), digit1)).parse(rest)?;
    Ok((rest, consumed(input, rest)))
}

/// An unsigned number with optional suffix and ignored unit letters
/// (`0.2nF`, `10megohm`, `20mV`).
fn unsigned_number(input: &str) -> Res<'_, f64> {
    let (rest, digits) = mantissa_exponent(input)?;
    let (rest, letters) = alpha0(rest)?;
    // Shift the decimal exponent rather than multiply, so that `3n` is the
    // same double as `3e-9`.
    let (mantissa, exponent) = match digits.find(['e', 'E']) {
        Some(i) => {
            let written = &digits[i + 1..];
            // An exponent too long for i64 saturates (to 0 or infinity below).
            let saturated = if written.starts_with('-') {
                i64::MIN / 2
            } else {
                i64::MAX / 2
            };
            (&digits[..i], written.parse::<i64>().unwrap_or(saturated))
        }
        None => (digits, 0),
    };
    let shifted = exponent.saturating_add(suffix_exponent(letters));
    let value = format!("{mantissa}e{shifted}")
        .parse::<f64>()
        .unwrap_or(f64::INFINITY);
    if !value.is_finite() {
        return failure(input, format!("number '{digits}{letters}' is out of range"));
    }
    Ok((rest, value))
}

/// A SPICE number: optional sign, mantissa, exponent, engineering suffix
/// (f p n u m k meg g t, case-insensitive) and ignored trailing unit letters.
/// `None` unless the whole text is such a number.
pub fn parse_number(text: &str) -> Option<f64> {
    let (sign, body) = match text.as_bytes().first() {
        Some(b'-') => (-1.0, &text[1..]),
        Some(b'+') => (1.0, &text[1..]),
        _ => (1.0, text),
    };
    match unsigned_number(body) {
        Ok(("", value)) => Some(sign * value),
        _ => None,
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`
fn identifier(input: &str) -> Res<'_, &str> {
    let (rest, _) = (
        alt((alpha1, tag("_"))),
        many0_count(alt((alphanumeric1, tag("_")))),
    )
        .parse(input)?;
    Ok((rest, consumed(input, rest)))
}

/// Whether `text` is a plain identifier (parameter, function or argument name).
pub(crate) fn is_identifier(text: &str) -> bool {
    matches!(identifier(text), Ok(("", _)))
}

/// Number of arguments of a built-in function, `None` for other names.
pub(crate) fn builtin_arity(name: &str) -> Option<usize> {
    match name {
        "exp" | "log" | "sqrt" | "sin" | "cos" | "tanh" | "abs" => Some(1),
        "min" | "max" => Some(2),
        _ => None,
    }
}

fn binary(op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
    Expr::Bin(op, Box::new(lhs), Box::new(rhs))
}

/// `-x`, folding a plain number into a negative literal.
fn negate(e: Expr) -> Expr {
    match e {
        Expr::Num(v) => Expr::Num(-v),
        other => Expr::Neg(Box::new(other)),
    }
}

fn additive(input: &str) -> Res<'_, Expr> {
    let (input, first) = multiplicative(input)?;
    fold_many0(
        pair(preceded(multispace0, one_of("+-")), cut(multiplicative)),
        move || first.clone(),
        |lhs, (op, rhs)| binary(if op == '+' { BinOp::Add } else { BinOp::Sub }, lhs, rhs),
    )
    .parse(input)
}

fn multiplicative(input: &str) -> Res<'_, Expr> {
    let (input, first) = unary(input)?;
    // `*` but not the `**` power operator.
    let times = terminated(char('*'), not(char('*')));
    fold_many0(
        pair(preceded(multispace0, alt((times, char('/')))), cut(unary)),
        move || first.clone(),
        |lhs, (op, rhs)| binary(if op == '*' { BinOp::Mul } else { BinOp::Div }, lhs, rhs),
    )
    .parse(input)
}

/// Unary signs bind looser than `^` on their right: `-2^2 = -(2^2)`.
fn unary(input: &str) -> Res<'_, Expr> {
    let Some(_guard) = DepthGuard::enter() else {
        return failure(input, "expression nested too deeply".to_string());
    };
    alt((
        map(
            preceded(preceded(multispace0, char('-')), cut(unary)),
            negate,
        ),
        preceded(preceded(multispace0, char('+')), cut(unary)),
        power,
    ))
    .parse(input)
}

/// `a ^ b` (or `a ** b`), right-associative through `unary`.
fn power(input: &str) -> Res<'_, Expr> {
    let (input, base) = atom(input)?;
    let (input, exponent) = opt(preceded(
        preceded(multispace0, alt((tag("^"), tag("**")))),
        cut(unary),
    ))
    .parse(input)?;
    Ok((
        input,
        match exponent {
            Some(e) => binary(BinOp::Pow, base, e),
            None => base,
        },
    ))
}

fn atom(input: &str) -> Res<'_, Expr> {
    let (input, _) = multispace0(input)?;
    match alt((
        map(unsigned_number, Expr::Num),
        parenthesised,
        call_or_variable,
    ))
    .parse(input)
    {
        Err(nom::Err::Error(_)) => failure(
            input,
            format!(
                "expected a number, a name or '(', found {}",
                describe_at(input)
            ),
        ),
        other => other,
    }
}

fn parenthesised(input: &str) -> Res<'_, Expr> {
    let (rest, _) = char('(')(input)?;
    let (rest, inner) = cut(additive).parse(rest)?;
    let (rest, _) = multispace0(rest)?;
    match char::<&str, Fail>(')')(rest) {
        Ok((rest, _)) => Ok((rest, inner)),
        Err(_) if rest.is_empty() => failure(input, "unclosed '(' (missing ')')".to_string()),
        Err(_) => failure(
            rest,
            format!("expected an operator or ')', found {}", describe_at(rest)),
        ),
    }
}

fn call_or_variable(input: &str) -> Res<'_, Expr> {
    let (rest, name) = identifier(input)?;
    let name = name.to_ascii_lowercase();
    let (after_space, _) = multispace0(rest)?;
    let Ok((mut rest, _)) = char::<&str, Fail>('(')(after_space) else {
        return Ok((rest, Expr::Var(name)));
    };
    let open = after_space;
    let mut args = Vec::new();
    let (after, _) = multispace0(rest)?;
    if let Ok((after_close, _)) = char::<&str, Fail>(')')(after) {
        rest = after_close;
    } else {
        loop {
            let (after_arg, arg) = additive(rest)?;
            args.push(arg);
            let (after_arg, _) = multispace0(after_arg)?;
            if let Ok((r, _)) = char::<&str, Fail>(',')(after_arg) {
                rest = r;
            } else if let Ok((r, _)) = char::<&str, Fail>(')')(after_arg) {
                rest = r;
                break;
            } else if after_arg.is_empty() {
                return failure(open, format!("unclosed '(' of '{name}(' (missing ')')"));
            } else {
                return failure(
                    after_arg,
                    format!(
                        "expected ',' or ')' in the arguments of '{name}', found {}",
                        describe_at(after_arg)
                    ),
                );
            }
        }
    }
    if let Some(arity) = builtin_arity(&name) {
        if args.len() != arity {
            let plural = if arity == 1 { "" } else { "s" };
            return failure(
                input,
                format!(
                    "function '{name}' takes {arity} argument{plural}, found {}",
                    args.len()
                ),
            );
        }
    }
    Ok((rest, Expr::Call(name, args)))
}

/// Parse a whole expression (the inside of `{...}` or `'...'`).
pub(crate) fn parse_expression(text: &str) -> Result<Expr, ExprError> {
    DEPTH.with(|d| d.set(0));
    let to_error = |f: Fail| ExprError {
        offset: text.len() - f.remaining.min(text.len()),
        message: f.message.unwrap_or_else(|| "bad expression".to_string()),
    };
    match additive(text) {
        Ok((rest, expr)) => {
            let rest = rest.trim_start();
            if rest.is_empty() {
                Ok(expr)
            } else {
                let message = if rest.starts_with(')') {
                    "unmatched ')'".to_string()
                } else {
                    format!("expected an operator, found {}", describe_at(rest))
                };
                Err(ExprError {
                    offset: text.len() - rest.len(),
                    message,
                })
            }
        }
        Err(nom::Err::Error(f)) | Err(nom::Err::Failure(f)) => Err(to_error(f)),
        Err(nom::Err::Incomplete(_)) => Err(ExprError {
            offset: text.len(),
            message: "incomplete expression".into(),
        }),
    }
}

/// Parse an expression given on the command line (`--param NAME=VALUE`):
/// a number, a bare expression, or one wrapped in `{...}` or `'...'`.
pub fn parse_expr(text: &str) -> Result<Expr, String> {
    let trimmed = text.trim();
    let (body, shift) =
        if (trimmed.starts_with('{') && trimmed.ends_with('}') && trimmed.len() >= 2)
            || (trimmed.starts_with('\'') && trimmed.ends_with('\'') && trimmed.len() >= 2)
        {
            (&trimmed[1..trimmed.len() - 1], 1)
        } else {
            (trimmed, 0)
        };
    let leading = text.len() - text.trim_start().len();
    parse_expression(body).map_err(|e| {
        let column = text[..leading + shift + e.offset].chars().count() + 1;
        format!("in '{text}' at column {column}: {}", e.message)
    })
}

/// A built-in function applied to evaluated arguments; `None` when `name`
/// is not a built-in.
fn eval_builtin(name: &str, args: &[f64]) -> Option<Result<f64, String>> {
    let arity = builtin_arity(name)?;
    if args.len() != arity {
        return Some(Err(format!(
            "function '{name}' takes {arity} argument(s), found {}",
            args.len()
        )));
    }
    let x = args[0];
    Some(match name {
        "exp" => Ok(x.exp()),
        "log" if x <= 0.0 => Err(format!("log of non-positive value {x}")),
        "log" => Ok(x.ln()),
        "sqrt" if x < 0.0 => Err(format!("sqrt of negative value {x}")),
        "sqrt" => Ok(x.sqrt()),
        "sin" => Ok(x.sin()),
        "cos" => Ok(x.cos()),
        "tanh" => Ok(x.tanh()),
        "abs" => Ok(x.abs()),
        "min" => Ok(x.min(args[1])),
        "max" => Ok(x.max(args[1])),
        _ => unreachable!("builtin_arity lists exactly the names above"),
    })
}

impl Expr {
    /// Evaluate: `lookup` resolves parameters, built-in functions are
    /// computed here and any other call goes to `call` (`.func`s).
    pub fn eval(
        &self,
        lookup: &dyn Fn(&str) -> Option<f64>,
        call: &dyn Fn(&str, &[f64]) -> Option<f64>,
    ) -> Result<f64, String> {
        let value = match self {
            Expr::Num(v) => *v,
            Expr::Var(name) => {
                lookup(name).ok_or_else(|| format!("undefined parameter '{name}'"))?
            }
            Expr::Neg(inner) => -inner.eval(lookup, call)?,
            Expr::Bin(op, lhs, rhs) => {
                let a = lhs.eval(lookup, call)?;
                let b = rhs.eval(lookup, call)?;
                match op {
                    BinOp::Add => a + b,
                    BinOp::Sub => a - b,
                    BinOp::Mul => a * b,
                    BinOp::Div if b == 0.0 => return Err(format!("division by zero in '{self}'")),
                    BinOp::Div => a / b,
                    BinOp::Pow => a.powf(b),
                }
            }
            Expr::Call(name, args) => {
                let values = args
                    .iter()
                    .map(|a| a.eval(lookup, call))
                    .collect::<Result<Vec<f64>, String>>()?;
                match eval_builtin(name, &values) {
                    Some(result) => result?,
                    None => {
                        call(name, &values).ok_or_else(|| format!("undefined function '{name}'"))?
                    }
                }
            }
        };
        if value.is_finite() {
            Ok(value)
        } else {
            Err(format!(
                "'{self}' does not evaluate to a finite number ({value})"
            ))
        }
    }
}

/// Binding strength, for printing with only the parentheses needed.
fn precedence(e: &Expr) -> u8 {
    match e {
        Expr::Bin(BinOp::Add | BinOp::Sub, ..) => 1,
        Expr::Bin(BinOp::Mul | BinOp::Div, ..) => 2,
        Expr::Neg(_) => 3,
        Expr::Bin(BinOp::Pow, ..) => 4,
        Expr::Num(v) if *v < 0.0 => 3,
        _ => 5,
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, e: &Expr, min: u8) -> fmt::Result {
    if precedence(e) < min {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

/// Prints an expression that parses back to the same tree.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Num(v) => write!(f, "{v:e}"),
            Expr::Var(name) => write!(f, "{name}"),
            Expr::Neg(inner) => {
                f.write_str("-")?;
                write_operand(f, inner, 4)
            }
            Expr::Bin(op, lhs, rhs) => {
                let (symbol, level) = match op {
                    BinOp::Add => ("+", 1),
                    BinOp::Sub => ("-", 1),
                    BinOp::Mul => ("*", 2),
                    BinOp::Div => ("/", 2),
                    BinOp::Pow => ("^", 4),
                };
                if *op == BinOp::Pow {
                    // Right-associative: the left operand needs parentheses
                    // unless it is an atom, the right one may be unary.
                    write_operand(f, lhs, 5)?;
                    f.write_str("^")?;
                    write_operand(f, rhs, 3)
                } else {
                    write_operand(f, lhs, level)?;
                    write!(f, " {symbol} ")?;
                    write_operand(f, rhs, level + 1)
                }
            }
            Expr::Call(name, args) => {
                write!(f, "{name}(")?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{arg}")?;
                }
                f.write_str(")")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(v: f64) -> Expr {
        Expr::Num(v)
    }
    fn var(name: &str) -> Expr {
        Expr::Var(name.into())
    }
    fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
        binary(op, a, b)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
    }

    /// Evaluate with p=2, q=3 and a user function f(a, b) = a*b + 1.
    fn eval(text: &str) -> Result<f64, String> {
        let lookup = |name: &str| match name {
            "p" => Some(2.0),
            "q" => Some(3.0),
            _ => None,
        };
        let call = |name: &str, args: &[f64]| {
            (name == "f" && args.len() == 2).then(|| args[0] * args[1] + 1.0)
        };
        parse_expression(text)
            .map_err(|e| e.message)?
            .eval(&lookup, &call)
    }

    #[test]
    fn numbers_and_suffixes() {
        let cases = [
            ("1.5", 1.5),
            ("-2e-3", -2e-3),
            (".5", 0.5),
            ("5.", 5.0),
            ("+3", 3.0),
            ("1E3", 1e3),
            ("1f", 1e-15),
            ("1p", 1e-12),
            ("1n", 1e-9),
            ("1u", 1e-6),
            ("1m", 1e-3),
            ("1k", 1e3),
            ("1meg", 1e6),
            ("1MEG", 1e6),
            ("1Meg", 1e6),
            ("1g", 1e9),
            ("1t", 1e12),
            ("0.2nF", 0.2e-9),
            ("10Meg", 10e6),
            ("10megohm", 10e6),
            ("20mV", 20e-3),
            ("-70m", -70e-3),
            ("1.5n", 1.5e-9),
            ("5x", 5.0),
            ("3ohm", 3.0),
            ("2e", 2.0),
            ("1e-3k", 1.0),
            ("100K", 1e5),
            ("1e-99999999999999999999999", 0.0),
        ];
        for (text, expected) in cases {
            let got = parse_number(text).unwrap_or_else(|| panic!("{text} should parse"));
            assert!(close(got, expected), "{text}: {got} != {expected}");
        }
    }

    #[test]
    fn not_numbers() {
        for text in [
            "", "-", ".", "e3", "k", "abc", "1.2.3", "1k5", "2*3", "1e999", "--1", "1 2", "1_",
            "µ1",
        ] {
            assert_eq!(parse_number(text), None, "{text}");
        }
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(eval("1 + 2 * 3"), Ok(7.0));
        assert_eq!(eval("(1 + 2) * 3"), Ok(9.0));
        assert_eq!(eval("10 - 4 - 3"), Ok(3.0));
        assert_eq!(eval("24 / 4 / 3"), Ok(2.0));
        assert_eq!(eval("2 ^ 3 ^ 2"), Ok(512.0));
        assert_eq!(eval("2 ** 3 ** 2"), Ok(512.0));
        assert_eq!(eval("-2^2"), Ok(-4.0));
        assert_eq!(eval("2^-1"), Ok(0.5));
        assert_eq!(eval("-p^2"), Ok(-4.0));
        assert_eq!(eval("(-2)^2"), Ok(4.0));
        assert_eq!(eval("- -3"), Ok(3.0));
        assert_eq!(eval("+3 - -3"), Ok(6.0));
        assert_eq!(eval("2*-3"), Ok(-6.0));
        assert_eq!(eval("p*q + 1k"), Ok(1006.0));
        assert_eq!(eval("1n*1meg"), Ok(1e-3));
    }

    #[test]
    fn trees() {
        assert_eq!(
            parse_expression("a-b-c").unwrap(),
            bin(BinOp::Sub, bin(BinOp::Sub, var("a"), var("b")), var("c"))
        );
        assert_eq!(
            parse_expression("a^b^c").unwrap(),
            bin(BinOp::Pow, var("a"), bin(BinOp::Pow, var("b"), var("c")))
        );
        assert_eq!(
            parse_expression("-2^2").unwrap(),
            Expr::Neg(Box::new(bin(BinOp::Pow, num(2.0), num(2.0))))
        );
        assert_eq!(parse_expression("-70m").unwrap(), num(-0.07));
        assert_eq!(parse_expression(" A_1 ").unwrap(), var("a_1"));
        assert_eq!(
            parse_expression("MAX(a, 1)").unwrap(),
            Expr::Call("max".into(), vec![var("a"), num(1.0)])
        );
        assert_eq!(
            parse_expression("g()").unwrap(),
            Expr::Call("g".into(), vec![])
        );
        assert_eq!(
            parse_expression("f (1,2,3)").unwrap(),
            Expr::Call("f".into(), vec![num(1.0), num(2.0), num(3.0)])
        );
    }

    #[test]
    fn functions() {
        assert!(close(eval("exp(1)").unwrap(), std::f64::consts::E));
        assert!(close(eval("log(exp(2))").unwrap(), 2.0));
        assert_eq!(eval("sqrt(16)"), Ok(4.0));
        assert!(close(eval("sin(0.5)").unwrap(), 0.5f64.sin()));
        assert!(close(eval("cos(0.5)").unwrap(), 0.5f64.cos()));
        assert!(close(eval("tanh(0.5)").unwrap(), 0.5f64.tanh()));
        assert_eq!(eval("abs(-3)"), Ok(3.0));
        assert_eq!(eval("min(p, q)"), Ok(2.0));
        assert_eq!(eval("max(p, q)"), Ok(3.0));
        assert_eq!(eval("f(p, q) * 2"), Ok(14.0));
    }

    #[test]
    fn evaluation_errors() {
        assert_eq!(eval("x + 1"), Err("undefined parameter 'x'".to_string()));
        assert_eq!(eval("g(1)"), Err("undefined function 'g'".to_string()));
        assert!(eval("1/0").unwrap_err().contains("division by zero"));
        assert!(eval("log(0)").unwrap_err().contains("log of non-positive"));
        assert!(eval("sqrt(-1)").unwrap_err().contains("sqrt of negative"));
        assert!(eval("exp(1000)").unwrap_err().contains("finite"));
        assert!(eval("(-8)^(1/3)").unwrap_err().contains("finite"));
    }

    #[test]
    fn syntax_errors_have_offsets() {
        let err = |text: &str| parse_expression(text).unwrap_err();
        assert_eq!(
            err("1 +"),
            ExprError {
                offset: 3,
                message: "expected a number, a name or '(', found end of expression".into()
            }
        );
        assert_eq!(err("1 + * 2").offset, 4);
        assert_eq!(err("(1 + 2").offset, 0);
        assert!(err("(1 + 2").message.contains("unclosed '('"));
        assert_eq!(
            err("1 + 2)"),
            ExprError {
                offset: 5,
                message: "unmatched ')'".into()
            }
        );
        assert_eq!(
            err("a b"),
            ExprError {
                offset: 2,
                message: "expected an operator, found 'b'".into()
            }
        );
        assert_eq!(
            err("exp(1, 2)"),
            ExprError {
                offset: 0,
                message: "function 'exp' takes 1 argument, found 2".into()
            }
        );
        assert_eq!(
            err("max(1)").message,
            "function 'max' takes 2 arguments, found 1"
        );
        assert_eq!(err("f(1 2)").offset, 4);
        assert!(err("f(1,").message.contains("expected a number"));
        assert!(err("f(1").message.contains("unclosed '(' of 'f('"));
        assert_eq!(err("").offset, 0);
        assert_eq!(
            err("(1 2)").message,
            "expected an operator or ')', found '2'"
        );
        assert!(err("2 # 3").message.contains("'#'"));
        assert!(err("1e999").message.contains("out of range"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse_expression(&deep)
            .unwrap_err()
            .message
            .contains("nested too deeply"));
        let minus = "-".repeat(5000) + "1";
        assert!(parse_expression(&minus).is_err());
        // Moderate nesting still works, and the depth counter resets.
        let ok = format!("{}1{}", "(".repeat(50), ")".repeat(50));
        assert_eq!(parse_expression(&ok), Ok(num(1.0)));
        assert_eq!(parse_expression(&ok), Ok(num(1.0)));
        // Long flat sums do not nest.
        let sum = vec!["1"; 5000].join("+");
        assert_eq!(eval(&sum), Ok(5000.0));
    }

    #[test]
    fn command_line_expressions() {
        assert_eq!(parse_expr("2.5n"), Ok(num(2.5e-9)));
        assert_eq!(parse_expr("-1"), Ok(num(-1.0)));
        assert_eq!(parse_expr("{2*p}"), Ok(bin(BinOp::Mul, num(2.0), var("p"))));
        assert_eq!(parse_expr("'p+1'"), Ok(bin(BinOp::Add, var("p"), num(1.0))));
        let err = parse_expr("{1 +}").unwrap_err();
        assert!(err.contains("column 5"), "{err}");
        assert!(parse_expr("").is_err());
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "1 + 2 * 3",
            "(1 + 2) * 3",
            "a - (b - c)",
            "a / (b * c)",
            "-2^2",
            "(-2)^2",
            "2^3^2",
            "(2^3)^2",
            "2^-a",
            "-a * b",
            "a * -b",
            "-(a + b)",
            "max(a, exp(-b)) / f(1, 2, c)",
            "- -a",
            "1.5e-9 * p",
        ] {
            let tree = parse_expression(text).unwrap();
            let printed = tree.to_string();
            assert_eq!(
                parse_expression(&printed).unwrap(),
                tree,
                "{text} printed as {printed}"
            );
        }
    }
}
