//! `strata import`: a Dockerfile translated to a spec, for users of Docker
//! arriving with one.
//!
//! The common subset is translated, instruction by instruction, each stage
//! (`FROM ... [AS NAME]`) becoming an `image`: `FROM` (scratch, an earlier
//! stage, or an image of a registry as `from "docker://..."`), `RUN`,
//! `COPY`, `ADD` (each a layer, as Docker makes one), `ENV`, `ARG` (a
//! spec-wide `arg`), `WORKDIR` (the setting, and a layer making the
//! directory, as Docker does), `USER`, `EXPOSE`, `VOLUME`, `LABEL`, `CMD`,
//! `ENTRYPOINT` (the shell form with the `SHELL`, `/bin/sh -c` by default),
//! `HEALTHCHECK`, `SHELL`, `STOPSIGNAL`, `MAINTAINER`.
//! `COPY --from` an earlier stage becomes `copy from=` that image, and `RUN
//! --mount` of a cache or (read-only) of an earlier stage a `cache` or
//! `bind` mount. Whatever cannot be translated faithfully (`COPY --from` an
//! image that is not a stage, other `RUN --mount`s, globs, URLs, `ONBUILD`, a `SHELL` that
//! changes between a stage's `RUN`s, a relative path before any
//! `WORKDIR`...) is a [`Problem`] at its line and column: every one is
//! reported, and no spec is written, rather than a spec that builds
//! something else.
//!
//! The Dockerfile's directory is the build context: sources are written
//! relative to the spec's directory, and an `inputs-root` is added when the
//! context lies above it.

use std::fmt::Write;
use std::path::{Component, Path, PathBuf};

/// The `PATH` BuildKit sets in the config of an image built `FROM scratch`.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The settings an image has once: the last one of a Dockerfile wins.
const SINGLE: &[&str] = &[
    "workdir",
    "user",
    "cmd",
    "entrypoint",
    "stop-signal",
    "author",
    "healthcheck",
    "shell",
];

/// Something of a Dockerfile that cannot be translated, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

/// One instruction: its keyword, its text after the keyword, where it starts.
struct Instruction {
    keyword: String,
    args: String,
    line: usize,
    /// Column of the first character of `args`.
    args_column: usize,
}

/// The Dockerfile `text` (read from `dockerfile`) as a spec written to
/// `spec_path`, or every problem found.
pub fn translate(text: &str, dockerfile: &Path, spec_path: &Path) -> Result<String, Vec<Problem>> {
    let context = dockerfile.parent().unwrap_or(Path::new("."));
    let spec_dir = spec_path.parent().unwrap_or(Path::new("."));
    let prefix = relative_dir(spec_dir, context);
    // A `.dockerignore` beside the Dockerfile: its patterns, in order.
    let ignore = std::fs::read_to_string(context.join(".dockerignore"))
        .map(|text| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut t = Translator {
        prefix,
        ignore,
        context: context.to_path_buf(),
        ..Translator::default()
    };
    for ins in instructions(text) {
        if ins.keyword == "FROM" {
            t.end_stage();
        }
        t.instruction(&ins);
    }
    t.end_stage();
    if t.stages.is_empty() && t.problems.is_empty() {
        t.problems.push(Problem {
            line: 1,
            column: 1,
            message: "the Dockerfile has no FROM".into(),
        });
    }
    if !t.problems.is_empty() {
        return Err(t.problems);
    }
    Ok(t.render(dockerfile))
}

/// The path from `from` to `to`, as a prefix for source paths ("" when the
/// same directory). Both are made absolute first.
fn relative_dir(from: &Path, to: &Path) -> String {
    let abs = |p: &Path| {
        let p = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
    };
    let (from, to) = (abs(from), abs(to));
    let a: Vec<Component<'_>> = from.components().collect();
    let b: Vec<Component<'_>> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut rel = PathBuf::new();
    for _ in common..a.len() {
        rel.push("..");
    }
    for c in &b[common..] {
        rel.push(c.as_os_str());
    }
    let s = rel.to_string_lossy().into_owned();
    if s.is_empty() { s } else { format!("{s}/") }
}

/// The instructions of a Dockerfile: comments and blank lines dropped, lines
/// continued with a trailing `\` joined.
fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current: Option<Instruction> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim_start();
        if current.is_none() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if current.is_some() && trimmed.starts_with('#') {
            // A comment inside a continued instruction is dropped, as Docker does.
            continue;
        }
        let (body, continues) = match raw.trim_end().strip_suffix('\\') {
            Some(b) => (b, true),
            None => (raw.trim_end(), false),
        };
        match &mut current {
            Some(ins) => {
                ins.args.push(' ');
                ins.args.push_str(body.trim());
            }
            None => {
                let indent = raw.len() - trimmed.len();
                let body_trimmed = body.trim_start();
                let (keyword, rest) = body_trimmed
                    .split_once(char::is_whitespace)
                    .unwrap_or((body_trimmed, ""));
                let args = rest.trim_start();
                let args_column = indent + keyword.len() + (rest.len() - args.len()) + 2;
                current = Some(Instruction {
                    keyword: keyword.to_uppercase(),
                    args: args.trim_end().to_owned(),
                    line,
                    args_column: args_column.min(raw.chars().count() + 1),
                });
            }
        }
        if !continues && let Some(ins) = current.take() {
            out.push(ins);
        }
    }
    out.extend(current);
    out
}

