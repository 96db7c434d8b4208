//! KDL text -> [`Spec`]: the walk over the KDL document that checks every node
//! against `docs/spec.md` and collects every mistake with the span of the
//! token that is wrong.
//!
//! The walk never stops at the first mistake: a node that is wrong is
//! reported and skipped, and the walk goes on, so that one run shows every
//! problem of a spec. A spec with any problem gives no `Spec` at all.

use std::collections::BTreeMap;
use std::path::Path;

use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};
use miette::SourceSpan;

use crate::suggest::did_you_mean;

use crate::syntax;
use crate::values::{self, Problem};

use crate::{
    Compression, Diagnostics, Image, ImageConfig, Index, Layer, Limits, Op, Owner, Spanned, Spec,
    SpecDiagnostic,
};

mod args;
mod entries;
mod health;
mod image;
mod layer;
mod packages;
mod run;
mod top;

/// The nodes of each context, in the order `docs/spec.md` lists them (the
/// order of the "takes:" hints).
const TOP_NODES: &[&str] = &[
    "image",
    "index",
    "epoch",
    "compression",
    "inputs-root",
    "limits",
    "arg",
    "repository",
];
const IMAGE_NODES: &[&str] = &[
    "from",
    "rootfs",
    "tag",
    "layer",
    "env",
    "cmd",
    "entrypoint",
    "workdir",
    "user",
    "expose",
    "volume",
    "label",
    "annotation",
    "stop-signal",
    "author",
    "platform",
    "healthcheck",
    "shell",
];
const OP_NODES: &[&str] = &[
    "add", "copy", "file", "mkdir", "symlink", "delete", "from-dir", "run", "packages",
];

/// How each node is written, for "usage:" hints.
fn usage(kind: &str) -> &'static str {
    match kind {
        "image" => "image NAME { ... }",
        "index" => "index NAME { image IMAGE-AMD64; image IMAGE-ARM64 }",
        "epoch" => "epoch 1700000000",
        "compression" => "compression \"gzip\" (or \"zstd\", \"none\"; gzip and zstd take level=N)",
        "inputs-root" => "inputs-root \"..\"",
        "limits" => "limits max-input-size=\"64GiB\" max-entries=500000",
        "from" => "from IMAGE",
        "rootfs" => "rootfs \"path/to/rootfs.tar.gz\"",
        "tag" => "tag \"1.0\"",
        "layer" => "layer NAME { add \"SRC\" to=\"/DEST/\" ... }",
        "env" => "env KEY=\"value\" ...",
        "cmd" => "cmd \"/bin/sh\" \"-c\" \"...\"",
        "entrypoint" => "entrypoint \"/docker-entrypoint.sh\" ...",
        "workdir" => "workdir \"/app\"",
        "user" => "user \"nobody\" or user \"1000:1000\"",
        "expose" => "expose 8080 \"53/udp\" ...",
        "volume" => "volume \"/data\" ...",
        "label" => "label org.opencontainers.image.title=\"...\" ...",
        "annotation" => "annotation org.opencontainers.image.source=\"...\" ...",
        "stop-signal" => "stop-signal \"SIGTERM\"",
        "author" => "author \"Name <mail@example.org>\"",
        "platform" => "platform \"linux/amd64\"",
        "healthcheck" => {
            "healthcheck \"CMD\" \"ARG\"... (or \"CMD-SHELL\" \"COMMAND\", or \"NONE\") [interval=\"30s\"] [timeout=\"30s\"] [start-period=\"0s\"] [retries=3]"
        }
        "shell" => "shell \"/bin/bash\" \"-c\"",
        "add" => "add \"SRC\" to=\"/DEST/\" [mode=0o644] [owner=\"UID:GID\"]",
        "copy" => {
            "copy \"SRC\" to=\"/DEST/\" [mode=0o644] [owner=\"UID:GID\"] [exclude=\"PATTERN ...\"] (or copy \"/PATH\" from=\"IMAGE\" to=\"/DEST/\")"
        }
        "file" => "file \"/PATH\" \"CONTENT\" [mode=0o644] [owner=\"UID:GID\"]",
        "mkdir" => "mkdir \"/PATH\" [mode=0o755] [owner=\"UID:GID\"] [if-missing=#true]",
        "symlink" => "symlink \"/PATH\" target=\"TARGET\" [owner=\"UID:GID\"]",
        "delete" => "delete \"/PATH\"",
        "from-dir" => "from-dir \"DIR\" [normalize=#true]",
        "arg" => "arg NAME=\"default\" (or `arg NAME`; set with --arg NAME=VALUE)",
        "run" => "run \"COMMAND\" [network=#true] [user=\"NAME[:GROUP]\"]",
        "repository" => {
            "repository NAME suite=\"bookworm\" keyring=\"debian-archive-keyring.gpg\" [url=\"http://MIRROR/debian\"] [components=\"main\"] [architectures=\"amd64\"]"
        }
        "packages" => {
            "packages \"NAME\" \"NAME=VERSION\" \"NAME (>= VERSION)\" ... [required=#true] [repository=NAME]"
        }
        _ => "",
    }
}

