//! A compact, stable text form of a [`Spec`], for snapshots and `strata plan`
//! style listings: one line per node, values as Rust string literals, spans as
//! `@line:col`.

use std::fmt::Write as _;

use miette::SourceSpan;

use crate::{Diagnostics, Op, Owner, RunMount, SecretSource, Spanned, Spec};

impl Spec {
    /// The spec as indented text: one line per node, each value followed by
    /// the `@line:col` it was written at.
    pub fn dump(&self) -> String {
        let d = Dumper { src: &self.source };
        let mut out = String::new();
        if let Some(e) = &self.epoch {
            let _ = writeln!(out, "epoch {}{}", e.value, d.at(e.span));
        }
        if let Some(c) = &self.compression {
            let _ = writeln!(out, "compression {:?}{}", c.value, d.at(c.span));
        }
        if let Some(r) = &self.inputs_root {
            let _ = writeln!(out, "inputs-root {}", d.s(r));
        }
        if let Some(n) = &self.limits.max_input_size {
            let _ = writeln!(out, "limits max-input-size={}{}", n.value, d.at(n.span));
        }
        if let Some(n) = &self.limits.max_entries {
            let _ = writeln!(out, "limits max-entries={}{}", n.value, d.at(n.span));
        }
        for index in &self.indexes {
            let _ = writeln!(out, "index {:?}{}", index.name.value, d.at(index.name.span));
            for image in &index.images {
                let _ = writeln!(out, "  image {}", d.s(image));
            }
        }
        for r in &self.repositories {
            let _ = writeln!(
                out,
                "repository {} suite={} keyring={}{} components={:?} architectures={:?}",
                d.s(&r.name),
                d.s(&r.suite),
                d.s(&r.keyring),
                r.url
                    .as_ref()
                    .map(|u| format!(" url={}", d.s(u)))
                    .unwrap_or_default(),
                r.components.join(" "),
                r.architectures.join(" "),
            );
        }
        for image in &self.images {
            let _ = writeln!(out, "image {:?}{}", image.name.value, d.at(image.name.span));
            let mut line = |s: String| {
                let _ = writeln!(out, "  {s}");
            };
            if let Some(f) = &image.from {
                line(format!("from {}", d.s(f)));
            }
            if let Some(r) = &image.rootfs {
                line(format!("rootfs {}", d.s(r)));
            }
            if let Some(t) = &image.tag {
                line(format!("tag {}", d.s(t)));
            }
            for layer in &image.layers {
                line(format!("layer {}", d.s(&layer.name)));
                for op in &layer.ops {
                    line(format!("  {}", d.op(op)));
                }
            }
            let c = &image.config;
            for (k, v) in &c.env {
                line(format!("env {}={}", d.s(k), d.s(v)));
            }
            if let Some(v) = &c.cmd {
                line(format!("cmd {:?}{}", v.value, d.at(v.span)));
            }
            if let Some(v) = &c.entrypoint {
                line(format!("entrypoint {:?}{}", v.value, d.at(v.span)));
            }
            if let Some(v) = &c.workdir {
                line(format!("workdir {}", d.s(v)));
            }
            if let Some(v) = &c.user {
                line(format!("user {}", d.s(v)));
            }
            for v in &c.expose {
                line(format!("expose {}", d.s(v)));
            }
            for v in &c.volumes {
                line(format!("volume {}", d.s(v)));
            }
            for (k, v) in &c.labels {
                line(format!("label {k:?}={}", d.s(v)));
            }
            for (k, v) in &c.annotations {
                line(format!("annotation {k:?}={}", d.s(v)));
            }
            if let Some(v) = &c.stop_signal {
                line(format!("stop-signal {}", d.s(v)));
            }
            if let Some(v) = &c.author {
                line(format!("author {}", d.s(v)));
            }
            if let Some(h) = &c.healthcheck {
                let v = &h.value;
                line(format!(
                    "healthcheck {:?} interval={:?} timeout={:?} start-period={:?} retries={:?}{}",
                    v.test,
                    v.interval,
                    v.timeout,
                    v.start_period,
                    v.retries,
                    d.at(h.span)
                ));
            }
            if let Some(v) = &c.shell {
                line(format!("shell {:?}{}", v.value, d.at(v.span)));
            }
            if let Some(p) = &c.platform {
                let p2 = &p.value;
                let variant = p2.variant.as_deref().map(|v| format!(" variant={v:?}"));
                line(format!(
                    "platform os={:?} arch={:?}{}{}",
                    p2.os,
                    p2.architecture,
                    variant.unwrap_or_default(),
                    d.at(p.span)
                ));
            }
        }
        out
    }
}

