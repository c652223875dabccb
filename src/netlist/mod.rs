//! SPICE-dialect netlist parser (nom). See `ast` for what it produces.
//!
//! Dialect notes (everything else unsupported is an error, never skipped):
//! - The first line is the title, always; included files have no title.
//! - Names, nodes, models and parameters are stored lower-case; so is
//!   `Element::name`, and for `YMEMRISTOR M1 ...` it is `m1`, with the span
//!   on `M1`.
//! - A value is a number (`0.2nF`: suffix, then ignored unit letters),
//!   `{expr}`, `'expr'` or a bare parameter name.
//! - `.spike node MEMRISTOR=...` without `LEVEL=` gets level 0.5.
//! - `.neuron input=NODE` stores the node as `Expr::Var(node)`, whatever
//!   its spelling (`input=1` gives `Var("1")`).
//! - Inside `.subckt` only elements, `.param`, `.func`, `.model`,
//!   `.subckt` and `.include` are allowed.
//! - `.end` ends the netlist; in an included file it ends that file.
//!
//! - `lexer`: logical lines (title, comments, `+` continuations) and tokens;
//! - `expr`: numbers with engineering suffixes and `{...}` expressions;
//! - `parse`: element cards and directives, `.subckt` and `.include`.

pub mod ast;
mod expr;
mod lexer;
mod parse;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

pub use ast::*;
pub use expr::{parse_expr, parse_number};

/// A located parse error: `file:line:col: message`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{span}: {message}")]
pub struct ParseError {
    pub span: Span,
    pub message: String,
}

/// Read and parse a netlist file. An unreadable file is an error at 0:0.
pub fn parse_file(path: &Path) -> Result<Netlist, ParseError> {
    let bytes = std::fs::read(path).map_err(|e| ParseError {
        span: Span {
            file: Arc::new(path.to_path_buf()),
            line: 0,
            col: 0,
        },
        message: format!("cannot read netlist '{}': {e}", path.display()),
    })?;
    // Lossy: stray Latin-1 bytes in comments should not reject a netlist.
    parse_str(&String::from_utf8_lossy(&bytes), path)
}

/// Parse netlist text. `path` names the file in spans and is the base for
/// relative `.include`s. The first line is the title, as in SPICE.
pub fn parse_str(text: &str, path: &Path) -> Result<Netlist, ParseError> {
    parse::parse_netlist(text, path)
}
