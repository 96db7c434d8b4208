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

#[path = "parse_run.rs"]
mod parse_run;
use crate::syntax;
use crate::values::{self, Problem};
use crate::{
    Compression, Diagnostics, Image, ImageConfig, Index, Layer, Limits, Op, Owner, Spanned, Spec,
    SpecDiagnostic,
};

mod args;

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
];
const OP_NODES: &[&str] = &[
    "add", "copy", "file", "mkdir", "symlink", "delete", "from-dir", "run",
];

/// How each node is written, for "usage:" hints.
fn usage(kind: &str) -> &'static str {
    match kind {
        "image" => "image NAME { ... }",
        "index" => "index NAME { image IMAGE-AMD64; image IMAGE-ARM64 }",
        "epoch" => "epoch 1700000000",
        "compression" => "compression \"gzip\" (or \"zstd\", \"none\"; gzip and zstd take level=N)",
        "inputs-root" => "inputs-root \"..\"",
        "limits" => "limits max-input-size=\"64GiB\" max-entries=10000000",
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
        "add" => "add \"SRC\" to=\"/DEST/\" [mode=0o644] [owner=\"UID:GID\"]",
        "copy" => "copy \"SRC\" to=\"/DEST/\" [mode=0o644] [owner=\"UID:GID\"]",
        "file" => "file \"/PATH\" \"CONTENT\" [mode=0o644] [owner=\"UID:GID\"]",
        "mkdir" => "mkdir \"/PATH\" [mode=0o755] [owner=\"UID:GID\"]",
        "symlink" => "symlink \"/PATH\" target=\"TARGET\" [owner=\"UID:GID\"]",
        "delete" => "delete \"/PATH\"",
        "from-dir" => "from-dir \"DIR\" [normalize=#true]",
        "arg" => "arg NAME=\"default\" (or `arg NAME`; set with --arg NAME=VALUE)",
        "run" => "run \"COMMAND\" [network=#true] [user=\"NAME[:GROUP]\"]",
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

    /// The span of an entry's value: for a property, without `key=`.
    fn value_span(&self, e: &KdlEntry) -> SourceSpan {
        let span = e.span();
        let Some(name) = e.name() else {
            return span;
        };
        let from = end(name.span());
        let to = end(span);
        let Some(eq) = self.src.get(from..to).and_then(|t| t.find('=')) else {
            return span;
        };
        let rest = self.src.get(from + eq + 1..to).unwrap_or_default();
        let skipped = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_whitespace() || c == '\\')
                .len();
        between(from + eq + 1 + skipped, to)
    }

    /// A value as the user wrote it (`0o644`, `#true`, `"x"`).
    fn repr<'a>(&'a self, e: &'a KdlEntry) -> &'a str {
        match e.format() {
            Some(f) if !f.value_repr.is_empty() => &f.value_repr,
            _ => self.text(self.value_span(e)),
        }
    }

    /// The children block of a node, braces included.
    fn children_span(&self, node: &KdlNode) -> SourceSpan {
        let from = end(head_span(node));
        let to = end(node.span());
        let text = self.src.get(from..to).unwrap_or_default();
        match (text.find('{'), text.rfind('}')) {
            (Some(open), Some(close)) if open <= close => between(from + open, from + close + 1),
            _ => node.span(),
        }
    }

    /// The node with its children block, without trailing space or comments.
    fn node_span(&self, node: &KdlNode) -> SourceSpan {
        let head = head_span(node);
        if node.children().is_some() {
            between(head.offset(), end(self.children_span(node)).max(end(head)))
        } else {
            head
        }
    }

    // ---- checks every node shares ------------------------------------------

    /// Type annotations (`(u8)1`) mean nothing in a spec; a block where the
    /// node takes none is a mistake.
    fn common(&mut self, node: &KdlNode, children_allowed: bool) {
        let types = node.ty().map(|t| t.span()).into_iter().chain(
            node.entries()
                .iter()
                .filter_map(|e| e.ty().map(|t| t.span())),
        );
        let types: Vec<SourceSpan> = types.collect();
        for span in types {
            // The identifier's span leaves out the parentheses around it.
            let before = self.src.get(..span.offset()).unwrap_or_default().trim_end();
            let after = self.src.get(end(span)..).unwrap_or_default();
            let span = match (before.strip_suffix('('), after.find(')')) {
                (Some(open), Some(c)) if after.get(..c).is_some_and(|t| t.trim().is_empty()) => {
                    between(open.len(), end(span) + c + 1)
                }
                _ => span,
            };
            let text = self.text(span).to_owned();
            self.push(
                SpecDiagnostic::new(
                    "type annotations are not used in strata specs",
                    span,
                    "type annotation",
                )
                .with_help(format!("remove `{text}`")),
            );
        }
        if !children_allowed && node.children().is_some() {
            let kind = node.name().value();
            self.push(
                SpecDiagnostic::new(
                    format!("`{kind}` takes no block"),
                    self.children_span(node),
                    "unexpected block",
                )
                .with_help(usage_help(kind)),
            );
        }
    }

    /// Split a node's entries into arguments and properties; report unknown
    /// and repeated properties.
    fn entries<'n>(&mut self, node: &'n KdlNode, allowed: &[&'static str]) -> Entries<'n> {
        let kind = node.name().value();
        let mut out = Entries {
            args: Vec::new(),
            props: BTreeMap::new(),
            suggested: Vec::new(),
        };
        for e in node.entries() {
            let Some(key) = e.name() else {
                out.args.push(e);
                continue;
            };
            let k = key.value();
            if !allowed.contains(&k) {
                let suggestion = did_you_mean(k, allowed);
                out.suggested.extend(suggestion);
                let help = match suggestion {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if kind == "symlink" && k == "mode" => {
                        "a symlink has no mode of its own".to_owned()
                    }
                    None if allowed.is_empty() => {
                        format!("`{kind}` takes no properties; {}", usage_help(kind))
                    }
                    None => format!(
                        "`{kind}` takes {}",
                        allowed
                            .iter()
                            .map(|a| format!("`{a}=`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.push(
                    SpecDiagnostic::new(
                        format!("unknown property `{k}` on `{kind}`"),
                        key.span(),
                        "unknown property",
                    )
                    .with_help(help),
                );
            } else if let Some(first) = out.props.get(k) {
                let line = self.line(first.span());
                self.push(
                    SpecDiagnostic::new(
                        format!("duplicate property `{k}`"),
                        key.span(),
                        format!("second `{k}`"),
                    )
                    .with_help(format!(
                        "`{k}` is already set on line {line}; remove one of them"
                    )),
                );
            } else {
                out.props.insert(k, e);
            }
        }
        out
    }

    /// Check the number of arguments. `names` are the required positional
    /// arguments (`variadic`: the last may repeat). Missing arguments are
    /// reported at the node name, extra ones together.
    fn arity(
        &mut self,
        node: &KdlNode,
        args: &[&KdlEntry],
        names: &[&str],
        variadic: bool,
        extra_help: Option<String>,
    ) {
        let kind = node.name().value();
        if args.len() < names.len() {
            let missing = names.get(args.len()..).unwrap_or_default().join(" and ");
            let message = if variadic && names.len() == 1 {
                format!("`{kind}` needs at least one {missing}")
            } else {
                format!("`{kind}` needs its {missing}")
            };
            self.push(
                SpecDiagnostic::new(message, node.name().span(), format!("missing {missing}"))
                    .with_help(usage_help(kind)),
            );
        } else if !variadic && args.len() > names.len() {
            let extra = args.get(names.len()..).unwrap_or_default();
            let label = if extra.len() == 1 {
                "unexpected argument"
            } else {
                "unexpected arguments"
            };
            self.push(
                SpecDiagnostic::new(
                    format!("too many arguments to `{kind}`"),
                    entries_span(extra),
                    label,
                )
                .with_help(extra_help.unwrap_or_else(|| usage_help(kind))),
            );
        }
    }

    /// The common shape of a node with one argument and no block.
    fn one_arg<'n>(
        &mut self,
        node: &'n KdlNode,
        name: &str,
        props: &[&'static str],
    ) -> (Option<&'n KdlEntry>, Entries<'n>) {
        self.common(node, false);
        let e = self.entries(node, props);
        self.arity(node, &e.args, &[name], false, None);
        (e.args.first().copied(), e)
    }

    /// Report a value of the wrong kind. `what` names it in the message.
    fn wrong_type(&mut self, e: &KdlEntry, what: &str, expected: &str) {
        let found = kind_of(e.value());
        let mut d = SpecDiagnostic::new(
            format!("{what} must be {expected}, not {found}"),
            self.value_span(e),
            found,
        );
        if expected == "a string" && !matches!(e.value(), KdlValue::Null) {
            let repr = self.repr(e).trim_start_matches('#');
            let key = e
                .name()
                .map(|k| format!("{}=", k.value()))
                .unwrap_or_default();
            d = d.with_help(format!("quote it: `{key}\"{repr}\"`"));
        }
        self.push(d);
    }

    /// A string value; anything else is reported.
    fn string(&mut self, e: &KdlEntry, what: &str) -> Option<Spanned<String>> {
        match e.value() {
            KdlValue::String(s) => Some(Spanned::new(s.clone(), self.value_span(e))),
            _ => {
                self.wrong_type(e, what, "a string");
                None
            }
        }
    }

    /// A boolean value (`#true`, `#false`); anything else is reported.
    fn boolean(&mut self, e: &KdlEntry, what: &str) -> Option<Spanned<bool>> {
        match e.value() {
            KdlValue::Bool(b) => Some(Spanned::new(*b, self.value_span(e))),
            _ => {
                self.wrong_type(e, what, "a boolean (#true or #false)");
                None
            }
        }
    }

    /// A string value that passes `check`.
    /// The name of a `KIND NAME { ... }` node (image, layer, index): the
    /// node's common checks, exactly one argument, and `check` on it.
    fn block_name(
        &mut self,
        node: &KdlNode,
        what: &str,
        check: impl FnOnce(&str) -> Result<(), Problem>,
    ) -> Option<Spanned<String>> {
        self.common(node, true);
        let e = self.entries(node, &[]);
        self.arity(node, &e.args, &["name"], false, None);
        e.args.first().and_then(|a| self.checked(a, what, check))
    }

    fn checked(
        &mut self,
        e: &KdlEntry,
        what: &str,
        check: impl FnOnce(&str) -> Result<(), Problem>,
    ) -> Option<Spanned<String>> {
        let s = self.string(e, what)?;
        match check(&s.value) {
            Ok(()) => Some(s),
            Err(p) => {
                self.problem(s.span, p);
                None
            }
        }
    }

    /// A string or a non-negative integer, as a string (`user 1000`, `stop-signal 9`).
    fn string_or_int(
        &mut self,
        e: &KdlEntry,
        what: &str,
        int: impl FnOnce(i128) -> Result<String, Problem>,
        check: impl FnOnce(&str) -> Result<(), Problem>,
    ) -> Option<Spanned<String>> {
        let span = self.value_span(e);
        let result = match e.value() {
            KdlValue::String(s) => check(s).map(|()| s.clone()),
            KdlValue::Integer(n) => int(*n),
            _ => {
                self.wrong_type(e, what, "a string or an integer");
                return None;
            }
        };
        self.settle(span, result)
    }

    /// `mode=0o644`.
    fn mode(&mut self, e: &KdlEntry) -> Option<Spanned<u32>> {
        let span = self.value_span(e);
        let result = match e.value() {
            KdlValue::Integer(n) => values::mode(*n, self.repr(e)),
            KdlValue::String(s) => Err(values::mode_from_string(s)),
            v => Err(Problem::new("mode must be a number", kind_of(v))
                .help("write modes as octal numbers: mode=0o644")),
        };
        self.settle(span, result)
    }

    /// `owner="1000:1000"` or `owner=1000`.
    fn owner(&mut self, e: &KdlEntry) -> Option<Spanned<Owner>> {
        let span = self.value_span(e);
        let result = match e.value() {
            KdlValue::Integer(n) => values::owner_int(*n),
            KdlValue::String(s) => values::owner(s),
            _ => {
                self.wrong_type(e, "`owner`", "a string or an integer");
                return None;
            }
        };
        self.settle(span, result)
    }

    /// A property the node cannot do without; reported at the node name.
    fn required<'n>(
        &mut self,
        node: &KdlNode,
        e: &Entries<'n>,
        key: &str,
        what: &str,
    ) -> Option<&'n KdlEntry> {
        let found = e.prop(key);
        if found.is_none() && !e.suggested.contains(&key) {
            let kind = node.name().value();
            self.push(
                SpecDiagnostic::new(
                    format!("`{kind}` needs {what}"),
                    node.name().span(),
                    format!("missing `{key}=`"),
                )
                .with_help(usage_help(kind)),
            );
        }
        found
    }

    /// Whether `node` is the first of its single-valued kind in its scope;
    /// a second one is reported, and its value is checked but not kept.
    fn first(
        &mut self,
        seen: &mut BTreeMap<&'static str, SourceSpan>,
        kind: &'static str,
        node: &KdlNode,
        scope: &str,
    ) -> bool {
        let span = head_span(node);
        if let Some(&first) = seen.get(kind) {
            let line = self.line(first);
            self.push(
                SpecDiagnostic::new(
                    format!("duplicate `{kind}`"),
                    span,
                    format!("second `{kind}`"),
                )
                .with_help(format!(
                    "`{kind}` is already set on line {line}; {scope} has one `{kind}`"
                )),
            );
            false
        } else {
            seen.insert(kind, span);
            true
        }
    }

    /// A node that does not belong where it is.
    fn unknown(&mut self, node: &KdlNode, valid: &[&str], place: &str) {
        let kind = node.name().value();
        let help = alias(kind)
            .or_else(|| did_you_mean(kind, valid).map(|s| format!("did you mean `{s}`?")))
            .unwrap_or_else(|| format!("{place} takes: {}", valid.join(", ")));
        self.push(
            SpecDiagnostic::new(
                format!("unknown node `{kind}`"),
                node.name().span(),
                format!("not valid in {place}"),
            )
            .with_help(help),
        );
    }

    /// A known node in the wrong context.
    fn misplaced(&mut self, node: &KdlNode, message: String, label: &str, help: String) {
        self.push(SpecDiagnostic::new(message, node.name().span(), label).with_help(help));
    }

    // ---- the top level -----------------------------------------------------

    fn spec(&mut self, doc: &KdlDocument, name: &str) -> Spec {
        let mut spec = Spec {
            name: name.to_owned(),
            source: self.src.to_owned(),
            epoch: None,
            compression: None,
            compression_level: None,
            inputs_root: None,
            limits: Limits::default(),
            images: Vec::new(),
            indexes: Vec::new(),
            args: Vec::new(),
        };
        let mut seen = BTreeMap::new();
        let mut image_names = BTreeMap::new();
        let mut any_image = false;
        for node in doc.nodes() {
            match node.name().value() {
                "image" => {
                    any_image = true;
                    if let Some(image) = self.image(node, &mut image_names) {
                        spec.images.push(image);
                    }
                }
                "arg" => self.arg(node, &mut spec.args),
                "index" => {
                    if let Some(index) = self.index(node) {
                        spec.indexes.push(index);
                    }
                }
                "epoch" => {
                    let keep = self.first(&mut seen, "epoch", node, "a spec");
                    let epoch = self.epoch(node);
                    if keep {
                        spec.epoch = epoch;
                    }
                }
                "compression" => {
                    let keep = self.first(&mut seen, "compression", node, "a spec");
                    let (compression, level) = self.compression(node);
                    if keep {
                        spec.compression = compression;
                        spec.compression_level = level;
                    }
                }
                "inputs-root" => {
                    let keep = self.first(&mut seen, "inputs-root", node, "a spec");
                    let (arg, _) = self.one_arg(node, "directory", &[]);
                    let root =
                        arg.and_then(|a| self.checked(a, "`inputs-root`", values::source_path));
                    if keep {
                        spec.inputs_root = root;
                    }
                }
                "limits" => {
                    let keep = self.first(&mut seen, "limits", node, "a spec");
                    let limits = self.limits(node);
                    if keep {
                        spec.limits = limits;
                    }
                }
                kind if IMAGE_NODES.contains(&kind) => self.misplaced(
                    node,
                    format!("`{kind}` must be inside an image"),
                    "outside any image",
                    format!("put it in an image: `image NAME {{ {kind} ... }}`"),
                ),
                kind if OP_NODES.contains(&kind) => self.misplaced(
                    node,
                    format!("`{kind}` must be inside a layer"),
                    "outside any layer",
                    format!("put it in a layer of an image: `image NAME {{ layer NAME {{ {kind} ... }} }}`"),
                ),
                _ => self.unknown(node, TOP_NODES, "the top level"),
            }
        }
        self.index_names(&spec.indexes, &image_names);
        if !any_image {
            self.push(
                SpecDiagnostic::new(
                    "the spec has no image",
                    doc.nodes()
                        .first()
                        .map_or_else(|| SourceSpan::new(0.into(), 0), head_span),
                    "no `image` in this file",
                )
                .with_help(format!("a spec builds images: `{}`", usage("image"))),
            );
        }
        spec
    }

    /// `index NAME { image A; image B }`. Whether the images exist and have
    /// different platforms is the planner's to check (it resolves `from`).
    fn index(&mut self, node: &KdlNode) -> Option<Index> {
        let name = self.block_name(node, "an index name", values::image_name);
        let mut images: Vec<Spanned<String>> = Vec::new();
        let mut any = false;
        for child in node.children().map(KdlDocument::nodes).unwrap_or_default() {
            if child.name().value() != "image" {
                self.unknown(child, &["image"], "an index");
                continue;
            }
            any = true;
            let (arg, _) = self.one_arg(child, "image name", &[]);
            let Some(image) =
                arg.and_then(|a| self.checked(a, "an image name", values::image_name))
            else {
                continue;
            };
            if let Some(first) = images.iter().find(|i| i.value == image.value) {
                let line = self.line(first.span);
                self.push(
                    SpecDiagnostic::new(
                        format!("image `{}` is listed twice in this index", image.value),
                        image.span,
                        "second time",
                    )
                    .with_help(format!("it is already listed on line {line}; remove one")),
                );
                continue;
            }
            images.push(image);
        }
        if !any {
            self.push(
                SpecDiagnostic::new(
                    "an index needs at least one image",
                    head_span(node),
                    "no `image` in this index",
                )
                .with_help(usage_help("index")),
            );
        }
        Some(Index {
            name: name?,
            span: self.node_span(node),
            images,
        })
    }

    /// An index is tagged by its name in the layout, like an image: its name
    /// must be no image's and no other index's.
    fn index_names(&mut self, indexes: &[Index], images: &BTreeMap<String, SourceSpan>) {
        let mut seen: BTreeMap<&str, SourceSpan> = BTreeMap::new();
        for index in indexes {
            let name = &index.name;
            let (first, what) = match (images.get(&name.value), seen.get(name.value.as_str())) {
                (Some(&span), _) => (span, "an image"),
                (None, Some(&span)) => (span, "another index"),
                (None, None) => {
                    seen.insert(&name.value, name.span);
                    continue;
                }
            };
            let line = self.line(first);
            self.push(
                SpecDiagnostic::new(
                    format!("the name `{}` is taken", name.value),
                    name.span,
                    "name already used",
                )
                .with_help(format!(
                    "{what} is named `{}` on line {line}; images and indexes are tagged by \
                     name in the layout, so each name is used once",
                    name.value
                )),
            );
        }
    }

    fn epoch(&mut self, node: &KdlNode) -> Option<Spanned<u64>> {
        let (arg, _) = self.one_arg(node, "time in seconds", &[]);
        let e = arg?;
        let span = self.value_span(e);
        match e.value() {
            KdlValue::Integer(n) => match u64::try_from(*n) {
                Ok(n) => Some(Spanned::new(n, span)),
                Err(_) => {
                    let label = if *n < 0 { "negative" } else { "too large" };
                    self.push(
                        SpecDiagnostic::new("epoch out of range", span, label).with_help(
                            "the epoch is seconds since 1970-01-01 UTC, from 0 to 18446744073709551615",
                        ),
                    );
                    None
                }
            },
            KdlValue::String(s) if s.parse::<u64>().is_ok() => {
                self.push(
                    SpecDiagnostic::new(
                        "`epoch` must be an integer, not a string",
                        span,
                        "a string",
                    )
                    .with_help(format!("write it without quotes: `epoch {s}`")),
                );
                None
            }
            _ => {
                self.wrong_type(e, "`epoch`", "an integer");
                None
            }
        }
    }

    /// `compression "gzip"|"zstd"|"none" [level=N]`.
    fn compression(
        &mut self,
        node: &KdlNode,
    ) -> (Option<Spanned<Compression>>, Option<Spanned<u32>>) {
        let (arg, e) = self.one_arg(node, "algorithm", &["level"]);
        let Some(c) = arg.and_then(|a| self.compression_algorithm(a)) else {
            return (None, None);
        };
        let level = e.prop("level").and_then(|v| {
            let span = self.value_span(v);
            let KdlValue::Integer(n) = v.value() else {
                self.wrong_type(v, "`level`", "an integer");
                return None;
            };
            let (lo, hi, what) = match c.value {
                Compression::Gzip => (1, 9, "gzip levels are 1 (fastest) to 9 (smallest)"),
                Compression::Zstd => (1, 19, "zstd levels are 1 (fastest) to 19 (smallest)"),
                Compression::None => {
                    self.push(
                        SpecDiagnostic::new(
                            "`level` has no meaning for compression \"none\"",
                            span,
                            "not used",
                        )
                        .with_help("remove `level=`, or choose \"gzip\" or \"zstd\""),
                    );
                    return None;
                }
            };
            match u32::try_from(*n) {
                Ok(l) if (lo..=hi).contains(&l) => Some(Spanned::new(l, span)),
                _ => {
                    self.push(
                        SpecDiagnostic::new(
                            format!("compression level {n} is out of range {lo}-{hi}"),
                            span,
                            "out of range",
                        )
                        .with_help(what),
                    );
                    None
                }
            }
        });
        (Some(c), level)
    }

    fn compression_algorithm(&mut self, arg: &KdlEntry) -> Option<Spanned<Compression>> {
        let s = self.string(arg, "`compression`")?;
        let c = match s.value.as_str() {
            "gzip" => Compression::Gzip,
            "zstd" => Compression::Zstd,
            "none" => Compression::None,
            other => {
                let valid = ["gzip", "zstd", "none"];
                let help = match did_you_mean(other, &valid) {
                    Some(v) => format!("did you mean \"{v}\"?"),
                    None => "compression is \"gzip\", \"zstd\" or \"none\"".to_owned(),
                };
                self.push(
                    SpecDiagnostic::new(
                        format!("unknown compression `{other}`"),
                        s.span,
                        "not gzip, zstd or none",
                    )
                    .with_help(help),
                );
                return None;
            }
        };
        Some(Spanned::new(c, s.span))
    }

    /// `limits max-input-size=SIZE max-entries=N`: at least one of them.
    fn limits(&mut self, node: &KdlNode) -> Limits {
        const PROPS: &[&str] = &["max-input-size", "max-entries"];
        self.common(node, false);
        let e = self.entries(node, PROPS);
        self.arity(node, &e.args, &[], false, None);
        let mut limits = Limits::default();
        if let Some(v) = e.prop("max-input-size") {
            let span = self.value_span(v);
            let result = match v.value() {
                KdlValue::Integer(n) => values::size_int(*n),
                KdlValue::String(s) => values::size(s),
                _ => {
                    self.wrong_type(v, "`max-input-size`", "a size such as \"64GiB\"");
                    return limits;
                }
            };
            match result {
                Ok(n) => limits.max_input_size = Some(Spanned::new(n, span)),
                Err(p) => self.problem(span, p),
            }
        }
        if let Some(v) = e.prop("max-entries") {
            let span = self.value_span(v);
            match v.value() {
                KdlValue::Integer(n) => match values::count(*n) {
                    Ok(n) => limits.max_entries = Some(Spanned::new(n, span)),
                    Err(p) => self.problem(span, p),
                },
                _ => self.wrong_type(v, "`max-entries`", "an integer"),
            }
        }
        if node.entries().is_empty() {
            self.push(
                SpecDiagnostic::new(
                    "`limits` needs at least one limit",
                    node.name().span(),
                    "no limit set",
                )
                .with_help(usage_help("limits")),
            );
        }
        limits
    }

    // ---- images ------------------------------------------------------------

    fn image(&mut self, node: &KdlNode, names: &mut BTreeMap<String, SourceSpan>) -> Option<Image> {
        let name = self.block_name(node, "an image name", values::image_name);
        if let Some(name) = &name {
            if let Some(&first) = names.get(&name.value) {
                let line = self.line(first);
                self.push(
                    SpecDiagnostic::new(
                        format!("duplicate image `{}`", name.value),
                        name.span,
                        "second image of this name",
                    )
                    .with_help(format!(
                        "image `{}` is already defined on line {line}; image names are unique",
                        name.value
                    )),
                );
            } else {
                names.insert(name.value.clone(), name.span);
            }
        }

        let mut st = ImageState::default();
        for child in node.children().map(KdlDocument::nodes).unwrap_or_default() {
            self.image_child(&mut st, child);
        }
        if st.rootfs.is_some() {
            for layer in st.layers.iter().filter(|l| l.name.value == "rootfs") {
                self.diags.push(
                    SpecDiagnostic::new(
                        "layer name `rootfs` is reserved in an image with `rootfs`",
                        layer.name.span,
                        "reserved name",
                    )
                    .with_help("the `rootfs` tarball is this image's first layer, named `rootfs`; rename this layer"),
                );
            }
        }
        Some(Image {
            name: name?,
            span: self.node_span(node),
            from: st.from,
            rootfs: st.rootfs,
            tag: st.tag,
            layers: st.layers,
            config: st.config,
        })
    }

    /// `from` or `rootfs`: an image has one base.
    fn base(&mut self, st: &mut ImageState, kind: &'static str, node: &KdlNode) -> bool {
        if !self.first(&mut st.seen, kind, node, "an image") {
            return false;
        }
        match st.base {
            Some((other, first)) if other != kind => {
                let line = self.line(first);
                self.push(
                    SpecDiagnostic::new("an image has one base", head_span(node), "second base")
                        .with_help(format!(
                            "`{other}` on line {line} already sets the base; keep either `from` or `rootfs`"
                        )),
                );
                false
            }
            _ => {
                st.base = Some((kind, head_span(node)));
                true
            }
        }
    }

    fn image_child(&mut self, st: &mut ImageState, node: &KdlNode) {
        match node.name().value() {
            "from" => {
                let keep = self.base(st, "from", node);
                let (arg, _) = self.one_arg(node, "image name", &[]);
                let v = arg.and_then(|a| self.checked(a, "`from`", values::base_name));
                if keep {
                    st.from = v;
                }
            }
            "rootfs" => {
                let keep = self.base(st, "rootfs", node);
                let (arg, _) = self.one_arg(node, "tarball path", &[]);
                let v = arg.and_then(|a| self.checked(a, "`rootfs`", values::source_path));
                if keep {
                    st.rootfs = v;
                }
            }
            "tag" => {
                let keep = self.first(&mut st.seen, "tag", node, "an image");
                let (arg, _) = self.one_arg(node, "tag", &[]);
                let v = arg.and_then(|a| self.checked(a, "`tag`", values::tag));
                if keep {
                    st.tag = v;
                }
            }
            "layer" => {
                if let Some(layer) = self.layer(st, node) {
                    st.layers.push(layer);
                }
            }
            "env" => self.env(st, node),
            "cmd" => {
                let keep = self.first(&mut st.seen, "cmd", node, "an image");
                let v = self.argv(node);
                if keep {
                    st.config.cmd = v;
                }
            }
            "entrypoint" => {
                let keep = self.first(&mut st.seen, "entrypoint", node, "an image");
                let v = self.argv(node);
                if keep {
                    st.config.entrypoint = v;
                }
            }
            "workdir" => {
                let keep = self.first(&mut st.seen, "workdir", node, "an image");
                let (arg, _) = self.one_arg(node, "path", &[]);
                let v = arg.and_then(|a| self.checked(a, "`workdir`", values::image_path));
                if keep {
                    st.config.workdir = v;
                }
            }
            "user" => {
                let keep = self.first(&mut st.seen, "user", node, "an image");
                let (arg, _) = self.one_arg(node, "user", &[]);
                let v = arg.and_then(|a| {
                    self.string_or_int(
                        a,
                        "`user`",
                        |n| values::owner_int(n).map(|o| o.uid.to_string()),
                        values::user,
                    )
                });
                if keep {
                    st.config.user = v;
                }
            }
            "expose" => self.expose(st, node),
            "volume" => self.volume(st, node),
            "label" => self.map(node, "label", &mut st.config.labels),
            "annotation" => self.map(node, "annotation", &mut st.config.annotations),
            "stop-signal" => {
                let keep = self.first(&mut st.seen, "stop-signal", node, "an image");
                let (arg, _) = self.one_arg(node, "signal", &[]);
                let v = arg.and_then(|a| {
                    self.string_or_int(
                        a,
                        "`stop-signal`",
                        |n| values::signal_number(n).map(|n| n.to_string()),
                        values::signal,
                    )
                });
                if keep {
                    st.config.stop_signal = v;
                }
            }
            "author" => {
                let keep = self.first(&mut st.seen, "author", node, "an image");
                let (arg, _) = self.one_arg(node, "name", &[]);
                let v = arg.and_then(|a| {
                    self.checked(a, "`author`", |s| {
                        if s.trim().is_empty() {
                            Err(Problem::new("author must not be empty", "empty")
                                .help(usage_help("author")))
                        } else {
                            Ok(())
                        }
                    })
                });
                if keep {
                    st.config.author = v;
                }
            }
            "platform" => {
                let keep = self.first(&mut st.seen, "platform", node, "an image");
                let (arg, _) = self.one_arg(node, "platform", &[]);
                let v = arg.and_then(|a| self.string(a, "`platform`"));
                let v = v.and_then(|s| match values::platform(&s.value) {
                    Ok(p) => Some(Spanned::new(p, s.span)),
                    Err(p) => {
                        self.problem(s.span, p);
                        None
                    }
                });
                if keep {
                    st.config.platform = v;
                }
            }
            "image" => self.misplaced(
                node,
                "images do not nest".to_owned(),
                "inside another image",
                "define every image at the top level; use `from` to build one on another"
                    .to_owned(),
            ),
            kind @ ("epoch" | "compression" | "inputs-root" | "limits") => self.misplaced(
                node,
                format!("`{kind}` belongs at the top level"),
                "inside an image",
                format!("`{kind}` applies to the whole spec; move it out of the image"),
            ),
            kind if OP_NODES.contains(&kind) => self.misplaced(
                node,
                format!("`{kind}` must be inside a layer"),
                "outside any layer",
                format!("put it in a layer: `layer NAME {{ {kind} ... }}`"),
            ),
            _ => self.unknown(node, IMAGE_NODES, "an image"),
        }
    }

    /// `cmd` / `entrypoint`: one or more strings.
    fn argv(&mut self, node: &KdlNode) -> Option<Spanned<Vec<String>>> {
        self.common(node, false);
        let e = self.entries(node, &[]);
        self.arity(node, &e.args, &["argument"], true, None);
        let what = format!("`{}` argument", node.name().value());
        let mut argv = Vec::new();
        let mut ok = !e.args.is_empty();
        for a in &e.args {
            match self.string(a, &what) {
                Some(s) => argv.push(s.value),
                None => ok = false,
            }
        }
        ok.then(|| Spanned::new(argv, entries_span(&e.args)))
    }

    /// `env K="V" ...`: properties, in order; a key may be set again.
    fn env(&mut self, st: &mut ImageState, node: &KdlNode) {
        self.common(node, false);
        let (props, args): (Vec<&KdlEntry>, Vec<&KdlEntry>) =
            node.entries().iter().partition(|e| e.name().is_some());
        if !args.is_empty() {
            let help = match args.as_slice() {
                [k, v] => match (k.value(), v.value()) {
                    (KdlValue::String(k), KdlValue::String(v)) => {
                        format!("write it as a property: `env {k}={v:?}`")
                    }
                    _ => usage_help("env"),
                },
                _ => usage_help("env"),
            };
            self.push(
                SpecDiagnostic::new(
                    "`env` takes KEY=\"value\" properties, not arguments",
                    entries_span(&args),
                    "not KEY=\"value\"",
                )
                .with_help(help),
            );
        } else if props.is_empty() {
            self.push(
                SpecDiagnostic::new(
                    "`env` needs at least one variable",
                    node.name().span(),
                    "no KEY=\"value\"",
                )
                .with_help(usage_help("env")),
            );
        }
        for p in props {
            let Some(key) = p.name() else { continue };
            if let Err(problem) = values::env_key(key.value()) {
                self.problem(key.span(), problem);
                continue;
            }
            let what = format!("the value of `{}`", key.value());
            if let Some(value) = self.string(p, &what) {
                st.config
                    .env
                    .push((Spanned::new(key.value().to_owned(), key.span()), value));
            }
        }
    }

    /// `label k="v" ...` / `annotation k="v" ...`: keys unique in the image.
    fn map(&mut self, node: &KdlNode, kind: &str, map: &mut BTreeMap<String, Spanned<String>>) {
        self.common(node, false);
        let (props, args): (Vec<&KdlEntry>, Vec<&KdlEntry>) =
            node.entries().iter().partition(|e| e.name().is_some());
        if !args.is_empty() {
            self.push(
                SpecDiagnostic::new(
                    format!("`{kind}` takes key=\"value\" properties, not arguments"),
                    entries_span(&args),
                    "not key=\"value\"",
                )
                .with_help(usage_help(kind)),
            );
        } else if props.is_empty() {
            self.push(
                SpecDiagnostic::new(
                    format!("`{kind}` needs at least one key=\"value\""),
                    node.name().span(),
                    "no key=\"value\"",
                )
                .with_help(usage_help(kind)),
            );
        }
        for p in props {
            let Some(key) = p.name() else { continue };
            let k = key.value();
            if let Err(problem) = values::map_key(k, kind) {
                self.problem(key.span(), problem);
                continue;
            }
            let what = format!("the value of `{k}`");
            let Some(value) = self.string(p, &what) else {
                continue;
            };
            if let Some(first) = map.get(k) {
                let line = self.line(first.span);
                self.push(
                    SpecDiagnostic::new(
                        format!("duplicate {kind} `{k}`"),
                        key.span(),
                        format!("second `{k}`"),
                    )
                    .with_help(format!(
                        "`{k}` is already set on line {line}; remove one of them"
                    )),
                );
            } else {
                map.insert(k.to_owned(), value);
            }
        }
    }

    /// `expose 8080 "53/udp"`: normalised to `PORT/PROTO`, unique in the image.
    fn expose(&mut self, st: &mut ImageState, node: &KdlNode) {
        self.common(node, false);
        let e = self.entries(node, &[]);
        self.arity(node, &e.args, &["port"], true, None);
        for a in &e.args {
            let span = self.value_span(a);
            let port = match a.value() {
                KdlValue::Integer(n) => values::port_number(*n).map(|p| format!("{p}/tcp")),
                KdlValue::String(s) => values::port(s),
                _ => {
                    self.wrong_type(a, "a port", "an integer or a string");
                    continue;
                }
            };
            match port {
                Ok(p) => self.unique(
                    &mut st.config.expose,
                    Spanned::new(p, span),
                    "port",
                    "already exposed",
                ),
                Err(problem) => self.problem(span, problem),
            }
        }
    }

    /// `volume "/data" ...`: absolute, unique in the image.
    fn volume(&mut self, st: &mut ImageState, node: &KdlNode) {
        self.common(node, false);
        let e = self.entries(node, &[]);
        self.arity(node, &e.args, &["path"], true, None);
        for a in &e.args {
            if let Some(v) = self.checked(a, "a volume", values::image_path) {
                self.unique(&mut st.config.volumes, v, "volume", "already a volume");
            }
        }
    }

    /// Push `v` unless the list has it already (then report it).
    fn unique(
        &mut self,
        list: &mut Vec<Spanned<String>>,
        v: Spanned<String>,
        what: &str,
        label: &str,
    ) {
        if let Some(first) = list.iter().find(|x| x.value == v.value) {
            let line = self.line(first.span);
            self.push(
                SpecDiagnostic::new(format!("duplicate {what} `{}`", v.value), v.span, label)
                    .with_help(format!("`{}` is already listed on line {line}", v.value)),
            );
        } else {
            list.push(v);
        }
    }

    // ---- layers ------------------------------------------------------------

    fn layer(&mut self, st: &mut ImageState, node: &KdlNode) -> Option<Layer> {
        let name = self.block_name(node, "a layer name", values::layer_name);
        if let Some(name) = &name {
            if let Some(&first) = st.layer_names.get(&name.value) {
                let line = self.line(first);
                self.push(
                    SpecDiagnostic::new(
                        format!("duplicate layer `{}`", name.value),
                        name.span,
                        "second layer of this name",
                    )
                    .with_help(format!(
                        "layer `{}` is already defined on line {line}; layer names are unique within an image",
                        name.value
                    )),
                );
            } else {
                st.layer_names.insert(name.value.clone(), name.span);
            }
        }
        let children = node.children().map(KdlDocument::nodes).unwrap_or_default();
        if children.is_empty() {
            let what = name
                .as_ref()
                .map_or(String::new(), |n| format!(" `{}`", n.value));
            self.push(
                SpecDiagnostic::new(
                    format!("empty layer{what}"),
                    head_span(node),
                    "no operations",
                )
                .with_help(format!(
                    "a layer needs at least one operation ({}); remove it if it has none",
                    OP_NODES.join(", ")
                )),
            );
        }
        let ops: Vec<Spanned<Op>> = children.iter().filter_map(|c| self.op(c)).collect();
        self.whole_layer_ops(&ops);
        Some(Layer {
            name: name?,
            span: self.node_span(node),
            ops,
        })
    }

    /// `from-dir` is a layer by itself, and `run` steps share their layer
    /// only with other `run` steps: both compute the whole layer from the
    /// layers below, which other operations of the layer would contradict.
    fn whole_layer_ops(&mut self, ops: &[Spanned<Op>]) {
        let runs = ops
            .iter()
            .filter(|o| matches!(o.value, Op::Run { .. }))
            .count();
        for op in ops {
            match &op.value {
                Op::FromDir { .. } if ops.len() > 1 => self.push(
                    SpecDiagnostic::new(
                        "`from-dir` must be the only operation of its layer",
                        op.span,
                        "not alone in its layer",
                    )
                    .with_help(
                        "a `from-dir` layer is the whole difference to the directory; put the other operations in a layer of their own",
                    ),
                ),
                Op::Run { .. } | Op::FromDir { .. } => {}
                other if runs > 0 => self.push(
                    SpecDiagnostic::new(
                        format!("`{}` cannot share a layer with `run`", other.kind()),
                        op.span,
                        "in a `run` layer",
                    )
                    .with_help(
                        "put it in a layer of its own; several `run` steps in one layer run one after another",
                    ),
                ),
                _ => {}
            }
        }
    }

    fn op(&mut self, node: &KdlNode) -> Option<Spanned<Op>> {
        let span = head_span(node);
        let op = match node.name().value() {
            kind @ ("add" | "copy") => {
                self.common(node, false);
                let e = self.entries(node, &["to", "mode", "owner"]);
                // `add "a" "/usr/local/"` is the Dockerfile habit: say where the destination goes.
                // That one error says it all: no second "needs a destination".
                let extra_help = match (e.args.get(1).map(|a| a.value()), e.prop("to")) {
                    (Some(KdlValue::String(dst)), None) => {
                        Some(format!("the destination is a property: `to={dst:?}`"))
                    }
                    _ => None,
                };
                let dockerfile_habit = extra_help.is_some();
                self.arity(node, &e.args, &["source path"], false, extra_help);
                let src = e
                    .args
                    .first()
                    .and_then(|a| self.checked(a, "a source path", values::source_path));
                let to = if dockerfile_habit {
                    None
                } else {
                    self.required(node, &e, "to", "a destination")
                        .and_then(|t| self.checked(t, "`to`", values::image_path))
                };
                let mode = e.prop("mode").and_then(|m| self.mode(m));
                let owner = e.prop("owner").and_then(|o| self.owner(o));
                let (src, to) = (src?, to?);
                if kind == "add" {
                    Op::Add {
                        src,
                        to,
                        mode,
                        owner,
                    }
                } else {
                    Op::Copy {
                        src,
                        to,
                        mode,
                        owner,
                    }
                }
            }
            "file" => {
                self.common(node, false);
                let e = self.entries(node, &["mode", "owner"]);
                self.arity(node, &e.args, &["path", "content"], false, None);
                let path = e
                    .args
                    .first()
                    .and_then(|a| self.checked(a, "a path", values::image_path));
                let content = e.args.get(1).and_then(|a| self.string(a, "the content"));
                let mode = e.prop("mode").and_then(|m| self.mode(m));
                let owner = e.prop("owner").and_then(|o| self.owner(o));
                Op::File {
                    path: path?,
                    content: content?,
                    mode,
                    owner,
                }
            }
            "mkdir" => {
                let (arg, e) = self.one_arg(node, "path", &["mode", "owner"]);
                let path = arg.and_then(|a| self.checked(a, "a path", values::image_path));
                let mode = e.prop("mode").and_then(|m| self.mode(m));
                let owner = e.prop("owner").and_then(|o| self.owner(o));
                Op::Mkdir {
                    path: path?,
                    mode,
                    owner,
                }
            }
            "symlink" => {
                let (arg, e) = self.one_arg(node, "path", &["target", "owner"]);
                let path = arg.and_then(|a| self.checked(a, "a path", values::image_path));
                let target = self.required(node, &e, "target", "a target").and_then(|t| {
                    self.checked(t, "`target`", |s| {
                        if s.is_empty() {
                            Err(
                                Problem::new("symlink target must not be empty", "empty target")
                                    .help(usage_help("symlink")),
                            )
                        } else if s.contains('\0') {
                            Err(Problem::new(
                                "target contains a NUL character",
                                "NUL character",
                            ))
                        } else {
                            Ok(())
                        }
                    })
                });
                let owner = e.prop("owner").and_then(|o| self.owner(o));
                Op::Symlink {
                    path: path?,
                    target: target?,
                    owner,
                }
            }
            "delete" => {
                let (arg, _) = self.one_arg(node, "path", &[]);
                let path = arg.and_then(|a| self.checked(a, "a path", values::image_path))?;
                if path.value.trim_matches('/').is_empty() {
                    self.push(
                        SpecDiagnostic::new(
                            "cannot delete the root directory",
                            path.span,
                            "the image root",
                        )
                        .with_help(
                            "delete the paths under it one by one, or build on another base",
                        ),
                    );
                    return None;
                }
                Op::Delete { path }
            }
            "from-dir" => {
                let (arg, e) = self.one_arg(node, "directory", &["normalize"]);
                let src =
                    arg.and_then(|a| self.checked(a, "a source directory", values::source_path))?;
                let normalize = e
                    .prop("normalize")
                    .and_then(|n| self.boolean(n, "`normalize`"));
                Op::FromDir { src, normalize }
            }
            "run" => {
                let (arg, e) = self.run_arg(node);
                let command = arg.and_then(|a| {
                    self.checked(a, "the command", |s| {
                        if s.trim().is_empty() {
                            Err(
                                Problem::new("the command must not be empty", "empty command")
                                    .help(usage_help("run")),
                            )
                        } else if s.contains('\0') {
                            Err(Problem::new(
                                "the command contains a NUL character",
                                "NUL character",
                            ))
                        } else {
                            Ok(())
                        }
                    })
                });
                let network = e.prop("network").and_then(|n| self.boolean(n, "`network`"));
                let user = e
                    .prop("user")
                    .and_then(|u| self.string(u, "`user`"))
                    .filter(|u| !u.value.is_empty());
                let mounts = self.run_mounts(node);
                Op::Run {
                    command: command?,
                    network,
                    user,
                    mounts,
                }
            }
            "layer" => {
                self.misplaced(
                    node,
                    "layers do not nest".to_owned(),
                    "inside another layer",
                    "define every layer directly in its image".to_owned(),
                );
                return None;
            }
            kind if IMAGE_NODES.contains(&kind) => {
                self.misplaced(
                    node,
                    format!("`{kind}` is an image setting, not a layer operation"),
                    "inside a layer",
                    format!("move `{kind}` out of the layer, into the image"),
                );
                return None;
            }
            _ => {
                self.unknown(node, OP_NODES, "a layer");
                return None;
            }
        };
        Some(Spanned::new(op, span))
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