struct Dumper<'a> {
    src: &'a str,
}

impl Dumper<'_> {
    fn at(&self, span: SourceSpan) -> String {
        let (line, col) = Diagnostics::line_col(self.src, span.offset());
        format!("@{line}:{col}")
    }

    fn s(&self, v: &Spanned<String>) -> String {
        format!("{:?}{}", v.value, self.at(v.span))
    }

    fn mode(&self, m: &Option<Spanned<u32>>) -> String {
        m.as_ref()
            .map(|m| format!(" mode=0o{:o}{}", m.value, self.at(m.span)))
            .unwrap_or_default()
    }

    fn owner(&self, o: &Option<Spanned<Owner>>) -> String {
        o.as_ref()
            .map(|o| format!(" owner={}{}", o.value, self.at(o.span)))
            .unwrap_or_default()
    }

    fn op(&self, op: &Spanned<Op>) -> String {
        let body = match &op.value {
            Op::Add {
                src,
                to,
                mode,
                owner,
                exclude,
                checksum: _,
            }
            | Op::Copy {
                src,
                to,
                mode,
                owner,
                exclude,
                ..
            } => format!(
                "{}{} to={}{}{}{}",
                self.s(src),
                match &op.value {
                    Op::Copy { from: Some(f), .. } => format!(" from={}", self.s(f)),
                    _ => String::new(),
                },
                self.s(to),
                self.mode(mode),
                self.owner(owner),
                exclude
                    .as_ref()
                    .map(|x| format!(" exclude={:?}{}", x.value, self.at(x.span)))
                    .unwrap_or_default()
            ),
            Op::File {
                path,
                content,
                mode,
                owner,
            } => format!(
                "{} {}{}{}",
                self.s(path),
                self.s(content),
                self.mode(mode),
                self.owner(owner)
            ),
            Op::Mkdir {
                path,
                mode,
                owner,
                if_missing,
            } => {
                format!(
                    "{}{}{}{}",
                    self.s(path),
                    self.mode(mode),
                    self.owner(owner),
                    if_missing
                        .as_ref()
                        .map(|b| format!(" if-missing={}{}", b.value, self.at(b.span)))
                        .unwrap_or_default()
                )
            }
            Op::Symlink {
                path,
                target,
                owner,
            } => {
                format!(
                    "{} target={}{}",
                    self.s(path),
                    self.s(target),
                    self.owner(owner)
                )
            }
            Op::Delete { path } => self.s(path),
            Op::FromDir { src, normalize } => format!(
                "{}{}",
                self.s(src),
                normalize
                    .as_ref()
                    .map(|n| format!(" normalize={}{}", n.value, self.at(n.span)))
                    .unwrap_or_default()
            ),
            Op::Run {
                command,
                network,
                user,
                mounts,
            } => format!(
                "{}{}{}{}",
                self.s(command),
                network
                    .as_ref()
                    .map(|n| format!(" network={}{}", n.value, self.at(n.span)))
                    .unwrap_or_default(),
                user.as_ref()
                    .map(|u| format!(" user={}", self.s(u)))
                    .unwrap_or_default(),
                mounts
                    .iter()
                    .map(|m| match &m.value {
                        RunMount::Cache { target, id } => format!(
                            " {{ cache{} {}{} }}",
                            self.at(m.span),
                            self.s(target),
                            id.as_ref()
                                .map(|i| format!(" id={}", self.s(i)))
                                .unwrap_or_default()
                        ),
                        RunMount::Secret { target, source } => format!(
                            " {{ secret{} {} {} }}",
                            self.at(m.span),
                            self.s(target),
                            match source {
                                SecretSource::File(f) => format!("file={}", self.s(f)),
                                SecretSource::Env(v) => format!("env={}", self.s(v)),
                            }
                        ),
                        RunMount::Bind {
                            target,
                            from,
                            source,
                        } => format!(
                            " {{ bind{} {} from={}{} }}",
                            self.at(m.span),
                            self.s(target),
                            self.s(from),
                            source
                                .as_ref()
                                .map(|s| format!(" source={}", self.s(s)))
                                .unwrap_or_default()
                        ),
                    })
                    .collect::<String>()
            ),
            Op::Packages(p) => format!(
                "{}{}{}",
                p.packages
                    .iter()
                    .map(|n| self.s(n))
                    .collect::<Vec<_>>()
                    .join(" "),
                if p.required { " required=true" } else { "" },
                p.repository
                    .as_ref()
                    .map(|r| format!(" repository={}", self.s(r)))
                    .unwrap_or_default()
            ),
        };
        format!("{}{} {body}", op.value.kind(), self.at(op.span))
    }
}
