//! `strata rootfs|squash|commit`: the union filesystem of an image, seen
//! (materialised in a directory) and turned back into layers.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use strata::union::{self, WriteOptions};

#[derive(Subcommand)]
pub enum UnionCommand {
    /// Materialise the union view of an image in a directory: every layer
    /// applied in order (whiteouts delete, opaque directories hide what was
    /// below, later entries win; hard links and symlinks kept), nothing ever
    /// written outside DIR whatever the layers hold. Every entry gets the
    /// mtime its layer gives it (as umoci does), so another tool that packs
    /// DIR again sees only what was edited as changed. Owners are set and
    /// device nodes made only when running as root.
    Rootfs {
        /// LAYOUT:TAG (TAG is the image name in index.json).
        target: String,
        /// A new or empty directory.
        dir: PathBuf,
    },
    /// Write an image whose one layer holds the union view of TARGET's
    /// layers, config kept, into the same layout as NEW.
    Squash {
        /// LAYOUT:TAG
        target: String,
        /// The name of the new image in the layout's index.json.
        #[arg(long, value_name = "NEW")]
        tag: String,
        /// Print `{"name": NEW, "manifest": DIGEST}` instead of `NEW DIGEST`.
        #[arg(long)]
        json: bool,
    },
    /// Write TARGET plus one layer holding the difference between its union
    /// view and DIR (added and changed files, whiteouts for what is gone,
    /// opaque directories for replaced ones), as `docker commit` does, into
    /// the same layout as NEW. DIR is typically made by `strata rootfs` and
    /// then changed. Modes (setuid, setgid, sticky included) and xattrs are
    /// compared exactly, so a chmod alone is recorded; owners only when
    /// running as root; otherwise a path keeps the owner the image gives it (0:0 when
    /// new), and device nodes that DIR lacks are kept, since only root can
    /// make them.
    Commit {
        /// LAYOUT:TAG
        target: String,
        dir: PathBuf,
        /// The name of the new image in the layout's index.json.
        #[arg(long, value_name = "NEW")]
        tag: String,
        /// Print `{"name": NEW, "manifest": DIGEST}` instead of `NEW DIGEST`.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one union command; prints data (a manifest digest) on `out`.
pub fn run(
    cmd: UnionCommand,
    epoch: Option<u64>,
    out: &mut String,
) -> Result<ExitCode, strata::Error> {
    let opts = WriteOptions {
        epoch: epoch.unwrap_or(0),
        ..WriteOptions::default()
    };
    match cmd {
        UnionCommand::Rootfs { target, dir } => {
            let (layout, tag) = target_tag(&target)?;
            let report = union::rootfs(&layout, &tag, &dir)?;
            if !report.skipped_devices.is_empty() {
                eprintln!(
                    "strata: warning: {} device node(s) not created (only root can make them): {}",
                    report.skipped_devices.len(),
                    report.skipped_devices.join(", ")
                );
            }
            if report.skipped_xattrs > 0 {
                eprintln!(
                    "strata: warning: {} extended attribute(s) not set (only root can set them)",
                    report.skipped_xattrs
                );
            }
        }
        UnionCommand::Squash {
            target,
            tag: new,
            json,
        } => {
            let (layout, tag) = target_tag(&target)?;
            let image = union::squash(&layout, &tag, &new, opts)?;
            out.push_str(&written(&image.name, &image.manifest.to_string(), json));
        }
        UnionCommand::Commit {
            target,
            dir,
            tag: new,
            json,
        } => {
            let (layout, tag) = target_tag(&target)?;
            let image = union::commit(&layout, &tag, &dir, &new, opts)?;
            out.push_str(&written(&image.name, &image.manifest.to_string(), json));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The line (or JSON object) that names a new image.
fn written(name: &str, manifest: &str, json: bool) -> String {
    if json {
        #[derive(serde::Serialize)]
        struct Written<'a> {
            name: &'a str,
            manifest: &'a str,
        }
        crate::json_text(&Written { name, manifest })
    } else {
        format!("{name} {manifest}\n")
    }
}

/// `LAYOUT:TAG`, the tag required.
fn target_tag(target: &str) -> Result<(PathBuf, String), strata::Error> {
    match strata::inspect::parse_target(target) {
        (layout, Some(tag)) => Ok((layout, tag)),
        (layout, None) => Err(strata::Error::Usage(format!(
            "{target}: name the image as LAYOUT:TAG (the images of {} are listed by `strata inspect {}`)",
            layout.display(),
            layout.display()
        ))),
    }
}
