//! `cargo xtask`: project tasks that are not the product. `compose` calls the
//! strata library directly (no second build, no shelling out).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

mod bench;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  compose SPEC [--jobs N] [--json] [--docker-archive FILE]
        compose a spec into target/images/<spec name>/ (OCI layout) and print a summary
  gen-inputs [--check]
        (re)generate the deterministic demo inputs in specs/inputs/; --check compares instead
  bench [--quick] [--only NAME[,NAME...]] [--reps N]
        strata against tar|pigz, gzip, zstd, umoci and buildah on a generated corpus;
        prints a table and writes target/bench/results.json";

fn main() -> ExitCode {
    // `cargo xtask compose` runs `run` steps, whose sandbox is this binary
    // started again: see `strata_union::sandbox`.
    strata::union::sandbox::dispatch();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(strata::Error::Spec(d) | strata::Error::Build(d)) =
                e.downcast_ref::<strata::Error>()
            {
                let handler = miette::GraphicalReportHandler::new();
                let mut s = String::new();
                let _ = handler.render_report(&mut s, d.as_ref());
                eprint!("{s}");
            }
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn run(args: &[String]) -> Result<()> {
    let Some(task) = args.first() else {
        println!("{USAGE}");
        return Ok(());
    };
    match task.as_str() {
        "compose" => compose(&args[1..]),
        "bench" => bench::run(&args[1..], &workspace_root()),
        "gen-inputs" => {
            let dir = workspace_root().join("specs/inputs");
            if args.get(1).map(String::as_str) == Some("--check") {
                xtask::inputs::check(&dir)
            } else {
                xtask::inputs::generate(&dir)?;
                println!("wrote the demo inputs into {}", dir.display());
                Ok(())
            }
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown task {other:?}\n\n{USAGE}"),
    }
}

fn compose(args: &[String]) -> Result<()> {
    let mut spec = None;
    let mut opts = strata::ComposeOptions::default();
    let mut json = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--jobs" | "-j" => {
                let n = it.next().context("--jobs needs a number")?;
                opts.jobs = Some(
                    n.parse()
                        .with_context(|| format!("--jobs {n:?}: not a number"))?,
                );
            }
            "--docker-archive" => {
                opts.docker_archive =
                    Some(it.next().context("--docker-archive needs a file")?.into())
            }
            "--json" => json = true,
            s if s.starts_with('-') => bail!("unknown option {s:?}\n\n{USAGE}"),
            s => spec = Some(PathBuf::from(s)),
        }
    }
    let spec = spec.context(format!("compose needs a spec file\n\n{USAGE}"))?;
    let stem = spec
        .file_stem()
        .context("the spec path has no file name")?
        .to_string_lossy()
        .into_owned();
    opts.out = workspace_root().join("target/images").join(stem);
    opts.source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => Some(
            v.trim()
                .parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH={v:?}"))?,
        ),
        _ => None,
    };
    let report = strata::compose(&spec, &opts, &|e| {
        if let strata::Event::Warning(w) = e {
            eprintln!("warning: {w}");
        }
    })?;
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.summary());
    }
    Ok(())
}
