//! SPICE-dialect netlist parser (nom). See `ast` for what it produces.

pub mod ast;

pub use ast::*;

/// A located parse error: `file:line:col: message`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{span}: {message}")]
pub struct ParseError {
    pub span: Span,
    pub message: String,
}
