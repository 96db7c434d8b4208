//! The top level of a spec: the walk over the document, `index`, `epoch`,
//! `compression` and `limits`.

use super::*;

impl Parser<'_> {
    pub(super) fn spec(&mut self, doc: &KdlDocument, name: &str) -> Spec {
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
            repositories: Vec::new(),
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
                "epoch" | "compression" | "inputs-root" | "limits" => {
                    self.top_setting(&mut spec, &mut seen, node);
                }
                "repository" => {
                    if let Some(r) = self.repository(node) {
                        spec.repositories.push(r);
                    }
                }
                kind => self.misplaced_at_top(node, kind),
            }
        }
        self.index_names(&spec.indexes, &image_names);
        self.repository_names(&spec);
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

    /// A setting the spec gives at most once: `epoch`, `compression`,
    /// `inputs-root`, `limits`.
    fn top_setting(
        &mut self,
        spec: &mut Spec,
        seen: &mut BTreeMap<&'static str, SourceSpan>,
        node: &KdlNode,
    ) {
        match node.name().value() {
            "epoch" => {
                let keep = self.first(seen, "epoch", node, "a spec");
                let epoch = self.epoch(node);
                if keep {
                    spec.epoch = epoch;
                }
            }
            "compression" => {
                let keep = self.first(seen, "compression", node, "a spec");
                let (compression, level) = self.compression(node);
                if keep {
                    spec.compression = compression;
                    spec.compression_level = level;
                }
            }
            "inputs-root" => {
                let keep = self.first(seen, "inputs-root", node, "a spec");
                let (arg, _) = self.one_arg(node, "directory", &[]);
                let root = arg.and_then(|a| self.checked(a, "`inputs-root`", values::source_path));
                if keep {
                    spec.inputs_root = root;
                }
            }
            _ => {
                let keep = self.first(seen, "limits", node, "a spec");
                let limits = self.limits(node);
                if keep {
                    spec.limits = limits;
                }
            }
        }
    }

    /// A node at the top level that belongs inside an image or a layer, or
    /// nowhere.
    fn misplaced_at_top(&mut self, node: &KdlNode, kind: &str) {
        if IMAGE_NODES.contains(&kind) {
            self.misplaced(
                node,
                format!("`{kind}` must be inside an image"),
                "outside any image",
                format!("put it in an image: `image NAME {{ {kind} ... }}`"),
            );
        } else if OP_NODES.contains(&kind) {
            self.misplaced(
                node,
                format!("`{kind}` must be inside a layer"),
                "outside any layer",
                format!(
                    "put it in a layer of an image: `image NAME {{ layer NAME {{ {kind} ... }} }}`"
                ),
            );
        } else {
            self.unknown(node, TOP_NODES, "the top level");
        }
    }

    /// `index NAME { image A; image B }`. Whether the images exist and have
    /// different platforms is the planner's to check (it resolves `from`).
    pub(super) fn index(&mut self, node: &KdlNode) -> Option<Index> {
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
    pub(super) fn index_names(&mut self, indexes: &[Index], images: &BTreeMap<String, SourceSpan>) {
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

    pub(super) fn epoch(&mut self, node: &KdlNode) -> Option<Spanned<u64>> {
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
    pub(super) fn compression(
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

    pub(super) fn compression_algorithm(&mut self, arg: &KdlEntry) -> Option<Spanned<Compression>> {
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
    pub(super) fn limits(&mut self, node: &KdlNode) -> Limits {
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
}
