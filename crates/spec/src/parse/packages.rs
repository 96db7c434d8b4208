//! The nodes of Debian packages: `repository` at the top level and the
//! `packages` layer operation. A child module of `parse`, so that it uses
//! the parser's shared checks (arity, properties, value types).
//!
//! What is checked here is only what the text shows: names, the shape of
//! each package request, the repository's fields. Whether a repository is
//! reachable, signed, or has the packages is for the build to find.

use kdl::{KdlNode, KdlValue};

use super::{Parser, Problem};
use crate::{PackagesOp, Repository, Spanned, SpecDiagnostic};

/// The largest layering budget (`packages ... layers=N`).
const MAX_LAYERS: u32 = 16;

/// A package request as apt and Debian write them: `name`, `name:arch`,
/// `name=version` or `name (>= version)`.
fn package_request(s: &str) -> Result<(), Problem> {
    let name_end = s.find([' ', '(', '=', ':']).unwrap_or(s.len());
    let name = &s[..name_end];
    let valid = !name.is_empty()
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+-.".contains(&c));
    if !valid {
        return Err(Problem::new(
            format!("{s:?} is not a package name (lowercase letters, digits and `+-.`)"),
            "not a package",
        )
        .help("write `\"NAME\"`, `\"NAME=VERSION\"` or `\"NAME (>= VERSION)\"`"));
    }
    if s.contains('|') || s.contains(',') {
        return Err(Problem::new(
            "one package per string: alternatives and lists are for dependencies",
            "several packages",
        )
        .help("give each package its own string: `packages \"a\" \"b\"`"));
    }
    Ok(())
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

impl Parser<'_> {
    /// `repository NAME suite="..." keyring="..." [url=] [components=] [architectures=]`.
    pub(super) fn repository(&mut self, node: &KdlNode) -> Option<Repository> {
        let (arg, e) = self.one_arg(
            node,
            "name",
            &[
                "url",
                "suite",
                "components",
                "architectures",
                "keyring",
                "check-valid-until",
            ],
        );
        let name = arg.and_then(|a| {
            self.checked(a, "a repository name", |s| {
                if s.is_empty() || s.contains(char::is_whitespace) {
                    Err(Problem::new("a repository name is one word", "not a name"))
                } else {
                    Ok(())
                }
            })
        });
        let url = e.prop("url").and_then(|u| {
            self.checked(u, "`url`", |s| {
                if ["http://", "https://", "file://"]
                    .iter()
                    .any(|p| s.starts_with(p))
                {
                    Ok(())
                } else {
                    Err(Problem::new(
                        "a repository URL starts with http://, https:// or file://",
                        "not a URL",
                    ))
                }
            })
        });
        let suite = self.required(node, &e, "suite", "a suite").and_then(|s| {
            self.checked(s, "`suite`", |v| {
                if v.is_empty()
                    || v.contains(char::is_whitespace)
                    || v.split('/').any(|c| c == "..")
                {
                    Err(Problem::new(
                        "a suite is a name such as bookworm",
                        "not a suite",
                    ))
                } else {
                    Ok(())
                }
            })
        });
        let keyring = self
            .required(node, &e, "keyring", "a keyring")
            .and_then(|k| self.checked(k, "`keyring`", crate::values::source_path));
        let list = |p: &mut Self, key: &str, default: &str| -> Vec<String> {
            e.prop(key)
                .and_then(|v| p.string(v, key))
                .map(|v| words(&v.value))
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| vec![default.to_owned()])
        };
        let components = list(self, "components", "main");
        let architectures = list(self, "architectures", "amd64");
        let check_valid_until = e
            .prop("check-valid-until")
            .and_then(|v| self.boolean(v, "`check-valid-until`"))
            .is_none_or(|b| b.value);
        Some(Repository {
            name: name?,
            span: self.node_span(node),
            url,
            suite: suite?,
            components,
            architectures,
            keyring: keyring?,
            check_valid_until,
        })
    }

    /// `packages "NAME" ... [required=#true] [repository=NAME] [layers=N]`.
    pub(super) fn packages(&mut self, node: &KdlNode) -> Option<PackagesOp> {
        self.common(node, false);
        let e = self.entries(node, &["required", "repository", "layers"]);
        let required = e
            .prop("required")
            .and_then(|r| self.boolean(r, "`required`"))
            .is_some_and(|r| r.value);
        if e.args.is_empty() && !required {
            self.push(
                SpecDiagnostic::new(
                    "`packages` needs at least one package",
                    node.name().span(),
                    "no package",
                )
                .with_help(super::usage_help("packages")),
            );
            return None;
        }
        let mut packages = Vec::new();
        let mut ok = true;
        for a in &e.args {
            match self.checked(a, "a package", package_request) {
                Some(p) => packages.push(p),
                None => ok = false,
            }
        }
        let repository = e
            .prop("repository")
            .and_then(|r| self.string(r, "`repository`"));
        let mut layers = None;
        if let Some(p) = e.prop("layers") {
            let span = self.value_span(p);
            match p.value() {
                KdlValue::Integer(n) => match u32::try_from(*n) {
                    Ok(n) if (1..=MAX_LAYERS).contains(&n) => layers = Some(Spanned::new(n, span)),
                    _ => {
                        self.problem(
                            span,
                            Problem::new(
                                format!("`layers` must be 1 to {MAX_LAYERS}"),
                                "not a layering budget",
                            )
                            .help("the most layers this package set is split into; leave it out for one"),
                        );
                        ok = false;
                    }
                },
                _ => {
                    self.wrong_type(p, "`layers`", "an integer");
                    ok = false;
                }
            }
        }
        ok.then_some(PackagesOp {
            packages,
            required,
            repository,
            layers,
        })
    }

    /// Every `repository` name is unique, and every `packages` names one
    /// that exists (or the spec has exactly one).
    pub(super) fn repository_names(&mut self, spec: &crate::Spec) {
        let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
        for r in &spec.repositories {
            if let Some(line) = seen.get(r.name.value.as_str()) {
                self.push(
                    SpecDiagnostic::new(
                        format!("duplicate repository `{}`", r.name.value),
                        r.name.span,
                        "second repository of this name",
                    )
                    .with_help(format!(
                        "repository `{}` is already defined on line {line}",
                        r.name.value
                    )),
                );
            } else {
                let line = self.line(r.name.span);
                seen.insert(&r.name.value, line);
            }
        }
        let names: Vec<String> = spec
            .repositories
            .iter()
            .map(|r| r.name.value.clone())
            .collect();
        for image in &spec.images {
            for layer in &image.layers {
                for op in &layer.ops {
                    let crate::Op::Packages(p) = &op.value else {
                        continue;
                    };
                    match &p.repository {
                        Some(r) if !names.contains(&r.value) => self.push(
                            SpecDiagnostic::new(
                                format!("no repository `{}`", r.value),
                                r.span,
                                "unknown repository",
                            )
                            .with_help(if names.is_empty() {
                                format!("define it: `{}`", super::usage("repository"))
                            } else {
                                format!("the spec's repositories: {}", names.join(", "))
                            }),
                        ),
                        None if names.len() != 1 => self.push(
                            SpecDiagnostic::new(
                                if names.is_empty() {
                                    "`packages` needs a repository, and the spec has none"
                                        .to_owned()
                                } else {
                                    "`packages` must name its repository: the spec has several"
                                        .to_owned()
                                },
                                op.span,
                                "which repository?",
                            )
                            .with_help(if names.is_empty() {
                                format!("add one: `{}`", super::usage("repository"))
                            } else {
                                format!("add `repository=NAME`, one of {}", names.join(", "))
                            }),
                        ),
                        _ => {}
                    }
                }
            }
        }
    }
}
