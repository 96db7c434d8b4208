//! The `strata` command: compose container images from a KDL spec.
//!
//! This binary only parses arguments, draws progress and prints: every piece
//! of logic lives in the `strata` library, which `cargo xtask` calls too.
//! stdout carries data only (summaries, listings, JSON); progress, warnings
//! and errors go to stderr.
//!
//! Exit codes, one per kind of failure ([`strata::FailureKind`]): 0 success,
//! 1 failure of the machine (I/O, cache, export, a registry), 2 usage error,
//! 3 the spec is invalid (every problem is printed with its location, nothing
//! was built), 4 `compose --locked` found images that differ from the lock,
//! 5 the build failed on what the spec asked for (a `run` command that
//! failed, a tarball refused, a `delete` of a missing path, an input that
//! cannot be copied, a sandbox that cannot start, no `/bin/sh`). `strata
//! diff` and `strata snapshot` exit 1 when they find a difference, like
//! diff(1).

mod cmd_cache;
mod cmd_diff;
mod cmd_docs;
mod cmd_lock;
mod cmd_push;
mod cmd_remote;
mod cmd_snapshot;
mod cmd_union;
mod progress;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  strata compose specs/tomcat.kdl                 # -> target/images/tomcat/ (OCI layout)
  strata compose specs/hello.kdl --docker-archive hello.tar && podman load -i hello.tar
  strata compose specs/hello.kdl --oci-archive hello-oci.tar && skopeo inspect oci-archive:hello-oci.tar:hello
  strata compose specs/tomcat.kdl --json | jq '.images[].manifest'
  strata plan specs/tomcat.kdl --dot | dot -Tsvg > plan.svg
  strata inspect target/images/tomcat:tomcat --files
  strata rootfs target/images/tomcat:tomcat /tmp/tomcat-root
  strata lock specs/tomcat.kdl && strata compose specs/tomcat.kdl --locked
  strata diff target/images/tomcat specs/tomcat.lock
  strata push target/images/tomcat:tomcat docker://registry.example.com/team/tomcat:1.0
  strata compose specs/tomcat.kdl --push docker://registry.example.com/team

Exit codes: 0 success, 1 failure (I/O, cache, registry), 2 usage error,
3 invalid spec (nothing built), 4 the images differ from the lock
(compose --locked), 5 the build failed (a run command, a refused tarball,
a delete of a missing path, the sandbox, no /bin/sh).
The spec language: docs/spec.md.";

