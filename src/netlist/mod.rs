//! SPICE-dialect netlist parser (nom). See `ast` for what it produces.
//!
//! - [`lexer`]: logical lines (title, comments, `+` continuations) and tokens;
//! - [`expr`]: numbers with engineering suffixes and `{...}` expressions;
//! - [`parse`]: element cards and directives, `.subckt` and `.include`.

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