#[derive(Default)]
struct Stage {
    name: String,
    from: Option<String>,
    /// Nodes of the image, in order (layers and settings).
    body: Vec<String>,
    workdir: Option<String>,
    /// The `USER` so far.
    user: Option<String>,
    /// The `SHELL` so far (inherited from a stage it builds on).
    shell: Option<Vec<String>>,
    /// The shell the stage's `RUN`s use, once one is seen, and the line of
    /// the first: a spec's image has one `shell` for all its `run` steps.
    run_shell: Option<(Option<Vec<String>>, usize)>,
    /// The line of the last `SHELL`.
    shell_line: usize,
    layers: usize,
    /// Each `RUN`'s layer (in `body`, a placeholder of its name, as a
    /// setting may still remove nodes before it), and the working directory
    /// it runs in. A spec's `run` steps run in the image's (last)
    /// `workdir`, so a `RUN` before a later `WORKDIR` changes directory
    /// itself (`cd DIR && ...`), decided when the stage is written.
    runs: Vec<RunAt>,
}

struct RunAt {
    name: String,
    /// The command and the step's properties (` network=#true`, ` user=...`).
    command: String,
    props: String,
    workdir: Option<String>,
}

#[derive(Default)]
struct Translator {
    prefix: String,
    /// The `.dockerignore` patterns, relative to the context.
    ignore: Vec<String>,
    /// The build context (the Dockerfile's directory).
    context: PathBuf,
    stages: Vec<Stage>,
    /// `ARG`s, in order: name and default.
    args: Vec<(String, Option<String>)>,
    problems: Vec<Problem>,
}

impl Translator {
    fn problem(&mut self, ins: &Instruction, column: usize, message: impl Into<String>) {
        self.problems.push(Problem {
            line: ins.line,
            column,
            message: message.into(),
        });
    }

    fn stage(&mut self, ins: &Instruction) -> Option<&mut Stage> {
        if self.stages.is_empty() {
            self.problem(ins, 1, format!("{} before any FROM", ins.keyword));
            return None;
        }
        self.stages.last_mut()
    }

