//! Build arguments: the values of a spec's `arg` declarations (defaults, or
//! `--arg NAME=VALUE`), substituted where a Dockerfile substitutes `ARG`s.
//!
//! `$NAME` and `${NAME}` are replaced where NAME is a declared argument; any
//! other `$` is left as written (so `env PATH="$PATH:/opt/bin"` still refers
//! to the environment, which the planner expands). Substituted: `from`, the
//! source and destination of `add`/`copy`, the paths of `mkdir`, `symlink`,
//! `delete` and `file`, a `symlink`'s target, `run` commands, and the
//! values of `env`, `label`, `workdir`, `user`, `expose`, `volume` and
//! `stop-signal`. Not substituted: `cmd` and `entrypoint` (Docker passes
//! them as written too), a `file`'s content, annotations.
//!
//! Substitution happens on the parsed spec, so every value keeps the span
//! of its text in the spec and errors still point at the line; and before
//! planning, so the substituted values are part of every cache key that
//! depends on them, and only of those.

use std::collections::BTreeMap;

use crate::{Op, ReadError, Spanned, Spec};

/// The spec with its arguments substituted, and the value of every declared
/// argument (given ones over defaults). An argument in `given` that the spec
/// does not declare is an error naming the closest declared one.
pub fn apply_args(
    spec: &Spec,
    given: &BTreeMap<String, String>,
) -> Result<(Spec, BTreeMap<String, String>), ReadError> {
    let declared: Vec<&str> = spec.args.iter().map(|a| a.name.value.as_str()).collect();
    for name in given.keys() {
        if !declared.contains(&name.as_str()) {
            return Err(ReadError::UnknownArg {
                name: name.clone(),
                spec: spec.name.clone(),
                suggestion: crate::did_you_mean(name, &declared).map(str::to_owned),
                declared: declared.iter().map(|s| (*s).to_owned()).collect(),
            });
        }
    }
    let values: BTreeMap<String, String> = spec
        .args
        .iter()
        .map(|a| {
            let v = given
                .get(&a.name.value)
                .cloned()
                .or_else(|| a.default.as_ref().map(|d| d.value.clone()))
                .unwrap_or_default();
            (a.name.value.clone(), v)
        })
        .collect();
    let mut out = spec.clone();
    let sub = |s: &mut Spanned<String>| s.value = substitute(&s.value, &values);
    // Paths in the image are checked again with their arguments substituted.
    let mut problems = Vec::new();
    let mut sub_path = |s: &mut Spanned<String>| {
        sub(s);
        if let Err(p) = crate::values::image_path(&s.value) {
            problems.push(crate::SpecDiagnostic {
                message: format!("{} (with the build arguments: {:?})", p.message, s.value),
                span: s.span,
                label: p.label,
                help: p.help,
            });
        }
    };
    for image in &mut out.images {
        if let Some(f) = &mut image.from {
            sub(f);
        }
        for layer in &mut image.layers {
            for op in &mut layer.ops {
                match &mut op.value {
                    Op::Add { src, to, .. } | Op::Copy { src, to, .. } => {
                        sub(src);
                        sub_path(to);
                    }
                    Op::File { path, .. } | Op::Mkdir { path, .. } | Op::Delete { path } => {
                        sub_path(path)
                    }
                    Op::Symlink { path, target, .. } => {
                        sub_path(path);
                        sub(target);
                    }
                    Op::Run { command, .. } => sub(command),
                    Op::FromDir { .. } => {}
                    // A package set may name versions by argument too.
                    Op::Packages(p) => p.packages.iter_mut().for_each(sub),
                }
            }
        }
        let c = &mut image.config;
        for (_, v) in &mut c.env {
            sub(v);
        }
        for v in c.labels.values_mut() {
            sub(v);
        }
        for v in &mut c.expose {
            sub(v);
        }
        for v in c.volumes.iter_mut().chain(c.workdir.as_mut()) {
            sub_path(v);
        }
        for v in [&mut c.user, &mut c.stop_signal].into_iter().flatten() {
            sub(v);
        }
    }
    if !problems.is_empty() {
        return Err(ReadError::Invalid(Box::new(crate::Diagnostics::new(
            &spec.name,
            &spec.source,
            problems,
        ))));
    }
    Ok((out, values))
}

/// `text` with `$NAME` and `${NAME}` replaced for every NAME of `values`.
pub fn substitute(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        match values.get(name) {
            Some(v) if len > 0 => {
                out.push_str(v);
                rest = &after[len..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_declared_names_are_substituted() {
        let v: BTreeMap<String, String> = [("V".to_owned(), "1.2".to_owned())].into();
        assert_eq!(substitute("/opt/app-$V/", &v), "/opt/app-1.2/");
        assert_eq!(substitute("${V}x $Vx", &v), "1.2x $Vx");
        assert_eq!(substitute("$PATH:${HOME}:$", &v), "$PATH:${HOME}:$");
        assert_eq!(substitute("${V", &v), "${V");
    }

    #[test]
    fn an_unknown_argument_names_the_closest_declared_one() {
        let spec = crate::parse(
            "s.kdl",
            "arg VERSION=\"1\"\nimage a {\n    layer l { file \"/v-$VERSION\" \"x\" }\n}\n",
        )
        .unwrap();
        let given = [("VERSOIN".to_owned(), "2".to_owned())].into();
        let err = apply_args(&spec, &given).unwrap_err().to_string();
        assert!(err.contains("did you mean `VERSION`"), "{err}");
        let given = [("VERSION".to_owned(), "2".to_owned())].into();
        let (spec, values) = apply_args(&spec, &given).unwrap();
        assert_eq!(values["VERSION"], "2");
        match &spec.images[0].layers[0].ops[0].value {
            Op::File { path, .. } => assert_eq!(path.value, "/v-2"),
            op => panic!("{op:?}"),
        }
    }
}
