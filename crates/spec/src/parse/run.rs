//! The block of a `run` step: its mounts (`cache`, `secret`, `bind`), as BuildKit's
//! `RUN --mount` gives them. A child module of `parse`, whose checks it uses.
use kdl::{KdlDocument, KdlNode};

use super::Parser;
use crate::values;
use crate::{RunMount, SecretSource, Spanned, SpecDiagnostic};

/// The nodes a `run` block takes.
const MOUNT_NODES: &[&str] = &["cache", "secret", "bind"];

fn mount_usage(kind: &str) -> &'static str {
    match kind {
        "cache" => "cache \"/PATH\" [id=\"ID\"]",
        "bind" => "bind \"/PATH\" from=\"IMAGE\" [source=\"/PATH\"]",
        _ => "secret \"/PATH\" file=\"FILE\" (or env=\"NAME\")",
    }
}

impl Parser<'_> {
    /// The command argument and properties of a `run` node, which may have
    /// a block of mounts.
    pub(super) fn run_arg<'n>(
        &mut self,
        node: &'n KdlNode,
    ) -> (Option<&'n kdl::KdlEntry>, super::Entries<'n>) {
        self.common(node, true);
        let e = self.entries(node, &["network", "user"]);
        self.arity(node, &e.args, &["command"], false, None);
        (e.args.first().copied(), e)
    }

    /// The mounts in the block of a `run` node; every mistake reported.
    pub(super) fn run_mounts(&mut self, node: &KdlNode) -> Vec<Spanned<RunMount>> {
        let mut mounts: Vec<Spanned<RunMount>> = Vec::new();
        for child in node.children().map(KdlDocument::nodes).unwrap_or_default() {
            let kind = child.name().value();
            let span = super::head_span(child);
            let mount = match kind {
                "cache" => self.cache_mount(child),
                "secret" => self.secret_mount(child),
                "bind" => self.bind_mount(child),
                _ => {
                    self.unknown(child, MOUNT_NODES, "a `run` block");
                    None
                }
            };
            let Some(mount) = mount else { continue };
            let target = mount.target();
            let clash = mounts.iter().find(|m| {
                let other = &m.value.target().value;
                let (a, b) = (
                    target.value.trim_end_matches('/'),
                    other.trim_end_matches('/'),
                );
                a == b
                    || a.strip_prefix(b).is_some_and(|r| r.starts_with('/'))
                    || b.strip_prefix(a).is_some_and(|r| r.starts_with('/'))
            });
            if let Some(other) = clash {
                self.push(
                    SpecDiagnostic::new(
                        format!(
                            "mount at {} overlaps the mount at {}",
                            target.value,
                            other.value.target().value
                        ),
                        target.span,
                        "overlapping mount",
                    )
                    .with_help("give each mount of a step its own path, none inside another"),
                );
                continue;
            }
            mounts.push(Spanned::new(mount, span));
        }
        mounts
    }

    /// The path a mount is at: an absolute image path, not the root.
    fn mount_target(&mut self, node: &KdlNode, e: &super::Entries<'_>) -> Option<Spanned<String>> {
        let kind = node.name().value();
        self.arity(
            node,
            &e.args,
            &["path"],
            false,
            Some(format!("usage: `{}`", mount_usage(kind))),
        );
        let arg = e.args.first()?;
        let target = self.checked(arg, "the mount's path", values::image_path)?;
        if target.value.trim_matches('/').is_empty() {
            self.push(
                SpecDiagnostic::new(
                    "a mount cannot cover the image's root",
                    target.span,
                    "the root",
                )
                .with_help("mount at a directory or file below `/`"),
            );
            return None;
        }
        Some(target)
    }

    fn cache_mount(&mut self, node: &KdlNode) -> Option<RunMount> {
        self.common(node, false);
        let e = self.entries(node, &["id"]);
        let target = self.mount_target(node, &e);
        let id = match e.prop("id") {
            Some(i) => Some(self.checked(i, "`id`", |s| {
                if s.is_empty() {
                    Err(values::Problem::new("the id must not be empty", "empty id"))
                } else {
                    Ok(())
                }
            })?),
            None => None,
        };
        Some(RunMount::Cache {
            target: target?,
            id,
        })
    }

    fn bind_mount(&mut self, node: &KdlNode) -> Option<RunMount> {
        self.common(node, false);
        let e = self.entries(node, &["from", "source"]);
        let target = self.mount_target(node, &e);
        let from = match e.prop("from") {
            Some(f) => self.checked(f, "`from`", values::image_name),
            None => {
                self.push(
                    SpecDiagnostic::new(
                        "a bind mount needs `from=`: the image of the spec it shows",
                        super::head_span(node),
                        "no `from`",
                    )
                    .with_help(format!("usage: `{}`", mount_usage("bind"))),
                );
                None
            }
        };
        let source = match e.prop("source") {
            Some(s) => Some(self.checked(s, "the bind's `source`", values::image_path)?),
            None => None,
        };
        Some(RunMount::Bind {
            target: target?,
            from: from?,
            source,
        })
    }

    fn secret_mount(&mut self, node: &KdlNode) -> Option<RunMount> {
        self.common(node, false);
        let e = self.entries(node, &["file", "env"]);
        let target = self.mount_target(node, &e);
        let source = match (e.prop("file"), e.prop("env")) {
            (Some(f), None) => {
                SecretSource::File(self.checked(f, "the secret's `file`", values::source_path)?)
            }
            (None, Some(v)) => SecretSource::Env(self.checked(v, "the secret's `env`", |s| {
                if s.is_empty() || s.contains('=') || s.contains('\0') {
                    Err(values::Problem::new(
                        "not the name of an environment variable",
                        "bad name",
                    ))
                } else {
                    Ok(())
                }
            })?),
            (Some(_), Some(v)) => {
                self.push(
                    SpecDiagnostic::new(
                        "a secret takes `file=` or `env=`, not both",
                        self.value_span(v),
                        "second source",
                    )
                    .with_help(format!("usage: `{}`", mount_usage("secret"))),
                );
                return None;
            }
            (None, None) => {
                self.push(
                    SpecDiagnostic::new(
                        "a secret needs `file=` or `env=`: where its bytes come from",
                        super::head_span(node),
                        "no source",
                    )
                    .with_help(format!("usage: `{}`", mount_usage("secret"))),
                );
                return None;
            }
        };
        Some(RunMount::Secret {
            target: target?,
            source,
        })
    }
}
