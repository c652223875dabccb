//! Parameter scopes and expression evaluation (`.param`, `.func`,
//! subcircuit parameters, `--param` overrides).

use crate::netlist::{Assign, Expr, Span};
use std::collections::HashMap;

/// A user function from `.func`.
#[derive(Clone, Debug)]
pub struct Func {
    pub args: Vec<String>,
    pub body: Expr,
}

/// One level of parameter bindings; lookups fall back to the parent.
#[derive(Debug, Default)]
pub struct Scope<'p> {
    pub values: HashMap<String, f64>,
    pub parent: Option<&'p Scope<'p>>,
    pub funcs: HashMap<String, Func>,
}

const MAX_CALL_DEPTH: usize = 64;

impl<'p> Scope<'p> {
    pub fn child(parent: &'p Scope<'p>) -> Scope<'p> {
        Scope {
            values: HashMap::new(),
            parent: Some(parent),
            funcs: HashMap::new(),
        }
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.values
            .get(name)
            .copied()
            .or_else(|| self.parent.and_then(|p| p.get(name)))
    }

    fn func(&self, name: &str) -> Option<&Func> {
        self.funcs
            .get(name)
            .or_else(|| self.parent.and_then(|p| p.func(name)))
    }

    /// Evaluate an expression in this scope.
    pub fn eval(&self, e: &Expr) -> Result<f64, String> {
        self.eval_depth(e, &HashMap::new(), 0)
    }

    fn eval_depth(
        &self,
        e: &Expr,
        locals: &HashMap<String, f64>,
        depth: usize,
    ) -> Result<f64, String> {
        if depth > MAX_CALL_DEPTH {
            return Err("recursive .func: call depth exceeds 64".into());
        }
        let lookup = |name: &str| locals.get(name).copied().or_else(|| self.get(name));
        let call = |name: &str, args: &[f64]| -> Option<f64> {
            let f = self.func(name)?;
            if f.args.len() != args.len() {
                return None;
            }
            let bound: HashMap<String, f64> =
                f.args.iter().cloned().zip(args.iter().copied()).collect();
            self.eval_depth(&f.body, &bound, depth + 1).ok()
        };
        let v = e.eval(&lookup, &call)?;
        if let Some(name) = first_bad_call(e, self) {
            return Err(name);
        }
        if !v.is_finite() {
            return Err(format!("expression evaluates to {v}"));
        }
        Ok(v)
    }
}

/// A call whose function is neither built in nor a `.func` of the right
/// arity, named for the error message (the evaluator only says "unknown").
fn first_bad_call(e: &Expr, scope: &Scope) -> Option<String> {
    match e {
        Expr::Call(name, args) => {
            if !is_builtin(name) {
                match scope.func(name) {
                    None => return Some(format!("undefined function '{name}'")),
                    Some(f) if f.args.len() != args.len() => {
                        return Some(format!(
                            "function '{name}' takes {} argument(s), got {}",
                            f.args.len(),
                            args.len()
                        ))
                    }
                    _ => {}
                }
            }
            args.iter().find_map(|a| first_bad_call(a, scope))
        }
        Expr::Neg(a) => first_bad_call(a, scope),
        Expr::Bin(_, a, b) => first_bad_call(a, scope).or_else(|| first_bad_call(b, scope)),
        _ => None,
    }
}

fn is_builtin(name: &str) -> bool {
    matches!(
        name,
        "exp" | "log" | "ln" | "sqrt" | "sin" | "cos" | "tanh" | "abs" | "min" | "max"
    )
}

/// Evaluate a list of `name=value` definitions into `scope`, allowing a
/// definition to use one that comes later (order-independent), and
/// reporting cycles and undefined names with the definition's span.
pub fn define_all(scope: &mut Scope, defs: &[Assign]) -> Result<(), (Span, String)> {
    let mut pending: Vec<&Assign> = defs.iter().collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut still = Vec::new();
        for d in pending {
            match scope.eval(&d.value) {
                Ok(v) => {
                    scope.values.insert(d.name.clone(), v);
                }
                Err(_) => still.push(d),
            }
        }
        if still.len() == before {
            // No progress: report the first failure as it stands.
            let d = still[0];
            let msg = scope.eval(&d.value).err().unwrap_or_default();
            let names: Vec<&str> = still.iter().map(|d| d.name.as_str()).collect();
            let text = if still.iter().any(|o| msg.contains(&format!("'{}'", o.name))) {
                format!(
                    "parameter '{}' cannot be evaluated: {msg} (circular definition among: {})",
                    d.name,
                    names.join(", ")
                )
            } else {
                format!("parameter '{}' cannot be evaluated: {msg}", d.name)
            };
            return Err((d.span.clone(), text));
        }
        pending = still;
    }
    Ok(())
}