fn usage_help(kind: &str) -> String {
    format!("usage: `{}`", usage(kind))
}

/// Names from other tools that mean one of ours, or that we do not have.
fn alias(kind: &str) -> Option<String> {
    let ours = match kind.to_lowercase().as_str() {
        "maintainer" => "author",
        "cwd" | "workingdir" | "working-dir" => "workdir",
        "port" | "ports" => "expose",
        "environment" => "env",
        _ => return None,
    };
    Some(format!("did you mean `{ours}`?"))
}

/// Parse spec text. `name` is what diagnostics call the file.
pub fn parse(name: &str, text: &str) -> Result<Spec, Diagnostics> {
    if let Some(d) = crate::guard::too_deep(text) {
        return Err(Diagnostics::single(name, text, d));
    }
    let doc = match text.parse::<KdlDocument>() {
        Ok(doc) => doc,
        Err(err) => {
            return Err(Diagnostics::new(
                name,
                text,
                syntax::errors(text, &err.diagnostics),
            ));
        }
    };
    let mut p = Parser {
        src: text,
        diags: Vec::new(),
    };
    let spec = p.spec(&doc, name);
    if p.diags.is_empty() {
        Ok(spec)
    } else {
        // Checks that need a whole image run after its nodes; sorting keeps
        // the report in reading order (stable, so one node's problems stay in
        // the order they were found).
        p.diags.sort_by_key(|d| d.span.offset());
        Err(Diagnostics::new(name, text, p.diags))
    }
}

/// Why a spec could not be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ReadError {
    #[error("cannot read spec {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(#[from] Box<Diagnostics>),
    /// `--arg NAME=VALUE` for a NAME the spec does not declare with `arg`.
    #[error(
        "--arg {name}: {spec} declares no argument {name}{}",
        match (suggestion, declared.is_empty()) {
            (Some(s), _) => format!("; did you mean `{s}`?"),
            (None, true) => " (it declares none: add `arg NAME=\"default\"` to it)".to_owned(),
            (None, false) => format!(" (it declares: {})", declared.join(", ")),
        }
    )]
    UnknownArg {
        name: String,
        spec: String,
        suggestion: Option<String>,
        declared: Vec<String>,
    },
}

/// Read and parse a spec file.
pub fn read(path: &Path) -> Result<Spec, ReadError> {
    let text = crate::guard::read_text(path)?;
    parse(&path.display().to_string(), &text).map_err(|d| ReadError::Invalid(Box::new(d)))
}

fn end(span: SourceSpan) -> usize {
    span.offset().saturating_add(span.len())
}

fn between(start: usize, end: usize) -> SourceSpan {
    SourceSpan::new(start.into(), end.saturating_sub(start))
}

/// The node from its first character to the end of its last entry: type
/// annotation, name and entries, without the children block or comments.
fn head_span(node: &KdlNode) -> SourceSpan {
    let last = node
        .entries()
        .iter()
        .map(|e| end(e.span()))
        .chain([end(node.name().span())])
        .max()
        .unwrap_or_default();
    between(node.span().offset(), last)
}

/// The span from the first to the last of some entries (or an empty span).
fn entries_span(entries: &[&KdlEntry]) -> SourceSpan {
    match (entries.first(), entries.last()) {
        (Some(first), Some(last)) => between(first.span().offset(), end(last.span())),
        _ => SourceSpan::new(0.into(), 0),
    }
}

/// A KDL value's kind, as a message names it.
fn kind_of(v: &KdlValue) -> &'static str {
    match v {
        KdlValue::String(_) => "a string",
        KdlValue::Integer(_) => "an integer",
        KdlValue::Float(_) => "a float",
        KdlValue::Bool(_) => "a boolean",
        KdlValue::Null => "null",
    }
}

