//! Parsing `arg NAME="default"`: the spec's build arguments (a Dockerfile's
//! `ARG`), declared at the top level with their defaults.
use std::collections::BTreeMap;

use kdl::{KdlNode, KdlValue};

use super::{Parser, entries_span, usage_help};
use crate::{ArgDecl, Spanned, SpecDiagnostic, values};

impl Parser<'_> {
    /// One `arg` node: `NAME="default"` properties, or bare `NAME`
    /// arguments (no default: the argument is empty unless `--arg` sets it).
    pub(super) fn arg(&mut self, node: &KdlNode, args: &mut Vec<ArgDecl>) {
        self.common(node, false);
        if node.entries().is_empty() {
            self.push(
                SpecDiagnostic::new(
                    "`arg` needs at least one argument name",
                    node.name().span(),
                    "no NAME",
                )
                .with_help(usage_help("arg")),
            );
        }
        let mut seen: BTreeMap<String, usize> = args
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.value.clone(), i))
            .collect();
        for e in node.entries() {
            let (name, name_span, default) = match e.name() {
                Some(key) => {
                    let what = format!("the default of `{}`", key.value());
                    let Some(value) = self.string(e, &what) else {
                        continue;
                    };
                    (key.value().to_owned(), key.span(), Some(value))
                }
                None => match e.value() {
                    KdlValue::String(s) => (s.clone(), entries_span(&[e]), None),
                    _ => {
                        self.wrong_type(e, "an argument name", "a string");
                        continue;
                    }
                },
            };
            if let Err(problem) = values::env_key(&name) {
                self.problem(name_span, problem);
                continue;
            }
            let decl = ArgDecl {
                name: Spanned::new(name.clone(), name_span),
                default,
            };
            match seen.get(&name) {
                Some(&i) => {
                    let line = self.line(args[i].name.span);
                    self.push(
                        SpecDiagnostic::new(
                            format!("duplicate `arg {name}`"),
                            name_span,
                            "declared again",
                        )
                        .with_help(format!("`{name}` is already declared on line {line}")),
                    );
                }
                None => {
                    seen.insert(name, args.len());
                    args.push(decl);
                }
            }
        }
    }
}
