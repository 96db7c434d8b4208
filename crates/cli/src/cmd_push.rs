//! `strata push`: one image (or index) of an OCI layout to a registry.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

/// Arguments of `strata push`.
#[derive(Args)]
pub struct PushArgs {
    /// The image to push: LAYOUT (a layout with one image) or LAYOUT:NAME
    /// (an image, or an index: then its images go first, by digest). The
    /// image's artifacts (SBOMs) go as its OCI 1.1 referrers.
    pub source: String,
    /// Where to: docker://HOST/REPO:TAG, docker://HOST/REPO (tag = the
    /// image's name) or docker://HOST/REPO@sha256:... (must be the image's
    /// manifest digest).
    pub dest: String,
    /// Speak plain HTTP to the registry (a loopback test registry), not HTTPS.
    #[arg(long)]
    pub insecure: bool,
    /// Print one JSON object on stdout (reference, manifest digest, blobs
    /// uploaded or skipped) instead of the summary.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: PushArgs, out: &mut String) -> Result<ExitCode, strata::Error> {
    let dest = strata::push::parse_registry_ref(&args.dest)?;
    let (dir, tag) = strata::inspect::parse_target(&args.source);
    let registry = strata::Registry::new(&strata::RegistryOptions {
        insecure: args.insecure,
    })?;
    let report = strata::push::push(&registry, Path::new(&dir), tag.as_deref(), &dest)?;
    if args.json {
        let json = serde_json::to_string(&report).map_err(|source| strata::Error::Json {
            what: "cannot write JSON".to_owned(),
            source,
        })?;
        out.push_str(&json);
        out.push('\n');
    } else {
        out.push_str(&report.summary());
    }
    Ok(ExitCode::SUCCESS)
}