    fn instruction(&mut self, ins: &Instruction) {
        let col = ins.args_column;
        match ins.keyword.as_str() {
            "FROM" => self.from(ins),
            "ARG" => self.arg(ins),
            "RUN" => self.run(ins),
            "COPY" | "ADD" => self.copy(ins),
            "ENV" => {
                let pairs = match key_values(&ins.args, true) {
                    Ok(p) => p,
                    Err(e) => return self.problem(ins, col, e),
                };
                let text = pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={}", q(v)))
                    .collect::<Vec<_>>()
                    .join(" ");
                self.setting(ins, format!("env {text}"));
            }
            "LABEL" => {
                let pairs = match key_values(&ins.args, false) {
                    Ok(p) => p,
                    Err(e) => return self.problem(ins, col, e),
                };
                let text = pairs
                    .iter()
                    .map(|(k, v)| format!("{}={}", key(k), q(v)))
                    .collect::<Vec<_>>()
                    .join(" ");
                self.setting(ins, format!("label {text}"));
            }
            "WORKDIR" => self.workdir(ins),
            "USER" => {
                if let Some(st) = self.stages.last_mut() {
                    st.user = Some(ins.args.trim().to_owned());
                }
                self.setting(ins, format!("user {}", q(ins.args.trim())));
            }
            "EXPOSE" => {
                let ports: Vec<String> = ins.args.split_whitespace().map(q).collect();
                self.setting(ins, format!("expose {}", ports.join(" ")));
            }
            "VOLUME" => {
                let paths = match json_array(&ins.args) {
                    Some(Ok(v)) => v,
                    Some(Err(e)) => return self.problem(ins, col, e),
                    None => ins.args.split_whitespace().map(str::to_owned).collect(),
                };
                let paths: Vec<String> = paths.iter().map(|p| q(p)).collect();
                self.setting(ins, format!("volume {}", paths.join(" ")));
            }
            "CMD" | "ENTRYPOINT" => {
                let argv = match json_array(&ins.args) {
                    Some(Ok(v)) => v,
                    Some(Err(e)) => return self.problem(ins, col, e),
                    None => {
                        let mut argv = self
                            .stages
                            .last()
                            .and_then(|s| s.shell.clone())
                            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
                        argv.push(ins.args.clone());
                        argv
                    }
                };
                let node = if ins.keyword == "CMD" {
                    "cmd"
                } else {
                    "entrypoint"
                };
                let argv: Vec<String> = argv.iter().map(|a| q(a)).collect();
                self.setting(ins, format!("{node} {}", argv.join(" ")));
            }
            "STOPSIGNAL" => self.setting(ins, format!("stop-signal {}", q(ins.args.trim()))),
            "MAINTAINER" => self.setting(ins, format!("author {}", q(ins.args.trim()))),
            "HEALTHCHECK" => self.healthcheck(ins),
            "SHELL" => self.shell(ins),
            "ONBUILD" => self.problem(
                ins,
                1,
                "ONBUILD is not translated: a spec has no triggers for the images built on it",
            ),
            other => self.problem(ins, 1, format!("unknown instruction {other}")),
        }
    }

