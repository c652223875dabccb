//! Command-line overrides (`--param NAME=VALUE`, sweeps) applied to the
//! parsed cards before elaboration. NAME is, in this order of lookup:
//! a top-level `.param`; `model.PARAM` for a `.model` parameter (added when
//! the model does not set it, so defaults can be swept too); or an
//! element's primary value (`Cm` → its capacitance, `Vrest` → its DC
//! value, `E1` → its gain).

use super::ElabError;
use crate::netlist::{Assign, BinOp, Card, ElementKind, Expr};

pub(super) fn apply(cards: &mut [Card], overrides: &[(String, Expr)]) -> Result<(), ElabError> {
    for (name, value) in overrides {
        let name = name.to_ascii_lowercase();
        if set_param(cards, &name, value)
            || set_model_param(cards, &name, value)
            || set_element_value(cards, &name, value)
        {
            continue;
        }
        return Err(ElabError {
            span: None,
            message: format!(
                "--param {name}: the netlist has no .param, model parameter (model.PARAM) or element value named '{name}'"
            ),
        });
    }
    Ok(())
}

/// Multiply the value of each NAME (looked up as in [`apply`], but the value
/// must be set in the netlist: a model default cannot be scaled) by its
/// factor: Monte Carlo device variation.
pub(super) fn scale(cards: &mut [Card], scales: &[(String, f64)]) -> Result<(), ElabError> {
    for (name, factor) in scales {
        let name = name.to_ascii_lowercase();
        let Some(old) = current_value(cards, &name) else {
            return Err(ElabError {
                span: None,
                message: format!(
                    "--sigma {name}: the netlist sets no .param, model parameter (model.PARAM) or element value named '{name}' (a model default must be set explicitly to vary it)"
                ),
            });
        };
        let scaled = Expr::Bin(BinOp::Mul, Box::new(old), Box::new(Expr::Num(*factor)));
        apply(cards, &[(name, scaled)])?;
    }
    Ok(())
}

/// The expression NAME has in the cards, in [`apply`]'s lookup order.
fn current_value(cards: &[Card], name: &str) -> Option<Expr> {
    for card in cards {
        if let Card::Param(list) = card {
            if let Some(a) = list.iter().find(|a| a.name == name) {
                return Some(a.value.clone());
            }
        }
    }
    if let Some((model, key)) = name.split_once('.') {
        for card in cards {
            if let Card::Model {
                name: m, params, ..
            } = card
            {
                if m == model {
                    return params
                        .iter()
                        .find(|a| a.name == key)
                        .map(|a| a.value.clone());
                }
            }
        }
    }
    for card in cards {
        let Card::Element(el) = card else { continue };
        if el.name != name {
            continue;
        }
        return match &el.kind {
            ElementKind::Resistor { value: v }
            | ElementKind::Capacitor { value: v, .. }
            | ElementKind::Inductor { value: v, .. }
            | ElementKind::Vcvs { gain: v }
            | ElementKind::Vccs { gain: v } => Some(v.clone()),
            ElementKind::VSource(spec) | ElementKind::ISource(spec) => spec.dc.clone(),
            _ => None,
        };
    }
    None
}

fn set_param(cards: &mut [Card], name: &str, value: &Expr) -> bool {
    let mut found = false;
    for card in cards.iter_mut() {
        if let Card::Param(list) = card {
            for a in list.iter_mut().filter(|a| a.name == name) {
                a.value = value.clone();
                found = true;
            }
        }
    }
    found
}

fn set_model_param(cards: &mut [Card], name: &str, value: &Expr) -> bool {
    let Some((model, key)) = name.split_once('.') else {
        return false;
    };
    for card in cards.iter_mut() {
        if let Card::Model {
            name: m,
            params,
            span,
            ..
        } = card
        {
            if m == model {
                match params.iter_mut().find(|a| a.name == key) {
                    Some(a) => a.value = value.clone(),
                    None => params.push(Assign {
                        name: key.to_string(),
                        value: value.clone(),
                        span: span.clone(),
                    }),
                }
                return true;
            }
        }
    }
    false
}

fn set_element_value(cards: &mut [Card], name: &str, value: &Expr) -> bool {
    for card in cards.iter_mut() {
        let Card::Element(el) = card else { continue };
        if el.name != name {
            continue;
        }
        match &mut el.kind {
            ElementKind::Resistor { value: v }
            | ElementKind::Capacitor { value: v, .. }
            | ElementKind::Inductor { value: v, .. }
            | ElementKind::Vcvs { gain: v }
            | ElementKind::Vccs { gain: v } => *v = value.clone(),
            ElementKind::VSource(spec) | ElementKind::ISource(spec) => {
                spec.dc = Some(value.clone())
            }
            _ => return false,
        }
        return true;
    }
    false
}
