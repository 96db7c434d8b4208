//! An `image` node and its settings: `from`/`rootfs`, `env`, `cmd`,
//! `entrypoint`, `label`, `annotation`, `expose`, `volume` and the rest.

use super::*;

impl Parser<'_> {
    pub(super) fn image(
        &mut self,
        node: &KdlNode,
        names: &mut BTreeMap<String, SourceSpan>,
    ) -> Option<Image> {
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
        if st.config.workdir.is_some() {
            for layer in st.layers.iter().filter(|l| l.name.value == "workdir") {
                self.diags.push(
                    SpecDiagnostic::new(
                        "layer name `workdir` is reserved in an image with `workdir`",
                        layer.name.span,
                        "reserved name",
                    )
                    .with_help("the layer that makes the `workdir` directory is named `workdir`; rename this layer"),
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
    pub(super) fn base(&mut self, st: &mut ImageState, kind: &'static str, node: &KdlNode) -> bool {
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

    pub(super) fn image_child(&mut self, st: &mut ImageState, node: &KdlNode) {
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
            "layer" => {
                if let Some(layer) = self.layer(st, node) {
                    st.layers.push(layer);
                }
            }
            "env" => self.env(st, node),
            "cmd" | "entrypoint" => self.command(st, node),
            "expose" => self.expose(st, node),
            "volume" => self.volume(st, node),
            "healthcheck" => self.healthcheck(st, node),
            "shell" => self.shell(st, node),
            "label" => self.map(node, "label", &mut st.config.labels),
            "annotation" => self.map(node, "annotation", &mut st.config.annotations),
            "tag" | "workdir" | "user" | "stop-signal" | "author" | "platform" => {
                self.setting(st, node);
            }
            kind => self.misplaced_in_image(node, kind),
        }
    }

    /// `cmd` or `entrypoint`, given once.
    fn command(&mut self, st: &mut ImageState, node: &KdlNode) {
        let entrypoint = node.name().value() == "entrypoint";
        let kind = if entrypoint { "entrypoint" } else { "cmd" };
        let keep = self.first(&mut st.seen, kind, node, "an image");
        let v = self.argv(node);
        if keep {
            if entrypoint {
                st.config.entrypoint = v;
            } else {
                st.config.cmd = v;
            }
        }
    }

    /// A setting an image gives at most once, with one argument.
    fn setting(&mut self, st: &mut ImageState, node: &KdlNode) {
        match node.name().value() {
            "tag" => {
                if let Some(v) =
                    self.once(st, "tag", node, |p, a| p.checked(a, "`tag`", values::tag))
                {
                    st.tag = v;
                }
            }
            "workdir" => {
                let read =
                    |p: &mut Self, a: &KdlEntry| p.checked(a, "`workdir`", values::image_path);
                if let Some(v) = self.once(st, "workdir", node, read) {
                    st.config.workdir = v;
                }
            }
            "user" => {
                let read = |p: &mut Self, a: &KdlEntry| {
                    p.string_or_int(
                        a,
                        "`user`",
                        |n| values::owner_int(n).map(|o| o.user.to_string()),
                        values::user,
                    )
                };
                if let Some(v) = self.once(st, "user", node, read) {
                    st.config.user = v;
                }
            }
            "stop-signal" => {
                let read = |p: &mut Self, a: &KdlEntry| {
                    p.string_or_int(
                        a,
                        "`stop-signal`",
                        |n| values::signal_number(n).map(|n| n.to_string()),
                        values::signal,
                    )
                };
                if let Some(v) = self.once(st, "stop-signal", node, read) {
                    st.config.stop_signal = v;
                }
            }
            "author" => {
                if let Some(v) = self.once(st, "author", node, Self::author) {
                    st.config.author = v;
                }
            }
            _ => {
                if let Some(v) = self.once(st, "platform", node, Self::platform) {
                    st.config.platform = v;
                }
            }
        }
    }

    /// The one argument of a setting `kind` that an image gives at most once,
    /// read by `read`; `None` when the image gave it before (reported), so
    /// the first one stands.
    fn once<T>(
        &mut self,
        st: &mut ImageState,
        kind: &'static str,
        node: &KdlNode,
        read: impl FnOnce(&mut Self, &KdlEntry) -> Option<Spanned<T>>,
    ) -> Option<Option<Spanned<T>>> {
        let keep = self.first(&mut st.seen, kind, node, "an image");
        let (arg, _) = self.one_arg(node, arg_name(kind), &[]);
        let v = arg.and_then(|a| read(self, a));
        keep.then_some(v)
    }

    fn author(&mut self, a: &KdlEntry) -> Option<Spanned<String>> {
        self.checked(a, "`author`", |s| {
            if s.trim().is_empty() {
                Err(Problem::new("author must not be empty", "empty").help(usage_help("author")))
            } else {
                Ok(())
            }
        })
    }

    fn platform(&mut self, a: &KdlEntry) -> Option<Spanned<crate::Platform>> {
        let s = self.string(a, "`platform`")?;
        match values::platform(&s.value) {
            Ok(p) => Some(Spanned::new(p, s.span)),
            Err(p) => {
                self.problem(s.span, p);
                None
            }
        }
    }

    /// A node that belongs elsewhere than in an image, or nowhere.
    fn misplaced_in_image(&mut self, node: &KdlNode, kind: &str) {
        match kind {
            "image" => self.misplaced(
                node,
                "images do not nest".to_owned(),
                "inside another image",
                "define every image at the top level; use `from` to build one on another"
                    .to_owned(),
            ),
            "epoch" | "compression" | "inputs-root" | "limits" => self.misplaced(
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
    pub(super) fn argv(&mut self, node: &KdlNode) -> Option<Spanned<Vec<String>>> {
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
    pub(super) fn env(&mut self, st: &mut ImageState, node: &KdlNode) {
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
    pub(super) fn map(
        &mut self,
        node: &KdlNode,
        kind: &str,
        map: &mut BTreeMap<String, Spanned<String>>,
    ) {
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
    pub(super) fn expose(&mut self, st: &mut ImageState, node: &KdlNode) {
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
    pub(super) fn volume(&mut self, st: &mut ImageState, node: &KdlNode) {
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
    pub(super) fn unique(
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
}

/// What the one argument of an image setting is called in messages.
fn arg_name(kind: &str) -> &'static str {
    match kind {
        "tag" => "tag",
        "workdir" => "path",
        "user" => "user",
        "stop-signal" => "signal",
        "author" => "name",
        _ => "platform",
    }
}