    /// `HEALTHCHECK NONE` or `HEALTHCHECK [--interval=D] [--timeout=D]
    /// [--start-period=D] [--retries=N] CMD COMMAND` (exec or shell form).
    fn healthcheck(&mut self, ins: &Instruction) {
        let col = ins.args_column;
        let mut args = ins.args.trim();
        let mut props = String::new();
        while let Some(rest) = args.strip_prefix("--") {
            let (flag, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let (name, value) = flag.split_once('=').unwrap_or((flag, ""));
            match name {
                "interval" | "timeout" | "start-period" => {
                    if let Err(p) = strata_spec::duration(value) {
                        return self.problem(ins, col, format!("HEALTHCHECK --{name}: {p}"));
                    }
                    let _ = write!(props, " {name}={}", q(value));
                }
                "retries" => match value.parse::<u32>() {
                    Ok(n) if n > 0 => {
                        let _ = write!(props, " retries={n}");
                    }
                    _ => {
                        return self.problem(
                            ins,
                            col,
                            format!("HEALTHCHECK --retries={value} is not a count of 1 or more"),
                        );
                    }
                },
                _ => {
                    return self.problem(
                        ins,
                        col,
                        format!("HEALTHCHECK --{name} is not translated"),
                    );
                }
            }
            args = after.trim_start();
        }
        let (kind, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        let test = match kind.to_uppercase().as_str() {
            "NONE" if rest.trim().is_empty() && props.is_empty() => vec!["NONE".to_owned()],
            "CMD" if !rest.trim().is_empty() => match json_array(rest) {
                Some(Ok(argv)) if !argv.is_empty() => {
                    let mut t = vec!["CMD".to_owned()];
                    t.extend(argv);
                    t
                }
                Some(Err(e)) => return self.problem(ins, col, e),
                _ => vec!["CMD-SHELL".to_owned(), rest.trim().to_owned()],
            },
            _ => {
                return self.problem(
                    ins,
                    col,
                    "expected HEALTHCHECK NONE or HEALTHCHECK [OPTIONS] CMD COMMAND",
                );
            }
        };
        let test: Vec<String> = test.iter().map(|t| q(t)).collect();
        self.setting(ins, format!("healthcheck {}{props}", test.join(" ")));
    }

    /// `SHELL ["executable", "parameters"]`.
    fn shell(&mut self, ins: &Instruction) {
        let argv = match json_array(&ins.args) {
            Some(Ok(v)) if !v.is_empty() => v,
            _ => {
                return self.problem(
                    ins,
                    ins.args_column,
                    "SHELL takes the JSON form: SHELL [\"executable\", \"parameters\"]",
                );
            }
        };
        if let Err(p) = strata_spec::check_shell(&argv) {
            return self.problem(ins, ins.args_column, p);
        }
        let Some(st) = self.stage(ins) else { return };
        st.shell = Some(argv.clone());
        st.shell_line = ins.line;
        let argv: Vec<String> = argv.iter().map(|a| q(a)).collect();
        self.setting(ins, format!("shell {}", argv.join(" ")));
    }

    /// The end of a stage: its `RUN`s ran with the shell its image ends
    /// with, or the difference is reported at the last `SHELL`.
    fn end_stage(&mut self) {
        let Some(st) = self.stages.last() else { return };
        if let Some((first, line)) = &st.run_shell
            && *first != st.shell
        {
            let msg = format!(
                "SHELL after the RUN on line {line} is not translated: a spec's image runs every `run` with its one `shell`"
            );
            let at = st.shell_line.max(1);
            self.problems.push(Problem {
                line: at,
                column: 1,
                message: msg,
            });
        }
    }

    /// An image setting of the current stage. A later `WORKDIR`, `USER`,
    /// `CMD`... replaces the earlier one, as in Docker (a spec has one).
    fn setting(&mut self, ins: &Instruction, node: String) {
        if let Some(st) = self.stage(ins) {
            let kind = node.split(' ').next().unwrap_or("").to_owned();
            if SINGLE.contains(&kind.as_str()) {
                st.body.retain(|n| !n.starts_with(&format!("{kind} ")));
            }
            st.body.push(node);
        }
    }

    /// A layer of the current stage, named after the instruction.
    fn layer(&mut self, ins: &Instruction, ops: Vec<String>) {
        if let Some(st) = self.stage(ins) {
            st.layers += 1;
            let name = format!("{}-{}", ins.keyword.to_lowercase(), st.layers);
            let mut s = format!("layer {name} {{\n");
            for op in ops {
                let _ = writeln!(s, "        {op}");
            }
            s.push_str("    }");
            st.body.push(s);
        }
    }

    fn from(&mut self, ins: &Instruction) {
        let words: Vec<&str> = ins.args.split_whitespace().collect();
        let (flags, words): (Vec<&str>, Vec<&str>) =
            words.iter().partition(|w| w.starts_with("--"));
        if let Some(f) = flags.first() {
            return self.problem(
                ins,
                ins.args_column,
                format!(
                    "FROM {f} is not translated: a spec's image has one `platform`, set inside it"
                ),
            );
        }
        let (image, name) = match words.as_slice() {
            [image] => (*image, None),
            [image, as_, name] if as_.eq_ignore_ascii_case("as") => (*image, Some(*name)),
            _ => {
                return self.problem(ins, ins.args_column, "expected FROM IMAGE [AS NAME]");
            }
        };
        let name = name
            .map(str::to_owned)
            .unwrap_or_else(|| format!("stage-{}", self.stages.len()));
        let from = if image.eq_ignore_ascii_case("scratch") {
            None
        } else if self.stages.iter().any(|s| s.name == image) {
            Some(image.to_owned())
        } else {
            Some(format!("docker://{}", docker_reference(image)))
        };
        let base = from
            .as_ref()
            .and_then(|f| self.stages.iter().find(|s| &s.name == f));
        let workdir = base.and_then(|s| s.workdir.clone());
        let user = base.and_then(|s| s.user.clone());
        let shell = base.and_then(|s| s.shell.clone());
        // BuildKit gives an image without a base the default PATH.
        let body = if from.is_none() {
            vec![format!("env PATH={}", q(DEFAULT_PATH))]
        } else {
            Vec::new()
        };
        self.stages.push(Stage {
            name,
            from,
            workdir,
            user,
            shell,
            body,
            ..Stage::default()
        });
    }

    fn arg(&mut self, ins: &Instruction) {
        for word in ins.args.split_whitespace() {
            let (name, default) = match word.split_once('=') {
                Some((n, d)) => (n, Some(unquote(d))),
                None => (word, None),
            };
            match self.args.iter().find(|(n, _)| n == name) {
                Some((_, d)) if default.is_some() && *d != default => {
                    let msg = format!(
                        "ARG {name} is declared again with another default: a spec's arguments apply to every image"
                    );
                    self.problem(ins, ins.args_column, msg);
                }
                Some(_) => {}
                None => self.args.push((name.to_owned(), default)),
            }
        }
    }

    fn run(&mut self, ins: &Instruction) {
        let mut args = ins.args.as_str();
        let mut network = false;
        let mut binds = Vec::new();
        while let Some(rest) = args.strip_prefix("--") {
            let (flag, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let bind = flag.strip_prefix("mount=").and_then(|o| self.run_mount(o));
            match flag {
                _ if bind.is_some() => binds.extend(bind),
                "network=host" => network = true,
                "network=none" | "network=default" => {}
                _ => {
                    return self.problem(
                        ins,
                        ins.args_column,
                        format!("RUN --{flag} is not translated: a `run` step takes cache mounts and bind mounts of an earlier stage (read-only), and no security options"),
                    );
                }
            }
            args = after.trim_start();
        }
        let command = match json_array(args) {
            Some(Ok(argv)) => argv
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
            Some(Err(e)) => return self.problem(ins, ins.args_column, e),
            None => args.to_owned(),
        };
        if let Some(st) = self.stages.last_mut() {
            let shell = st.shell.clone();
            match &st.run_shell {
                None => st.run_shell = Some((shell, ins.line)),
                Some((first, line)) if *first != shell => {
                    let msg = format!(
                        "RUN with another shell than the RUN on line {line} is not translated: a spec's image runs every `run` with its one `shell`"
                    );
                    return self.problem(ins, 1, msg);
                }
                Some(_) => {}
            }
        }
        let mut props = if network {
            " network=#true".to_owned()
        } else {
            String::new()
        };
        // The mounts' block goes after every property (`user=` below).
        let block = if binds.is_empty() {
            String::new()
        } else {
            format!(" {{ {}; }}", binds.join("; "))
        };
        let Some(st) = self.stage(ins) else { return };
        // Docker runs a `RUN` as the `USER` so far; a spec's `run` step as
        // root unless it says `user=`.
        if let Some(user) = st
            .user
            .as_deref()
            .filter(|u| !matches!(*u, "" | "root" | "0" | "0:0" | "root:root"))
        {
            let _ = write!(props, " user={}", q(user));
        }
        props.push_str(&block);
        st.layers += 1;
        let name = format!("run-{}", st.layers);
        st.body.push(format!("\0{name}"));
        st.runs.push(RunAt {
            name,
            command,
            props,
            workdir: st.workdir.clone(),
        });
    }

    /// The mount node of a `RUN --mount=OPTIONS` that a spec has:
    /// `type=cache,target=DEST[,id=ID]` (a `cache`), or
    /// `type=bind,from=STAGE[,source=SRC],target=DEST` of an earlier stage
    /// (a `bind`); `None` for any other (a secret, the build context, `rw`,
    /// `sharing=`).
    fn run_mount(&self, options: &str) -> Option<String> {
        let (mut kind, mut from, mut source, mut target, mut id) = (None, None, None, None, None);
        for opt in options.split(',') {
            match opt.split_once('=').unwrap_or((opt, "")) {
                ("type", v) => kind = Some(v),
                ("from", v) => from = Some(v),
                ("source" | "src", v) => source = Some(v),
                ("target" | "dst" | "destination", v) => target = Some(v),
                ("id", v) => id = Some(v),
                _ => return None,
            }
        }
        let target = target?;
        let target = if target.starts_with('/') {
            target.to_owned()
        } else {
            format!("/{target}")
        };
        if kind == Some("cache") && from.is_none() && source.is_none() {
            let id = id.map(|i| format!(" id={}", q(i))).unwrap_or_default();
            return Some(format!("cache {}{id}", q(&target)));
        }
        if kind != Some("bind") || id.is_some() {
            return None;
        }
        let earlier = &self.stages[..self.stages.len().saturating_sub(1)];
        let stage = match from?.parse::<usize>() {
            Ok(n) => earlier.get(n)?,
            Err(_) => earlier.iter().find(|s| Some(s.name.as_str()) == from)?,
        };
        let source = source
            .map(|s| format!(" source={}", q(&format!("/{}", s.trim_start_matches('/')))))
            .unwrap_or_default();
        Some(format!(
            "bind {} from={}{source}",
            q(&target),
            q(&stage.name)
        ))
    }

    fn workdir(&mut self, ins: &Instruction) {
        let Some(st) = self.stage(ins) else { return };
        let dir = ins.args.trim();
        // `$DIR` is taken as absolute: its value is not known here.
        let abs = if dir.starts_with('/') || dir.starts_with('$') {
            dir.to_owned()
        } else {
            let base = st.workdir.clone().unwrap_or_else(|| "/".into());
            format!("{}/{dir}", base.trim_end_matches('/'))
        };
        st.workdir = Some(abs.clone());
        // Docker makes the directory (0755) in a layer, owned by the USER,
        // unless it exists: then it stays as it is (`if-missing`). A user
        // by name is resolved against the image's own /etc/passwd.
        let owner = st
            .user
            .as_deref()
            .filter(|u| !matches!(*u, "" | "root" | "0" | "0:0" | "root:root"))
            .map(|u| numeric_owner(u).unwrap_or_else(|| u.to_owned()));
        let owner = owner
            .map(|o| format!(" owner={}", q(&o)))
            .unwrap_or_default();
        self.layer(
            ins,
            vec![format!("mkdir {} if-missing=#true{owner}", q(&abs))],
        );
        self.setting(ins, format!("workdir {}", q(&abs)));
    }

    fn copy(&mut self, ins: &Instruction) {
        let op = ins.keyword.to_lowercase();
        let mut words = match json_array(&ins.args) {
            Some(Ok(v)) => v,
            Some(Err(e)) => return self.problem(ins, ins.args_column, e),
            None => ins.args.split_whitespace().map(str::to_owned).collect(),
        };
        let mut props = String::new();
        let mut checksum = None;
        let mut from_stage = None;
        while words.first().is_some_and(|w| w.starts_with("--")) {
            let flag = words.remove(0);
            let (name, value) = flag[2..].split_once('=').unwrap_or((&flag[2..], ""));
            match name {
                "chown" => {
                    let _ = write!(props, " owner={}", q(value));
                }
                "chmod" => match u32::from_str_radix(value, 8) {
                    Ok(m) if m <= 0o7777 => {
                        let _ = write!(props, " mode=0o{m:o}");
                    }
                    _ => {
                        return self.problem(
                            ins,
                            ins.args_column,
                            format!("--chmod={value} is not an octal mode"),
                        );
                    }
                },
                // An earlier stage, by name or number; an image of a
                // registry is not a stage of the spec.
                "from" if ins.keyword == "COPY" => {
                    let earlier = &self.stages[..self.stages.len().saturating_sub(1)];
                    let stage = match value.parse::<usize>() {
                        Ok(n) => earlier.get(n),
                        Err(_) => earlier.iter().find(|s| s.name.eq_ignore_ascii_case(value)),
                    };
                    match stage {
                        Some(s) => from_stage = Some(s.name.clone()),
                        None => {
                            return self.problem(
                                ins,
                                ins.args_column,
                                format!("COPY --from={value} is not translated: it names no earlier stage (copying from an image of a registry is not supported; make it a stage: FROM {value} AS NAME)"),
                            );
                        }
                    }
                }
                "link" => {}
                "checksum" if ins.keyword == "ADD" => checksum = Some(value.to_owned()),
                _ => {
                    return self.problem(
                        ins,
                        ins.args_column,
                        format!("{} --{name} is not translated", ins.keyword),
                    );
                }
            }
        }
        if words.len() < 2 {
            return self.problem(
                ins,
                ins.args_column,
                format!("{} needs a source and a destination", ins.keyword),
            );
        }
        let dest = words.pop().unwrap_or_default();
        let workdir = self.stages.last().and_then(|s| s.workdir.clone());
        let mut to = if dest.starts_with('/') {
            dest.clone()
        } else {
            match workdir {
                Some(w) => format!("{}/{dest}", w.trim_end_matches('/')),
                None if dest == "." || dest == "./" => "/".to_owned(),
                None => format!("/{}", dest.trim_start_matches("./")),
            }
        };
        // Several sources go into the destination directory, as Docker says.
        if words.len() > 1 && !to.ends_with('/') {
            to.push('/');
        }
        if to.ends_with("/.") {
            to.pop();
        }
        let mut ops = Vec::new();
        for src in &words {
            if let (true, Some(sum)) = (
                src.starts_with("http://") || src.starts_with("https://"),
                &checksum,
            ) {
                ops.push(format!(
                    "add {} to={}{props} checksum={}",
                    q(src),
                    q(&to),
                    q(sum)
                ));
                continue;
            }
            if src.contains("://") {
                return self.problem(
                    ins,
                    ins.args_column,
                    format!(
                        "{} of a URL ({src}) is not translated without --checksum=sha256:...: strata pins what a URL gives",
                        ins.keyword
                    ),
                );
            }
            if src.contains(['*', '?', '[']) {
                return self.problem(
                    ins,
                    ins.args_column,
                    format!(
                        "{} of a glob ({src}) is not translated: name the files",
                        ins.keyword
                    ),
                );
            }
            if let Some(stage) = &from_stage {
                // A path in the stage, from its root (as Docker reads it).
                let path = format!("/{}", src.trim_start_matches('/'));
                ops.push(format!(
                    "copy {} from={} to={}{props}",
                    q(&path),
                    q(stage),
                    q(&to)
                ));
                continue;
            }
            let clean = src.trim_start_matches("./");
            let clean = if clean.is_empty() || clean == "." {
                "."
            } else {
                clean.trim_end_matches('/')
            };
            let path = format!("{}{clean}", self.prefix);
            let path = path.trim_end_matches("/.").to_owned();
            let exclude = match ignored(&self.ignore, clean, &self.context) {
                Ok(None) => String::new(),
                Ok(Some(patterns)) => format!(" exclude={}", q(&patterns)),
                Err(why) => {
                    return self.problem(
                        ins,
                        ins.args_column,
                        format!("{} {src}: {why}", ins.keyword),
                    );
                }
            };
            ops.push(format!("{op} {} to={}{props}{exclude}", q(&path), q(&to)));
        }
        self.layer(ins, ops);
    }

    fn render(&self, dockerfile: &Path) -> String {
        let mut s = format!(
            "// Translated from {} by `strata import`.\n",
            dockerfile.display()
        );
        if self.prefix.starts_with("..") {
            let root = self.prefix.trim_end_matches('/');
            let _ = writeln!(s, "inputs-root {}", q(root));
        }
        for (name, default) in &self.args {
            match default {
                Some(d) => {
                    let _ = writeln!(s, "arg {name}={}", q(d));
                }
                None => {
                    let _ = writeln!(s, "arg {}", q(name));
                }
            }
        }
        for st in &self.stages {
            let _ = writeln!(s, "\nimage {} {{", key(&st.name));
            if let Some(f) = &st.from {
                let _ = writeln!(s, "    from {}", q(f));
            }
            let mut body = st.body.clone();
            for r in &st.runs {
                let command = if r.workdir == st.workdir {
                    r.command.clone()
                } else {
                    let dir = r.workdir.as_deref().unwrap_or("/");
                    format!("cd {} && {}", shell_quote(dir), r.command)
                };
                let placeholder = format!("\0{}", r.name);
                let Some(node) = body.iter_mut().find(|n| **n == placeholder) else {
                    continue;
                };
                *node = format!(
                    "layer {} {{\n        run {}{}\n    }}",
                    r.name,
                    q(&command),
                    r.props
                );
            }
            for node in &body {
                let _ = writeln!(s, "    {node}");
            }
            s.push_str("}\n");
        }
        s
    }
}

/// The `.dockerignore` patterns `ignore` (relative to the context) as an
/// `exclude=` of a copy of the source `src` (relative to the context, `.`
/// for all of it): `None` when none applies, an error when the source
/// itself is ignored (Docker finds no such file then) or a pattern cannot
/// be rebased onto it exactly.
fn ignored(ignore: &[String], src: &str, context: &Path) -> Result<Option<String>, String> {
    if ignore.is_empty() {
        return Ok(None);
    }
    let all = strata_layer::Excludes::new(ignore).map_err(|e| format!(".dockerignore: {e}"))?;
    if src != "." && all.excluded(src.as_bytes()) {
        return Err("the source is excluded by .dockerignore".to_owned());
    }
    let is_dir = src == "." || context.join(src).is_dir();
    if !is_dir {
        return Ok(None);
    }
    let src_parts: Vec<&str> = if src == "." {
        Vec::new()
    } else {
        src.split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect()
    };
    let mut out = Vec::new();
    for p in ignore {
        let (bang, body) = match p.strip_prefix('!') {
            Some(rest) => ("!", rest.trim()),
            None => ("", p.as_str()),
        };
        let parts: Vec<&str> = body
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if parts.first() == Some(&"**") {
            // Any depth: the same below the source as below the context.
            out.push(format!("{bang}{}", parts.join("/")));
            continue;
        }
        let mut rest = parts.as_slice();
        let mut applies = true;
        for s in &src_parts {
            match rest.split_first() {
                Some((&"**", _)) => {
                    return Err(format!(
                        "the .dockerignore pattern {p:?} cannot be rebased onto this source; copy from the context's root"
                    ));
                }
                Some((c, r)) => {
                    // One component against one name: a glob of one
                    // component matches exactly the names it matches.
                    let one = strata_layer::Excludes::new(&[(*c).to_owned()])
                        .map_err(|e| format!(".dockerignore: {e}"))?;
                    if !one.excluded(s.as_bytes()) {
                        applies = false;
                        break;
                    }
                    rest = r;
                }
                // A pattern naming a parent of the source excluded it
                // (checked above), or re-includes it: nothing to add.
                None => {
                    applies = false;
                    break;
                }
            }
        }
        if applies && !rest.is_empty() {
            out.push(format!("{bang}{}", rest.join("/")));
        }
    }
    if out.iter().all(|p| p.starts_with('!')) {
        return Ok(None);
    }
    Ok(Some(
        out.iter()
            .map(|p| p.replace(' ', "\\ "))
            .collect::<Vec<_>>()
            .join(" "),
    ))
}

/// `UID[:GID]` as an owner (`UID:GID`, the group 0 when not given), when
/// both are numbers.
fn numeric_owner(user: &str) -> Option<String> {
    let (u, g) = user.split_once(':').unwrap_or((user, "0"));
    (u.parse::<u32>().is_ok() && g.parse::<u32>().is_ok()).then(|| format!("{u}:{g}"))
}

/// A Docker image reference as a full registry reference: Docker Hub's
/// names gain `docker.io/` (and `library/` for official images).
fn docker_reference(image: &str) -> String {
    let first = image.split('/').next().unwrap_or("");
    let has_registry =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry {
        image.to_owned()
    } else if image.contains('/') {
        format!("docker.io/{image}")
    } else {
        format!("docker.io/library/{image}")
    }
}

/// `KEY=VALUE ...` (or, with `legacy`, Docker's old `KEY VALUE` form).
fn key_values(args: &str, legacy: bool) -> Result<Vec<(String, String)>, String> {
    let words = shell_words(args)?;
    if legacy && words.first().is_some_and(|w| !w.contains('=')) {
        let (k, v) = args
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("expected KEY=VALUE, not {args:?}"))?;
        return Ok(vec![(k.to_owned(), unquote(v.trim()))]);
    }
    words
        .iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("expected KEY=VALUE, not {w:?}"))
        })
        .collect()
}

