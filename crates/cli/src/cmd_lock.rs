//! `strata lock SPEC`, and the `--locked` / `--update-lock` flags of
//! `strata compose`: write the spec's lock file, or check a compose against it.
//!
//! The logic (the lock format, the comparison and its messages) is in
//! `strata::lock`; this module reads and writes the file at the right moment
//! and prints. `--locked` reads the lock before composing, so a missing or
//! broken lock fails before any work; the layout is still written when the
//! digests differ, so that `strata diff LAYOUT LOCK` can show everything.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use strata::lock::{Lock, check, lock_path};

/// What `--locked` / `--update-lock` asked for.
pub struct LockFlags {
    /// The lock read before composing, when `--locked`.
    pub locked: Option<Lock>,
    pub update: bool,
}

/// Read the lock before composing when `--locked` is given.
pub fn before(spec: &Path, locked: bool, update: bool) -> Result<LockFlags, strata::Error> {
    let locked = if locked {
        Some(Lock::read(&lock_path(spec), spec)?)
    } else {
        None
    };
    Ok(LockFlags { locked, update })
}

/// After a compose: check it against the lock (false, with the differences
/// on stderr, when they differ) or write the lock.
pub fn after(
    spec: &Path,
    report: &strata::ComposeReport,
    source_date_epoch: Option<u64>,
    flags: LockFlags,
) -> Result<bool, strata::Error> {
    if flags.locked.is_none() && !flags.update {
        // Rendering a lock lists every file of every layer: not for nothing.
        return Ok(true);
    }
    let found = Lock::from_report(report, source_date_epoch);
    let path = lock_path(spec);
    if let Some(locked) = &flags.locked
        && let Err(mismatch) = check(locked, &found)
    {
        eprintln!(
            "strata: error: the composed images do not match {}",
            path.display()
        );
        for line in mismatch.to_string().lines() {
            eprintln!("  {line}");
        }
        eprintln!(
            "hint: every difference: strata diff {} {}",
            path.display(),
            report.out.display()
        );
        eprintln!(
            "hint: if the change is intended, update the lock and commit it: strata lock {}",
            spec.display()
        );
        return Ok(false);
    }
    if flags.update {
        write(&path, &found)?;
    }
    Ok(true)
}

/// Write `lock` to `path` unless it already holds exactly that; says which.
fn write(path: &Path, lock: &Lock) -> Result<bool, strata::Error> {
    let text = lock.render();
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    lock.write(path)?;
    Ok(true)
}

/// `strata lock SPEC`: compose, then write the lock next to the spec.
// One parameter per flag of `strata lock`, as clap gives them.
#[allow(clippy::too_many_arguments)]
pub fn run(
    spec: &Path,
    out: Option<PathBuf>,
    jobs: Option<u16>,
    cache_dir: Option<PathBuf>,
    quiet: bool,
    json: bool,
    insecure: bool,
    args: std::collections::BTreeMap<String, String>,
) -> Result<ExitCode, strata::Error> {
    use std::io::IsTerminal;
    let opts = strata::ComposeOptions {
        args,
        out: out.unwrap_or_else(|| crate::default_out(spec)),
        jobs: jobs.map(usize::from),
        cache_dir,
        source_date_epoch: crate::source_date_epoch()?,
        insecure,
        ..Default::default()
    };
    let progress =
        crate::progress::Progress::new(!quiet && !json && std::io::stderr().is_terminal());
    let report = strata::compose(spec, &opts, &|e| progress.event(e));
    progress.finish();
    let report = report?;
    let lock = Lock::from_report(&report, opts.source_date_epoch);
    let path = lock_path(spec);
    // The lock this one replaces, for its package changes.
    let previous = Lock::read(&path, spec).ok();
    let changed = write(&path, &lock)?;
    if json {
        #[derive(serde::Serialize)]
        struct Image<'a> {
            name: &'a str,
            manifest: strata::Digest,
            config: strata::Digest,
        }
        #[derive(serde::Serialize)]
        struct Written<'a> {
            lock: &'a std::path::Path,
            written: bool,
            images: Vec<Image<'a>>,
            layers: usize,
            entries: usize,
        }
        crate::print_stdout(&crate::json_text(&Written {
            lock: &path,
            written: changed,
            images: lock
                .images
                .iter()
                .map(|i| Image {
                    name: &i.name,
                    manifest: i.manifest,
                    config: i.config,
                })
                .collect(),
            layers: lock.layers.len(),
            entries: lock.layers.iter().map(|l| l.listing.len()).sum(),
        }));
    } else if !quiet {
        crate::print_stdout(&format!(
            "{} {} ({} image(s), {} layer(s), {} entries)\n",
            if changed { "wrote" } else { "up to date:" },
            path.display(),
            lock.images.len(),
            lock.layers.len(),
            lock.layers.iter().map(|l| l.listing.len()).sum::<usize>()
        ));
        if let Some(previous) = &previous {
            crate::print_stdout(&package_changes(previous, &lock));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The package changes of each layer from `previous` to `lock`, as text:
/// `packages of IMAGE/LAYER:` and a line per change (empty when none).
fn package_changes(previous: &Lock, lock: &Lock) -> String {
    let mut out = String::new();
    for layer in &lock.layers {
        let old = previous
            .layer(&layer.name)
            .map_or(&[][..], |l| l.packages.as_slice());
        let changes = strata::lock::package_changes(old, &layer.packages);
        if !changes.is_empty() {
            out.push_str(&format!("packages of {}:\n", layer.name));
            for c in changes {
                out.push_str(&format!("  {c}\n"));
            }
        }
    }
    out
}
