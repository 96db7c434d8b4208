//! The image settings Docker has and a Dockerfile's `HEALTHCHECK` and `SHELL`
//! write: `healthcheck` (Docker's `Test` array and its timing properties) and
//! `shell` (the argv `run` steps are started with).

use super::*;
use crate::Healthcheck;

/// The properties of `healthcheck` that are durations.
const DURATIONS: &[&str] = &["interval", "timeout", "start-period"];

impl Parser<'_> {
    /// `healthcheck "CMD" ARG... | "CMD-SHELL" COMMAND | "NONE"` with
    /// `interval=`, `timeout=`, `start-period=` (Go durations, as Docker
    /// writes them) and `retries=`.
    pub(super) fn healthcheck(&mut self, st: &mut ImageState, node: &KdlNode) {
        let keep = self.first(&mut st.seen, "healthcheck", node, "an image");
        self.common(node, false);
        let e = self.entries(node, &["interval", "timeout", "start-period", "retries"]);
        self.arity(node, &e.args, &["test"], true, None);
        let mut test = Vec::new();
        let mut ok = !e.args.is_empty();
        for a in &e.args {
            match self.string(a, "a `healthcheck` argument") {
                Some(s) => test.push(s.value),
                None => ok = false,
            }
        }
        let span = entries_span(&e.args);
        if ok && let Err(p) = values::healthcheck_test(&test) {
            self.problem(span, p);
            ok = false;
        }
        let mut h = Healthcheck {
            test,
            ..Healthcheck::default()
        };
        for key in DURATIONS {
            let Some(p) = e.prop(key) else { continue };
            let Some(s) = self.string(p, &format!("`{key}`")) else {
                ok = false;
                continue;
            };
            match values::duration(&s.value) {
                Ok(ns) => match *key {
                    "interval" => h.interval = Some(ns),
                    "timeout" => h.timeout = Some(ns),
                    _ => h.start_period = Some(ns),
                },
                Err(problem) => {
                    self.problem(s.span, problem);
                    ok = false;
                }
            }
        }
        if let Some(p) = e.prop("retries") {
            let span = self.value_span(p);
            match p.value() {
                KdlValue::Integer(n) => match u32::try_from(*n) {
                    Ok(n) if n > 0 => h.retries = Some(n),
                    _ => {
                        self.problem(
                            span,
                            Problem::new("`retries` must be at least 1", "not a count")
                                .help("leave `retries=` out for Docker's default (3)"),
                        );
                        ok = false;
                    }
                },
                _ => {
                    self.wrong_type(p, "`retries`", "an integer");
                    ok = false;
                }
            }
        }
        if h.test.first().is_some_and(|t| t == "NONE")
            && (h.interval.is_some()
                || h.timeout.is_some()
                || h.start_period.is_some()
                || h.retries.is_some())
        {
            self.problem(
                span,
                Problem::new(
                    "`healthcheck \"NONE\"` takes no timing properties",
                    "no health check",
                )
                .help("\"NONE\" turns the health check off; remove interval=, timeout=, start-period= and retries="),
            );
            ok = false;
        }
        if keep && ok {
            st.config.healthcheck = Some(Spanned::new(h, span));
        }
    }

    /// `shell "/bin/bash" "-c"`: the executable and its arguments, before
    /// the command.
    pub(super) fn shell(&mut self, st: &mut ImageState, node: &KdlNode) {
        let keep = self.first(&mut st.seen, "shell", node, "an image");
        let Some(argv) = self.argv(node) else { return };
        if let Err(p) = values::shell(&argv.value) {
            self.problem(argv.span, p);
            return;
        }
        if keep {
            st.config.shell = Some(argv);
        }
    }
}
