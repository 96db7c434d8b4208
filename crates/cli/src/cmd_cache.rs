//! `strata cache ls|verify|gc|path`: look after the layer cache.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::Subcommand;
use strata::Cache;

#[derive(Subcommand)]
pub enum CacheCommand {
    /// List the cached layers: key, blob digest, size, last use (most recent first).
    Ls {
        /// One JSON object on stdout instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Re-hash every blob; drop entries whose blob is missing or corrupt, and
    /// blobs no entry uses. Exits 1 if anything was bad.
    Verify {
        /// One JSON object on stdout: layers checked, what was removed and why, bytes freed.
        #[arg(long)]
        json: bool,
    },
    /// Evict least recently used layers.
    Gc {
        /// Keep the blobs under this total size: `500MiB`, `10GB`, `2G`.
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: Option<u64>,
        /// Evict layers unused for longer than this: `7d`, `12h`, `30min`.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        older_than: Option<Duration>,
        /// One JSON object on stdout: layers checked, what was evicted and why, bytes freed.
        #[arg(long)]
        json: bool,
    },
    /// Print the cache directory.
    Path,
    /// What a Remote Execution API cache (`compose --remote-cache`) holds
    /// for every layer of a spec: absent, incomplete or present; with
    /// --check, each entry fetched and checked as a compose would (ok or
    /// bad). Exits 1 if an entry is incomplete or bad.
    Remote {
        /// The spec whose layers to look for.
        spec: PathBuf,
        /// The server, as for compose (credentials from STRATA_REMOTE_*).
        #[arg(long, value_name = "grpc://HOST:PORT")]
        remote_cache: String,
        /// Fetch and check every entry (its blob too), not only its presence.
        #[arg(long)]
        check: bool,
        /// One JSON object on stdout instead of the table.
        #[arg(long)]
        json: bool,
    },
}

fn parse_size(s: &str) -> Result<u64, String> {
    parse_size::parse_size(s).map_err(|e| format!("{s:?}: {e} (examples: 500MiB, 10GB, 2G)"))
}

/// Run a cache command; returns whether everything was fine (for the exit code).
pub fn run(
    cmd: CacheCommand,
    cache_dir: Option<PathBuf>,
    out: &mut String,
) -> Result<bool, strata::Error> {
    let root = cache_dir.unwrap_or_else(Cache::default_dir);
    match cmd {
        CacheCommand::Path => {
            out.push_str(&format!("{}\n", root.display()));
            return Ok(true);
        }
        CacheCommand::Remote {
            spec,
            remote_cache,
            check,
            json,
        } => return remote(&spec, &remote_cache, check, json, out),
        _ => {}
    }
    let cache = Cache::open(&root)?;
    match cmd {
        CacheCommand::Path | CacheCommand::Remote { .. } => Ok(true),
        CacheCommand::Ls { json } => {
            let entries = cache.entries()?;
            if json {
                #[derive(serde::Serialize)]
                struct Ls<'a> {
                    path: &'a std::path::Path,
                    total_size: u64,
                    layers: &'a [strata::EntryInfo],
                }
                out.push_str(&crate::json_text(&Ls {
                    path: &root,
                    total_size: strata_cache_dir_size(&root),
                    layers: &entries,
                }));
            } else {
                let now = SystemTime::now();
                for e in &entries {
                    let age = now.duration_since(e.last_used).unwrap_or_default();
                    out.push_str(&format!(
                        "{}  {}  {:>10}  used {} ago\n",
                        &e.key[..16.min(e.key.len())],
                        e.blob.to_string().get(..19).unwrap_or_default(),
                        strata::human_size(e.size),
                        humantime::format_duration(Duration::from_secs(age.as_secs()))
                    ));
                }
                out.push_str(&format!(
                    "{} layer(s), {} on disk in {}\n",
                    entries.len(),
                    strata::human_size(strata_cache_dir_size(&root)),
                    root.display()
                ));
            }
            Ok(true)
        }
        CacheCommand::Verify { json: true } => {
            let r = cache.verify()?;
            out.push_str(&maint_json(&r));
            Ok(r.removed.is_empty())
        }
        CacheCommand::Verify { json: false } => {
            let r = cache.verify()?;
            for (what, why) in &r.removed {
                out.push_str(&format!("removed {what}: {why}\n"));
            }
            out.push_str(&format!(
                "checked {} layer(s): {} removed, {} freed\n",
                r.checked,
                r.removed.len(),
                strata::human_size(r.freed)
            ));
            Ok(r.removed.is_empty())
        }
        CacheCommand::Gc {
            max_size,
            older_than,
            json,
        } => {
            if max_size.is_none() && older_than.is_none() {
                return Err(strata::Error::Usage(
                    "cache gc needs --max-size SIZE and/or --older-than DURATION".into(),
                ));
            }
            let r = cache.gc(max_size, older_than)?;
            if json {
                out.push_str(&maint_json(&r));
                return Ok(true);
            }
            for (what, why) in &r.removed {
                out.push_str(&format!("removed {what}: {why}\n"));
            }
            out.push_str(&format!(
                "{} of {} layer(s) evicted, {} freed\n",
                r.removed
                    .iter()
                    .filter(|(w, _)| !w.starts_with("blob "))
                    .count(),
                r.checked,
                strata::human_size(r.freed)
            ));
            Ok(true)
        }
    }
}

/// A verify or gc report as JSON.
fn maint_json(r: &strata::MaintReport) -> String {
    #[derive(serde::Serialize)]
    struct Removed<'a> {
        what: &'a str,
        why: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Maint<'a> {
        checked: usize,
        removed: Vec<Removed<'a>>,
        freed: u64,
    }
    crate::json_text(&Maint {
        checked: r.checked,
        removed: r
            .removed
            .iter()
            .map(|(what, why)| Removed { what, why })
            .collect(),
        freed: r.freed,
    })
}

fn strata_cache_dir_size(root: &std::path::Path) -> u64 {
    strata::cache_dir_size(root)
}

/// `strata cache remote`.
fn remote(
    spec: &std::path::Path,
    url: &str,
    check: bool,
    json: bool,
    out: &mut String,
) -> Result<bool, strata::Error> {
    let opts = strata::reapi::Options::from_env(url, |k| std::env::var(k).ok())?;
    let remote = strata::reapi_cache::RemoteCache::connect(&opts)?;
    // The keys depend on the epoch, as in the compose that wrote them.
    let plan_opts = strata::PlanOptions {
        source_date_epoch: crate::source_date_epoch()?,
        ..Default::default()
    };
    let plan = strata::plan_spec(spec, &plan_opts)?;
    let entries = strata::reapi_cache::survey(&plan, &remote, check)?;
    let fine = entries
        .iter()
        .all(|e| matches!(e.state, "ok" | "present" | "absent"));
    if json {
        #[derive(serde::Serialize)]
        struct Survey<'a> {
            remote_cache: &'a str,
            layers: &'a [strata::reapi_cache::RemoteEntry],
        }
        out.push_str(&crate::json_text(&Survey {
            remote_cache: url,
            layers: &entries,
        }));
        return Ok(fine);
    }
    for e in &entries {
        out.push_str(&format!(
            "{:<28} {}  {}{}\n",
            e.layer,
            &e.key[..16.min(e.key.len())],
            e.state,
            e.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
    }
    Ok(fine)
}
