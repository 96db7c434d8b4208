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