/// Compose container images from a declarative KDL spec: a base rootfs plus
/// layers, built in parallel, cached by content, exported as a reproducible
/// OCI image layout.
#[derive(Parser)]
#[command(name = "strata", version, after_help = EXAMPLES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of its largest variant (compose's flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Build every image of a spec into an OCI image layout.
    ///
    /// Layers that only add content build in parallel; layers found in the
    /// cache are reused without recompressing. The same spec and inputs give
    /// byte-identical output on any machine. Set SOURCE_DATE_EPOCH to override
    /// the spec's `epoch` (the time written into every file and `created`).
    Compose {
        /// The spec file (KDL); input paths in it are relative to it.
        spec: PathBuf,
        /// The OCI image layout directory to write; replaced as a whole on
        /// success, or left untouched (same files, inodes and mtimes) when it
        /// already holds exactly the layout this compose would write.
        /// Default: target/images/<spec name>.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Also write a docker-archive tarball (for `docker load` / `podman
        /// load`), every image tagged NAME:TAG.
        #[arg(long, value_name = "FILE")]
        docker_archive: Option<PathBuf>,
        /// Also write the layout as an OCI archive: one tar of the layout,
        /// reproducible like the layout (`skopeo copy oci-archive:FILE:TAG ...`).
        #[arg(long, value_name = "FILE")]
        oci_archive: Option<PathBuf>,
        /// Also store an SBOM of each image in the layout: an SPDX 2.3 JSON
        /// document (every layer, every regular file with its sha256, every
        /// input of the spec with its digest), as an OCI 1.1 artifact whose
        /// subject is the image manifest. Reproducible; the images'
        /// digests do not change.
        #[arg(long)]
        sbom: bool,
        /// Set `org.opencontainers.image.source` on every image (over the
        /// spec's `annotation`), e.g. `--source https://github.com/me/app`.
        /// Like any annotation it is part of the manifest digest.
        #[arg(long, value_name = "URL", value_parser = clap::builder::NonEmptyStringValueParser::new())]
        source: Option<String>,
        /// Set `org.opencontainers.image.revision` on every image (over the
        /// spec's), e.g. `--revision "$(git rev-parse HEAD)"`.
        #[arg(long, value_name = "REV", value_parser = clap::builder::NonEmptyStringValueParser::new())]
        revision: Option<String>,
        /// Layers built at once (default: the number of cores). Never changes the output.
        #[arg(long, short, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// The layer cache. Default: $STRATA_CACHE_DIR, else the platform cache dir (~/.cache/strata).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Print one JSON object on stdout (images, digests, layers, cache hits) instead of the summary.
        #[arg(long)]
        json: bool,
        /// No progress display and no summary; errors only.
        #[arg(long, short)]
        quiet: bool,
        /// Check every image and layer digest against the spec's lock file
        /// (SPEC with the extension .lock) and fail, naming the layer and the
        /// first differing file, when they differ. What a CI job runs.
        #[arg(long, conflicts_with = "update_lock")]
        locked: bool,
        /// Write the spec's lock file after composing.
        #[arg(long)]
        update_lock: bool,
        /// After composing, push every image to a registry as
        /// docker://HOST/REPO/NAME:TAG (NAME the image's name, TAG its `tag`,
        /// default latest). Blobs the registry has are not sent again.
        /// Credentials come from the docker config file (~/.docker/config.json).
        #[arg(long, value_name = "docker://HOST/REPO")]
        push: Option<String>,
        /// Speak plain HTTP to registries (external bases, --push,
        /// --cache-from/--cache-to; a loopback test registry), not HTTPS.
        #[arg(long)]
        insecure: bool,
        /// Before building, fetch layers missing from the local cache from
        /// this registry repository (where another machine's --cache-to put
        /// them). An unreachable registry is a warning: layers build locally.
        #[arg(long, value_name = "docker://HOST/REPO")]
        cache_from: Option<String>,
        /// After composing, push every layer (record and blob) to this
        /// registry repository, one artifact tagged strata-layer-KEY per layer.
        #[arg(long, value_name = "docker://HOST/REPO")]
        cache_to: Option<String>,
        /// A Remote Execution API server (BuildGrid, Buildbarn, bazel-remote...)
        /// as a layer cache: each layer is asked for before it is built and
        /// written after. grpcs:// takes its credentials from the environment:
        /// STRATA_REMOTE_TOKEN or STRATA_REMOTE_TOKEN_FILE (bearer token),
        /// STRATA_REMOTE_CERT and STRATA_REMOTE_KEY (client certificate),
        /// STRATA_REMOTE_CA, STRATA_REMOTE_INSTANCE. A server that is down is a
        /// warning: layers build locally. See docs/remote-cache.md.
        #[arg(long, value_name = "grpc://HOST:PORT")]
        remote_cache: Option<String>,
        /// A Remote Execution API server whose workers (`strata worker`)
        /// build the layers the caches miss; also the remote cache unless
        /// --remote-cache names another. Credentials as for --remote-cache.
        /// An unreachable server is a warning: layers build locally.
        #[arg(long, value_name = "grpc://HOST:PORT")]
        remote_exec: Option<String>,
        /// Set a build argument the spec declares with `arg NAME="default"`
        /// (repeatable): substituted where the spec writes $NAME or ${NAME}.
        #[arg(long = "arg", value_name = "NAME=VALUE", value_parser = parse_arg)]
        args: Vec<(String, String)>,
        /// The Debian mirror of `repository` nodes without `url=`; the
        /// host's apt sources when not given.
        #[arg(long, value_name = "URL")]
        mirror: Option<String>,
    },
    /// Compose a spec and write its lock file next to it (SPEC with the
    /// extension .lock): every image's manifest and config digest, every
    /// layer's digests and files, and the manifest digest each external base
    /// (`from "docker://..."`) resolved to. Commit it; `compose --locked` checks it.
    Lock {
        spec: PathBuf,
        /// The OCI image layout to write. Default: target/images/<spec name>.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Layers built at once (default: the number of cores).
        #[arg(long, short, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// The layer cache. Default: $STRATA_CACHE_DIR, else ~/.cache/strata.
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// No progress display and no summary; errors only.
        #[arg(long, short)]
        quiet: bool,
        /// Print one JSON object on stdout (the lock file, whether it was
        /// written, every image's digests) instead of the summary.
        #[arg(long)]
        json: bool,
        /// Speak plain HTTP to registries (external bases), not HTTPS.
        #[arg(long)]
        insecure: bool,
        /// Set a build argument (repeatable); the lock records every
        /// argument's value.
        #[arg(long = "arg", value_name = "NAME=VALUE", value_parser = parse_arg)]
        args: Vec<(String, String)>,
    },
    /// Explain why two images differ: digests, config fields, and layer by
    /// layer the files added (+), removed (-) or changed (~). Each side is an
    /// OCI layout (DIR or DIR:TAG) or a lock file (FILE or FILE:TAG). Exit
    /// codes as diff(1): 0 identical, 1 different, 2 trouble.
    Diff {
        /// The old side: LAYOUT, LAYOUT:TAG, LOCKFILE or LOCKFILE:TAG (`-` lines).
        a: String,
        /// The new side, in the same forms (`+` lines).
        b: String,
        /// Print one JSON object (`identical`, and the lines of the text form).
        #[arg(long)]
        json: bool,
    },
    /// Push one image of an OCI layout to a registry (OCI distribution API).
    ///
    /// Blobs the registry has already are skipped, so a push that failed
    /// half-way resumes where it stopped when run again. The manifest is sent
    /// as the layout's exact bytes: the digest in the registry is the local
    /// one. Credentials come from the docker config file ($DOCKER_CONFIG or
    /// ~/.docker/config.json, credential helpers included).
    ///
    /// Example: strata push target/images/hello:hello docker://127.0.0.1:5000/hello:1 --insecure
    Push(cmd_push::PushArgs),
    #[command(flatten)]
    Union(cmd_union::UnionCommand),
    #[command(flatten)]
    Remote(cmd_remote::RemoteCommand),
    /// Show the graph of layer and image jobs a spec plans, without building.
    Plan {
        spec: PathBuf,
        /// Graphviz output: `strata plan SPEC --dot | dot -Tsvg > plan.svg`.
        #[arg(long, conflicts_with = "json")]
        dot: bool,
        /// One JSON object: every layer (key, key parts, inputs, what it
        /// waits for), every image (layers, platform) and index.
        #[arg(long)]
        json: bool,
        /// Speak plain HTTP to registries (external bases), not HTTPS.
        #[arg(long)]
        insecure: bool,
        /// Set a build argument (repeatable).
        #[arg(long = "arg", value_name = "NAME=VALUE", value_parser = parse_arg)]
        args: Vec<(String, String)>,
    },
    /// List the images, layers and config of an OCI layout.
    Inspect {
        /// LAYOUT or LAYOUT:TAG (TAG is the image name in index.json).
        target: String,
        /// Also list every file of every layer: one stable, sorted line per
        /// entry (path, type, mode, uid:gid, size, sha256 or link target,
        /// whiteouts marked), fit to commit and diff.
        #[arg(long)]
        files: bool,
        /// One JSON object: digests, layers (with --files their entries),
        /// the OCI config and annotations of each image, indexes, referrers.
        #[arg(long)]
        json: bool,
    },
    /// Check the snapshot of every image of a spec: its config and every
    /// layer's files, in SPEC_DIR/snapshots/<spec>.<image>.snap. Exits 1 with
    /// a diff when a snapshot changed or is missing; --accept writes them.
    Snapshot {
        spec: PathBuf,
        /// Write the new snapshots instead of failing on a change.
        #[arg(long)]
        accept: bool,
        /// One JSON object: each snapshot file and its state (unchanged,
        /// changed with its diff, missing, written, updated).
        #[arg(long)]
        json: bool,
        /// The layer cache. Default: $STRATA_CACHE_DIR, else ~/.cache/strata.
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Look after the layer cache: list, verify, evict, locate.
    Cache {
        #[command(subcommand)]
        command: cmd_cache::CacheCommand,
        /// The cache directory. Default: $STRATA_CACHE_DIR, else ~/.cache/strata.
        #[arg(long, value_name = "DIR", global = true)]
        cache_dir: Option<PathBuf>,
    },
    /// Translate a Dockerfile to a spec: each stage an image, each RUN, COPY,
    /// ADD and WORKDIR a layer, the rest image settings (docs/spec.md,
    /// "From a Dockerfile"). Every line that cannot be translated is
    /// reported with its line and column (exit 3), and nothing is written.
    ///
    /// Example: strata import Dockerfile -o app.kdl && strata compose app.kdl
    Import {
        /// The Dockerfile; its directory is the build context.
        dockerfile: PathBuf,
        /// Write the spec here (source paths are made relative to it)
        /// instead of printing it.
        #[arg(long, short, value_name = "SPEC")]
        output: Option<PathBuf>,
    },
    /// Print a shell completion script for strata.
    #[command(after_help = "Examples:\n  \
        strata completions bash > ~/.local/share/bash-completion/completions/strata\n  \
        strata completions zsh > ~/.zfunc/_strata\n  \
        strata completions fish > ~/.config/fish/completions/strata.fish")]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page of strata (roff), or with --out write one page per
    /// subcommand too: `strata man | man -l -`, `strata man --out share/man/man1`.
    Man {
        /// Write strata.1 and strata-SUBCOMMAND.1 into this directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// Data on stdout, or the error.
fn print_result(s: Result<String, strata::Error>) -> Result<ExitCode, strata::Error> {
    print_stdout(&s?);
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    // A `run` step's sandbox is this binary started again: see
    // `strata_union::sandbox`.
    strata::union::sandbox::dispatch();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => report_error(&e),
    }
}

fn run(cli: Cli) -> Result<ExitCode, strata::Error> {
    match cli.command {
        Command::Compose {
            spec,
            out,
            docker_archive,
            oci_archive,
            sbom,
            source,
            revision,
            jobs,
            cache_dir,
            json,
            quiet,
            locked,
            update_lock,
            push,
            insecure,
            cache_from,
            cache_to,
            remote_cache,
            remote_exec,
            args,
            mirror,
        } => {
            let lock_flags = cmd_lock::before(&spec, locked, update_lock)?;
            // A bad destination fails before the build, not after it.
            let push = push
                .map(|p| strata::push::parse_registry_ref(&p))
                .transpose()?;
            let out = out.unwrap_or_else(|| default_out(&spec));
            let opts = strata::ComposeOptions {
                out,
                docker_archive,
                oci_archive,
                sbom,
                source,
                revision,
                jobs: jobs.map(usize::from),
                cache_dir,
                source_date_epoch: source_date_epoch()?,
                // Only a lock reads the listings.
                lazy_listings: !locked && !update_lock,
                insecure,
                cache_from,
                cache_to,
                remote_cache: remote_cache
                    .map(|url| strata::reapi::Options::from_env(&url, |k| std::env::var(k).ok()))
                    .transpose()?,
                remote_exec: remote_exec
                    .map(|url| strata::reapi::Options::from_env(&url, |k| std::env::var(k).ok()))
                    .transpose()?,
                args: args.into_iter().collect(),
                // A locked compose uses the base digests of the lock, not
                // whatever the tags name today.
                base_pins: lock_flags
                    .locked
                    .as_ref()
                    .map(|l| l.bases.iter().cloned().collect())
                    .unwrap_or_default(),
                // A locked compose installs the packages of the lock.
                packages: strata::packages::PackageOptions {
                    mirror,
                    locked: lock_flags
                        .locked
                        .as_ref()
                        .map(|l| l.packages())
                        .unwrap_or_default(),
                },
            };
            let show_progress = !json && !quiet && std::io::stderr().is_terminal();
            let progress = progress::Progress::new(show_progress);
            let report = strata::compose(&spec, &opts, &|e| progress.event(e));
            progress.finish();
            let report = report?;
            if !json && !quiet {
                print_stdout(&report.summary());
            }
            let locked_ok = cmd_lock::after(&spec, &report, opts.source_date_epoch, lock_flags)?;
            let mut pushed = Vec::new();
            if let Some(base) = push.as_ref().filter(|_| locked_ok) {
                let registry = strata::Registry::new(&strata::RegistryOptions { insecure })?;
                pushed = strata::push::push_composed(&registry, &report, base)?;
                if !json && !quiet {
                    for p in &pushed {
                        print_stdout(&p.summary());
                    }
                }
            }
            if json {
                // One object: the compose report, and with --push what went where.
                let mut v: serde_json::Value =
                    serde_json::from_str(&report.to_json()).unwrap_or_default();
                if push.is_some() {
                    v["pushed"] = serde_json::to_value(&pushed).unwrap_or_default();
                }
                print_stdout(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                ));
            }
            if !locked_ok {
                return Ok(ExitCode::from(LOCK_MISMATCH));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Lock {
            spec,
            out,
            jobs,
            cache_dir,
            quiet,
            json,
            insecure,
            args,
        } => cmd_lock::run(
            &spec,
            out,
            jobs,
            cache_dir,
            quiet,
            json,
            insecure,
            args.into_iter().collect(),
        ),
        Command::Diff { a, b, json } => Ok(cmd_diff::run(&a, &b, json)),
        Command::Push(args) => {
            let mut out = String::new();
            let code = cmd_push::run(args, &mut out)?;
            print_stdout(&out);
            Ok(code)
        }
        Command::Union(cmd) => {
            let mut out = String::new();
            let code = cmd_union::run(cmd, source_date_epoch()?, &mut out)?;
            print_stdout(&out);
            Ok(code)
        }
        Command::Remote(cmd) => cmd_remote::run(cmd),
        Command::Plan {
            spec,
            dot,
            json,
            insecure,
            args,
        } => {
            // External bases are resolved (and kept) through the default cache.
            let plan = strata::plan_spec_with_bases(
                &spec,
                strata::PlanOptions {
                    source_date_epoch: source_date_epoch()?,
                    args: args.into_iter().collect(),
                    ..Default::default()
                },
                None,
                &strata::BaseOptions {
                    insecure,
                    ..Default::default()
                },
            )?;
            print_stdout(&if json {
                strata::json::plan_json(&plan)
            } else if dot {
                plan.render_dot()
            } else {
                plan.render_text()
            });
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect {
            target,
            files,
            json,
        } => {
            print_stdout(&if json {
                strata::json::inspect_json(&target, files)?
            } else {
                strata::inspect::inspect(&target, files)?
            });
            Ok(ExitCode::SUCCESS)
        }
        Command::Snapshot {
            spec,
            accept,
            json,
            cache_dir,
        } => {
            let mut out = String::new();
            let ok = cmd_snapshot::run(&spec, accept, json, cache_dir, &mut out)?;
            print_stdout(&out);
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Import { dockerfile, output } => {
            let spec_path = output.clone().unwrap_or_else(|| {
                dockerfile
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join("strata.kdl")
            });
            let spec = strata::import::import(&dockerfile, &spec_path)?;
            match output {
                Some(path) => {
                    // Whole or not at all: a temporary name, then a rename.
                    let tmp = path.with_extension("kdl.tmp");
                    std::fs::write(&tmp, &spec)
                        .and_then(|()| std::fs::rename(&tmp, &path))
                        .map_err(|source| strata::Error::Io { path, source })?;
                }
                None => print_stdout(&spec),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => print_result(Ok(cmd_docs::completions(shell))),
        Command::Man { out: None } => print_result(cmd_docs::man_page()),
        Command::Man { out: Some(dir) } => print_result(
            cmd_docs::write_man_pages(&dir)
                .map(|files| files.iter().map(|f| format!("{f}\n")).collect()),
        ),
        Command::Cache { command, cache_dir } => {
            let mut out = String::new();
            let ok = cmd_cache::run(command, cache_dir, &mut out)?;
            print_stdout(&out);
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// `NAME=VALUE` of `--arg`.
fn parse_arg(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, not {s:?}")),
    }
}

/// `target/images/<spec file stem>`.
fn default_out(spec: &Path) -> PathBuf {
    let stem = spec
        .file_stem()
        .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from("target/images").join(stem)
}

/// `SOURCE_DATE_EPOCH`, if set; an unparsable value is an error, not ignored.
fn source_date_epoch() -> Result<Option<u64>, strata::Error> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v.trim().parse().map(Some).map_err(|_| {
            strata::Error::Usage(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a whole number of seconds"
            ))
        }),
        Err(_) => Ok(None),
    }
}

/// Write to stdout; a closed pipe (`strata inspect ... | head`) is not an error.
/// A `--json` answer: `value` pretty, its keys sorted (through serde_json's
/// ordered map), and a newline.
fn json_text(value: &impl serde::Serialize) -> String {
    let text = serde_json::to_value(value).and_then(|v| serde_json::to_string_pretty(&v));
    format!("{}\n", text.unwrap_or_default())
}

fn print_stdout(s: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(s.as_bytes()).and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("strata: error: cannot write to stdout: {e}");
    }
}

/// The exit code of `compose --locked` when the images differ from the lock:
/// apart from 1, so CI can tell "the image drifted" from "the build broke".
const LOCK_MISMATCH: u8 = 4;

/// The exit code of a build that failed on what the spec asked for (a `run`
/// command, a refused tarball, a `delete` of a missing path, the sandbox):
/// apart from 3 (nothing was built, fix the spec) and 1 (the machine, the
/// cache or a registry is in trouble).
const BUILD_FAILED: u8 = 5;

/// The exit code of an invalid spec.
const INVALID_SPEC: u8 = 3;

fn exit_code(e: &strata::Error) -> ExitCode {
    match e.kind() {
        strata::FailureKind::Usage => ExitCode::from(2),
        strata::FailureKind::Spec => ExitCode::from(INVALID_SPEC),
        strata::FailureKind::Build => ExitCode::from(BUILD_FAILED),
        strata::FailureKind::LockDrift => ExitCode::from(LOCK_MISMATCH),
        strata::FailureKind::Other => ExitCode::FAILURE,
    }
}

fn report_error(e: &strata::Error) -> ExitCode {
    if let strata::Error::Spec(diags) | strata::Error::Build(diags) = e {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let theme = if color {
            miette::GraphicalTheme::unicode()
        } else {
            miette::GraphicalTheme::unicode_nocolor()
        };
        let handler = miette::GraphicalReportHandler::new_themed(theme);
        let mut s = String::new();
        let _ = handler.render_report(&mut s, diags.as_ref());
        eprint!("{s}");
        let n = diags.items.len();
        let what = if matches!(e, strata::Error::Build(_)) {
            "the build failed: "
        } else {
            ""
        };
        eprintln!(
            "strata: {what}{n} error{} in {}",
            if n == 1 { "" } else { "s" },
            diags.src.name()
        );
        return exit_code(e);
    }
    let mut msg = format!("strata: error: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(&format!(": {text}"));
        }
        source = s.source();
    }
    eprintln!("{msg}");
    exit_code(e)
}