/// Words split on blanks, with `"..."` and `'...'` quoting and `\` escapes.
fn shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("unterminated quote in {s:?}"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

fn unquote(s: &str) -> String {
    match shell_words(s) {
        Ok(w) if w.len() == 1 => w.into_iter().next().unwrap_or_default(),
        _ => s.to_owned(),
    }
}

/// The exec form `["a", "b"]`: `None` when `s` is not one (the shell form).
fn json_array(s: &str) -> Option<Result<Vec<String>, String>> {
    let t = s.trim();
    if !t.starts_with('[') {
        return None;
    }
    // Docker falls back to the shell form when the JSON is not valid.
    serde_json::from_str::<Vec<String>>(t).ok().map(Ok)
}

/// A word for `/bin/sh`, quoted when it needs to be.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A KDL string.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A KDL property key or node name: bare when KDL allows it, quoted otherwise.
fn key(s: &str) -> String {
    let bare = !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !matches!(s, "true" | "false" | "null" | "inf" | "nan");
    if bare { s.to_owned() } else { q(s) }
}

/// The problems as `FILE:LINE:COL: message` lines.
pub fn render_problems(dockerfile: &Path, problems: &[Problem]) -> String {
    let mut s = String::new();
    for p in problems {
        let _ = writeln!(
            s,
            "{}:{}:{}: {}",
            dockerfile.display(),
            p.line,
            p.column,
            p.message
        );
    }
    s
}

/// Read the Dockerfile at `dockerfile` and translate it to a spec that will
/// be written at `spec_path` (its directory decides the source paths).
pub fn import(dockerfile: &Path, spec_path: &Path) -> Result<String, crate::Error> {
    let text = std::fs::read_to_string(dockerfile).map_err(|source| crate::Error::Io {
        path: dockerfile.to_path_buf(),
        source,
    })?;
    translate(&text, dockerfile, spec_path).map_err(|problems| crate::Error::Import {
        dockerfile: dockerfile.to_path_buf(),
        problems,
    })
}
