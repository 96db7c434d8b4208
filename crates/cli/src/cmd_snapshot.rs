//! `strata snapshot SPEC [--accept]`: write or check the snapshot of every
//! image of a spec, next to it, for review like code.

use std::path::Path;

use strata::testing::{self, Check};

/// Check (or with `accept`, write) every image's snapshot; returns whether all
/// were unchanged (or written). The report goes to `out`, diffs included.
pub fn run(
    spec: &Path,
    accept: bool,
    json: bool,
    cache_dir: Option<std::path::PathBuf>,
    out: &mut String,
) -> Result<bool, strata::Error> {
    let snap = testing::snapshot_with(spec, cache_dir)?;
    let mut ok = true;
    let mut states = Vec::new();
    for image in &snap.images {
        let path = testing::snapshot_path(spec, &image.name);
        let state = testing::check(&path, image)?;
        if json {
            let (word, diff) = match (&state, accept) {
                (Check::Same, _) => ("unchanged", None),
                (Check::Missing, true) => ("written", None),
                (Check::Changed(d), true) => ("updated", Some(d.clone())),
                (Check::Missing, false) => ("missing", None),
                (Check::Changed(d), false) => ("changed", Some(d.clone())),
            };
            if accept && state != Check::Same {
                testing::accept(&path, image)?;
            }
            ok &= accept || state == Check::Same;
            states.push(SnapshotState {
                image: image.name.clone(),
                path: path.clone(),
                state: word,
                diff,
            });
            continue;
        }
        match (&state, accept) {
            (Check::Same, _) => out.push_str(&format!("unchanged {}\n", path.display())),
            (Check::Missing | Check::Changed(_), true) => {
                testing::accept(&path, image)?;
                let verb = if state == Check::Missing {
                    "wrote"
                } else {
                    "updated"
                };
                out.push_str(&format!("{verb} {}\n", path.display()));
            }
            (Check::Missing, false) => {
                ok = false;
                out.push_str(&format!(
                    "missing {} (run `strata snapshot {} --accept` to write it)\n",
                    path.display(),
                    spec.display()
                ));
            }
            (Check::Changed(diff), false) => {
                ok = false;
                out.push_str(&format!("changed {}:\n{diff}", path.display()));
            }
        }
    }
    if json {
        #[derive(serde::Serialize)]
        struct Snapshots {
            ok: bool,
            snapshots: Vec<SnapshotState>,
        }
        out.push_str(&crate::json_text(&Snapshots {
            ok,
            snapshots: states,
        }));
        return Ok(ok);
    }
    if !ok {
        out.push_str(&format!(
            "snapshots differ: review the changes above, then run `strata snapshot {} --accept`\n",
            spec.display()
        ));
    }
    Ok(ok)
}

/// One image's snapshot in `--json`.
#[derive(serde::Serialize)]
struct SnapshotState {
    image: String,
    path: std::path::PathBuf,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<String>,
}
