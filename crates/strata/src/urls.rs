//! The URLs of `add "https://..." checksum="sha256:..."`, fetched once into
//! the cache (`CACHE/urls-v1/sha256/HEX`, by the content's own digest) and
//! verified before planning, as external bases are: a URL whose file the
//! cache holds is not fetched again, so a compose works offline once it
//! has. A file that does not hash to its checksum is an error naming the
//! URL and both digests, and is never kept; it and a URL that cannot be
//! fetched are failed builds (exit 5) located at the `add` in the spec. What is fetched is copied into
//! the layer as it is, never unpacked (Docker does not unpack URLs).
//!
//! Only `add` reaches the network here: a `run` step's network is its own
//! (none unless `network=#true`), whatever an `add` fetched.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use strata_cache::Cache;
use strata_layer::Digest;
use strata_layer::digest::HashingWriter;
use strata_spec::{Op, Spec};

use crate::Error;

/// The cache bucket; bump the version if its layout changes.
const BUCKET: &str = "urls-v1";

/// Each URL of the spec's `add`s, with the cache file that holds its
/// verified content.
pub fn fetch(spec: &Spec, cache: &Cache) -> Result<BTreeMap<String, PathBuf>, Error> {
    let mut out = BTreeMap::new();
    let mut fetcher = None;
    for op in spec
        .images
        .iter()
        .flat_map(|i| &i.layers)
        .flat_map(|l| &l.ops)
    {
        let Op::Add {
            src,
            checksum: Some(sum),
            ..
        } = &op.value
        else {
            continue;
        };
        if out.contains_key(&src.value) {
            continue;
        }
        let expected: Digest = sum.value.parse().map_err(|_| Error::BadSource {
            source_ref: src.value.clone(),
            reason: format!("{} is not a sha256 digest", sum.value),
        })?;
        let path = fetch_one(cache, &src.value, &expected, &mut fetcher)
            .map_err(|e| located(spec, src, e))?;
        out.insert(src.value.clone(), path);
    }
    Ok(out)
}

fn fetch_one(
    cache: &Cache,
    url: &str,
    expected: &Digest,
    fetcher: &mut Option<strata_deb::repo::Fetcher>,
) -> Result<PathBuf, Error> {
    let dir = cache.root().join(BUCKET).join("sha256");
    let path = dir.join(expected.hex());
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| Error::Io { path: p, source }
    };
    // A file put here was verified before its rename; check it again, as
    // the cache checks every blob it trusts.
    if let Ok(mut f) = fs::File::open(&path) {
        let mut w = HashingWriter::new(std::io::sink());
        std::io::copy(&mut f, &mut w).map_err(io(&path))?;
        if w.finish().0 == *expected {
            return Ok(path);
        }
        let _ = fs::remove_file(&path);
    }
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    let fetcher = match fetcher {
        Some(f) => f,
        None => fetcher.insert(
            strata_deb::repo::Fetcher::new(&cache.root().join("tmp").join("urls-fetcher"))
                .map_err(|e| fetch_error(url, e))?,
        ),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io(&dir))?;
    let mut w = HashingWriter::new(std::io::BufWriter::new(tmp.as_file_mut()));
    fetcher
        .get_into(url, strata_layer::Limits::DEFAULT.max_input_size, &mut w)
        .map_err(|e| fetch_error(url, e))?;
    let (found, _, mut inner) = w.finish();
    inner.flush().map_err(io(&dir))?;
    drop(inner);
    if found != *expected {
        return Err(Error::DigestMismatch {
            what: format!("{url} (`add`, checksum=)"),
            expected: *expected,
            found,
        });
    }
    tmp.persist(&path).map_err(|e| Error::Io {
        path: path.clone(),
        source: e.error,
    })?;
    Ok(path)
}

/// A URL that could not be fetched (refused, unreachable, an HTTP error
/// such as 404) or that did not hash to its checksum is a failed build
/// (exit 5, as a host input that cannot be read), pointed at its `add` in
/// the spec; trouble with the cache itself stays what it is (exit 1).
fn located(spec: &Spec, src: &strata_spec::Spanned<String>, e: Error) -> Error {
    let message = match &e {
        Error::BadSource { reason, .. } => format!("cannot fetch {}: {reason}", src.value),
        Error::DigestMismatch { .. } => e.to_string(),
        _ => return e,
    };
    Error::Build(Box::new(strata_spec::Diagnostics::new(
        &spec.name,
        &spec.source,
        vec![
            strata_spec::SpecDiagnostic::new(message, src.span, "this URL").with_help(
                "`add` fetches a URL once into the cache and checks it against `checksum=`; check the URL and that its server answers",
            ),
        ],
    )))
}

fn fetch_error(url: &str, e: strata_deb::Error) -> Error {
    let reason = match e {
        strata_deb::Error::Fetch { reason, .. } => reason,
        e => e.to_string(),
    };
    Error::BadSource {
        source_ref: url.to_owned(),
        reason,
    }
}
