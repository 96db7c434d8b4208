//! A `layer` node and its operations (`add`, `copy`, `file`, `mkdir`,
//! `symlink`, `delete`, `from-dir`, `run`, `packages`).

use super::*;

impl Parser<'_> {
    pub(super) fn layer(&mut self, st: &mut ImageState, node: &KdlNode) -> Option<Layer> {
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
    /// A `copy from=` reads another image's layers, and shares its layer
    /// only with other such copies.
    pub(super) fn whole_layer_ops(&mut self, ops: &[Spanned<Op>]) {
        let runs = ops
            .iter()
            .filter(|o| matches!(o.value, Op::Run { .. }))
            .count();
        let from_image = |op: &Op| matches!(op, Op::Copy { from: Some(_), .. });
        let copies = ops.iter().filter(|o| from_image(&o.value)).count();
        for op in ops {
            match &op.value {
                other if copies > 0 && !from_image(other) => self.push(
                    SpecDiagnostic::new(
                        format!("`{}` cannot share a layer with `copy from=`", other.kind()),
                        op.span,
                        "in a layer that copies from an image",
                    )
                    .with_help(
                        "put it in a layer of its own; several `copy from=` may share their layer",
                    ),
                ),
                _ if copies > 0 => {}
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

    pub(super) fn op(&mut self, node: &KdlNode) -> Option<Spanned<Op>> {
        let span = head_span(node);
        let op = match node.name().value() {
            kind @ ("add" | "copy") => self.op_add_or_copy(kind, node)?,
            "file" => self.op_file(node)?,
            "mkdir" => self.op_mkdir(node)?,
            "symlink" => self.op_symlink(node)?,
            "delete" => self.op_delete(node)?,
            "from-dir" => self.op_from_dir(node)?,
            "run" => self.op_run(node)?,
            "packages" => Op::Packages(self.packages(node)?),
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

    fn op_add_or_copy(&mut self, kind: &str, node: &KdlNode) -> Option<Op> {
        self.common(node, false);
        let allowed: &[&'static str] = if kind == "add" {
            &["to", "mode", "owner", "exclude", "checksum"]
        } else {
            &["to", "mode", "owner", "exclude", "from"]
        };
        let e = self.entries(node, allowed);
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
        let from = match e.prop("from") {
            Some(f) => Some(self.checked(f, "`from`", values::image_name)?),
            None => None,
        };
        // From an image, the source is a path in it; otherwise a host path.
        let src = e.args.first().and_then(|a| match from {
            Some(_) => self.checked(a, "a source path", values::image_path),
            None => self.checked(a, "a source path", values::source_path),
        });
        let to = if dockerfile_habit {
            None
        } else {
            self.required(node, &e, "to", "a destination")
                .and_then(|t| self.checked(t, "`to`", values::image_path))
        };
        let mode = e.prop("mode").and_then(|m| self.mode(m));
        let owner = e.prop("owner").and_then(|o| self.owner(o));
        let exclude = match e.prop("exclude") {
            Some(x) => Some(self.exclude(x)?),
            None => None,
        };
        let (src, to) = (src?, to?);
        if let (Some(from), Some(x)) = (&from, &exclude) {
            self.problem(
                x.span,
                Problem::new("`exclude` filters host directories, and this copy is from an image", "with `from`")
                    .help(format!("copy the paths of `{}` you want one by one, or delete what you do not want in a later layer", from.value)),
            );
            return None;
        }
        let checksum = self.checksum(kind, &src, e.prop("checksum"), node)?;
        Some(if kind == "add" {
            Op::Add {
                src,
                to,
                mode,
                owner,
                exclude,
                checksum,
            }
        } else {
            Op::Copy {
                src,
                to,
                mode,
                owner,
                exclude,
                from,
            }
        })
    }

    /// `checksum="sha256:HEX"` of an `add` of a URL: required there, and
    /// only there; `copy` takes no URL (as Docker's COPY).
    fn checksum(
        &mut self,
        kind: &str,
        src: &Spanned<String>,
        prop: Option<&KdlEntry>,
        node: &KdlNode,
    ) -> Option<Option<Spanned<String>>> {
        let url = src.value.starts_with("http://") || src.value.starts_with("https://");
        let sum = match prop {
            Some(p) => Some(self.checked(p, "`checksum`", values::checksum)?),
            None => None,
        };
        match (url, kind, sum) {
            (true, "copy", _) => {
                self.problem(
                    src.span,
                    Problem::new("`copy` takes local files, not URLs", "a URL")
                        .help("`add` fetches a URL: `add \"https://...\" to=\"/DEST/\" checksum=\"sha256:...\"`"),
                );
                None
            }
            (true, _, None) => {
                self.push(
                    SpecDiagnostic::new(
                        "`add` of a URL needs its `checksum`",
                        node.name().span(),
                        "missing `checksum=`",
                    )
                    .with_help("pin what the URL gives, as Docker's ADD --checksum does: checksum=\"sha256:HEX\" (`sha256sum FILE` prints HEX)"),
                );
                None
            }
            (false, _, Some(sum)) => {
                self.problem(
                    sum.span,
                    Problem::new(
                        "`checksum` pins a URL's content, and the source is no URL",
                        "not a URL's",
                    )
                    .help("remove `checksum=`; a local input is hashed anyway"),
                );
                None
            }
            (_, _, sum) => Some(sum),
        }
    }

    /// `exclude="*.md **/*.tmp !README.md"`: patterns separated by blanks
    /// (a blank inside one written `\ `), at least one.
    fn exclude(&mut self, x: &KdlEntry) -> Option<Spanned<Vec<String>>> {
        let s = self.string(x, "`exclude`")?;
        let patterns = values::exclude_patterns(&s.value);
        if patterns.is_empty() {
            self.problem(
                s.span,
                Problem::new("`exclude` needs at least one pattern", "no pattern")
                    .help("write .dockerignore patterns separated by blanks: exclude=\"*.md **/*.tmp !README.md\""),
            );
            return None;
        }
        Some(Spanned::new(patterns, s.span))
    }

    fn op_file(&mut self, node: &KdlNode) -> Option<Op> {
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
        Some(Op::File {
            path: path?,
            content: content?,
            mode,
            owner,
        })
    }

    fn op_mkdir(&mut self, node: &KdlNode) -> Option<Op> {
        let (arg, e) = self.one_arg(node, "path", &["mode", "owner", "if-missing"]);
        let path = arg.and_then(|a| self.checked(a, "a path", values::image_path));
        let mode = e.prop("mode").and_then(|m| self.mode(m));
        let owner = e.prop("owner").and_then(|o| self.owner(o));
        let if_missing = e
            .prop("if-missing")
            .and_then(|b| self.boolean(b, "`if-missing`"));
        if let (Some(m), Some(true)) = (&mode, if_missing.as_ref().map(|b| b.value)) {
            self.push(
                SpecDiagnostic::new(
                    "`mode=` and `if-missing=#true` do not go together",
                    m.span,
                    "a mode",
                )
                .with_help("a directory made if missing is 0755, as Docker's WORKDIR makes it; an existing one keeps its mode"),
            );
            return None;
        }
        Some(Op::Mkdir {
            path: path?,
            mode,
            owner,
            if_missing,
        })
    }

    fn op_symlink(&mut self, node: &KdlNode) -> Option<Op> {
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
        Some(Op::Symlink {
            path: path?,
            target: target?,
            owner,
        })
    }

    fn op_delete(&mut self, node: &KdlNode) -> Option<Op> {
        let (arg, _) = self.one_arg(node, "path", &[]);
        let path = arg.and_then(|a| self.checked(a, "a path", values::image_path))?;
        if path.value.trim_matches('/').is_empty() {
            self.push(
                SpecDiagnostic::new(
                    "cannot delete the root directory",
                    path.span,
                    "the image root",
                )
                .with_help("delete the paths under it one by one, or build on another base"),
            );
            return None;
        }
        Some(Op::Delete { path })
    }

    fn op_from_dir(&mut self, node: &KdlNode) -> Option<Op> {
        let (arg, e) = self.one_arg(node, "directory", &["normalize"]);
        let src = arg.and_then(|a| self.checked(a, "a source directory", values::source_path))?;
        let normalize = e
            .prop("normalize")
            .and_then(|n| self.boolean(n, "`normalize`"));
        Some(Op::FromDir { src, normalize })
    }

    fn op_run(&mut self, node: &KdlNode) -> Option<Op> {
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
        Some(Op::Run {
            command: command?,
            network,
            user,
            mounts,
        })
    }
}