/// The arguments and the known properties of a node, after the checks every
/// node shares.
struct Entries<'n> {
    args: Vec<&'n KdlEntry>,
    /// First occurrence of each allowed property (lookup only).
    props: BTreeMap<&'n str, &'n KdlEntry>,
    /// Properties suggested for misspelt ones: a missing `to=` is not
    /// reported again when `too=` was.
    suggested: Vec<&'static str>,
}

impl<'n> Entries<'n> {
    fn prop(&self, key: &str) -> Option<&'n KdlEntry> {
        self.props.get(key).copied()
    }
}

/// An image's nodes as they are read, with what is needed to find duplicates.
#[derive(Default)]
struct ImageState {
    from: Option<Spanned<String>>,
    rootfs: Option<Spanned<String>>,
    tag: Option<Spanned<String>>,
    layers: Vec<Layer>,
    config: ImageConfig,
    /// The first node of each single-valued kind.
    seen: BTreeMap<&'static str, SourceSpan>,
    /// The first of `from` / `rootfs`.
    base: Option<(&'static str, SourceSpan)>,
    layer_names: BTreeMap<String, SourceSpan>,
}

struct Parser<'s> {
    src: &'s str,
    diags: Vec<SpecDiagnostic>,
}

impl Parser<'_> {
    fn push(&mut self, d: SpecDiagnostic) {
        self.diags.push(d);
    }

    /// A checked value with its span, or its problem reported and `None`.
    fn settle<T>(&mut self, span: SourceSpan, result: Result<T, Problem>) -> Option<Spanned<T>> {
        match result {
            Ok(v) => Some(Spanned::new(v, span)),
            Err(p) => {
                self.problem(span, p);
                None
            }
        }
    }

    fn problem(&mut self, span: SourceSpan, p: Problem) {
        self.push(SpecDiagnostic {
            message: p.message,
            span,
            label: p.label,
            help: p.help,
        });
    }

    fn line(&self, span: SourceSpan) -> usize {
        Diagnostics::line_col(self.src, span.offset()).0
    }

    fn text(&self, span: SourceSpan) -> &str {
        self.src.get(span.offset()..end(span)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(src: &str, span: SourceSpan) -> &str {
        &src[span.offset()..end(span)]
    }

    #[test]
    fn spans_cover_the_token_and_nothing_around_it() {
        let src = "// leading comment\n/- image old\nimage app { // trailing\n    layer bin {\n        copy \"a\" to = \"/b/\"  mode=0o644 // why\n    }\n    cmd \"x\" \\\n        \"y\" /* c */\n}\n";
        let spec = parse("t.kdl", src).unwrap();
        let image = &spec.images[0];
        assert!(text(src, image.span).starts_with("image app {"));
        assert!(text(src, image.span).ends_with('}'));
        let layer = &image.layers[0];
        assert!(text(src, layer.span).starts_with("layer bin {"));
        assert!(text(src, layer.span).ends_with('}'));
        let op = &layer.ops[0];
        assert_eq!(text(src, op.span), "copy \"a\" to = \"/b/\"  mode=0o644");
        let Op::Copy {
            src: from,
            to,
            mode,
            ..
        } = &op.value
        else {
            panic!("not a copy: {op:?}");
        };
        assert_eq!(text(src, from.span), "\"a\"");
        assert_eq!(text(src, to.span), "\"/b/\"");
        assert_eq!(text(src, mode.as_ref().unwrap().span), "0o644");
        let cmd = image.config.cmd.as_ref().unwrap();
        assert_eq!(cmd.value, ["x", "y"]);
        assert_eq!(text(src, cmd.span), "\"x\" \\\n        \"y\"");
    }

    #[test]
    fn every_error_is_reported() {
        let src = "image app {\n  layr x\n  cmd 1\n  workdir \"rel\"\n}\nepoc 1\n";
        let d = parse("t.kdl", src).unwrap_err();
        let lines: Vec<String> = d.to_string().lines().map(str::to_owned).collect();
        assert_eq!(
            lines,
            [
                "t.kdl:2:3: unknown node `layr`",
                "t.kdl:3:7: `cmd` argument must be a string, not an integer",
                "t.kdl:4:11: path must be absolute",
                "t.kdl:6:1: unknown node `epoc`",
            ]
        );
    }
}
