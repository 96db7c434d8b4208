//! `add "https://..." checksum="sha256:..."`: a file fetched (by the
//! caller, into strata's cache, verified against its checksum) and copied
//! as it is, never unpacked, as Docker's `ADD URL` does: named after the
//! URL's last path component when `to` ends in `/`, mode 0600 unless
//! `mode=` says otherwise (Docker's mode for a fetched file).

use std::collections::BTreeMap;
use std::path::PathBuf;

use strata_layer::{HostInput, JobOp, Owner};
use strata_spec::{Spanned, SpecDiagnostic};

use crate::InputDigest;

/// The operation of an `add` of the URL `src`.
pub(crate) fn op(
    urls: &BTreeMap<String, PathBuf>,
    src: &Spanned<String>,
    to: &Spanned<String>,
    checksum: &Spanned<String>,
    mode: Option<u32>,
    owner: Option<Owner>,
    exclude: Option<&Spanned<Vec<String>>>,
) -> Result<(JobOp, Option<InputDigest>), SpecDiagnostic> {
    if let Some(x) = exclude {
        return Err(SpecDiagnostic::new(
            "`exclude` filters a directory, and a URL gives one file",
            x.span,
            "not a directory's",
        ));
    }
    let Some(file) = urls.get(&src.value) else {
        return Err(SpecDiagnostic::new(
            format!("{} was not fetched", src.value),
            src.span,
            "not fetched",
        )
        .with_help(
            "`strata compose`, `plan` and `lock` fetch the URLs of `add`; this command does not",
        ));
    };
    let io = |e: std::io::Error| {
        SpecDiagnostic::new(
            format!(
                "the fetched copy of {} ({}): {e}",
                src.value,
                file.display()
            ),
            src.span,
            "here",
        )
    };
    let host = HostInput::open(file).map_err(io)?;
    let mut dest = crate::image_path(to)?;
    if to.value.ends_with('/') {
        let name = file_name(&src.value).ok_or_else(|| {
            SpecDiagnostic::new(
                format!("{} names no file to name the copy after", src.value),
                to.span,
                "a directory",
            )
            .with_help("give the file's path: to=\"/DEST/NAME\"")
        })?;
        dest = dest.join(name.as_bytes());
    }
    // The content's digest: the checksum pins it, and the key needs no
    // second read of the file.
    let digest = crate::keys::digest_input(&host, None).map_err(io)?;
    Ok((
        JobOp::Copy {
            src: host,
            to: dest,
            into_dir: false,
            mode: Some(mode.unwrap_or(0o600)),
            owner,
        },
        Some(InputDigest {
            src: format!("{} {}", src.value, checksum.value),
            digest,
            path: file.clone(),
        }),
    ))
}

/// The last non-empty component of the URL's path, without its query or
/// fragment (`https://h/a/b.tar.gz?x=1` gives `b.tar.gz`).
fn file_name(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let path = rest.split_once('/')?.1;
    let path = path.split(['?', '#']).next()?;
    path.rsplit('/')
        .find(|c| !c.is_empty() && *c != "." && *c != "..")
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_from_urls() {
        use super::file_name;
        assert_eq!(
            file_name("https://h/a/b.tar.gz?x=1").as_deref(),
            Some("b.tar.gz")
        );
        assert_eq!(file_name("http://h:8080/f/").as_deref(), Some("f"));
        assert_eq!(file_name("https://h"), None);
        assert_eq!(file_name("https://h/"), None);
    }
}
