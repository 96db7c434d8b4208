//! The strata spec language: KDL text to a typed [`Spec`] with source spans.
//!
//! `docs/spec.md` is the normative description of the language; this crate is
//! its one implementation. Every mistake in a spec becomes a [`SpecDiagnostic`]
//! with the span of the offending token, and all of them are reported at once
//! in a [`Diagnostics`].
//!
//! Invariants: this crate reads no file but the spec itself ([`read`]); it
//! never panics on any input text; parsing is a pure function of the text.

mod args;
mod ast;
mod diag;
mod dump;
mod guard;
mod parse;
mod suggest;

pub use suggest::did_you_mean;
mod syntax;
mod values;

pub use args::{apply_args, substitute};
pub use ast::*;
pub use diag::{Diagnostics, SpecDiagnostic};
pub use parse::{ReadError, parse, read};

/// A Go duration (`30s`, `1m30s`) in nanoseconds, as `healthcheck` reads
/// its `interval=`, `timeout=` and `start-period=`; the error says why not.
pub fn duration(s: &str) -> Result<u64, String> {
    values::duration(s).map_err(|p| p.message)
}

/// Whether `argv` can be a `shell`; the error says why not.
pub fn check_shell(argv: &[String]) -> Result<(), String> {
    values::shell(argv).map_err(|p| p.message)
}
