//! A layer cache shared through a registry: `compose --cache-to` and
//! `--cache-from docker://HOST/REPO`.
//!
//! Each layer is one OCI artifact in the repository, tagged
//! `strata-layer-<key>` (the layer's 64-hex-digit cache key: 77 characters,
//! inside the 128 a tag may have). Its manifest's config is the cache's
//! layer record (a `LayerRecord` as one JSON object: diff_id, blob, size,
//! media type, listing) and its one layer is the blob itself, so the registry stores the
//! blob once however many artifacts and images name it.
//!
//! `--cache-from` runs before the build: every layer missing from the local
//! cache is looked up by tag and, when found, its record and blob are
//! fetched into the local cache, where the build then finds it. Nothing from
//! another machine is taken on its word: the blob must hash to the record's
//! digest, its tar to the record's diff_id, and its files must be the
//! record's listing. `--cache-to` runs after a successful compose and
//! pushes every layer of the plan (blobs the registry has are skipped). A
//! remote cache that cannot be reached is a warning, never a failed build:
//! the layers are built locally instead. Layers of external bases are left
//! out both ways: they are fetched from the base's own registry or layout.

use serde_json::json;
use strata_cache::{Cache, LayerRecord};
use strata_plan::Plan;
use strata_registry::{OCI_MANIFEST, Reference, Registry};

use crate::{Error, Event};

/// The `artifactType` of a layer artifact.
pub const ARTIFACT_TYPE: &str = "application/vnd.strata.layer.v1";
/// The media type of its config: a `LayerRecord` as one JSON object.
pub const RECORD_MEDIA_TYPE: &str = "application/vnd.strata.layer-record.v1+json";

/// The tag of the artifact of the layer with cache key `key`.
pub fn tag_for(key: &str) -> String {
    format!("strata-layer-{key}")
}

/// Check a `--cache-to`/`--cache-from` value: `docker://HOST/REPO`, no tag.
pub fn parse_repo(text: &str) -> Result<Reference, Error> {
    let r = crate::push::parse_registry_ref(text)?;
    if r.tag.is_some() || r.digest.is_some() {
        return Err(Error::Registry(strata_registry::Error::BadReference {
            reference: text.to_owned(),
            reason: "a cache repository has no tag or digest (docker://HOST/REPO); \
                     each layer is tagged strata-layer-KEY in it"
                .into(),
        }));
    }
    Ok(r)
}

/// Fetch into `cache` every layer of `plan` it lacks and `repo` has.
/// Returns how many layers were fetched.
pub fn pull(
    plan: &Plan,
    cache: &Cache,
    registry: &Registry,
    repo: &Reference,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<usize, Error> {
    let mut fetched = 0;
    let mut seen = std::collections::BTreeSet::new();
    // Layers of external bases come from where the base is, not from here.
    for layer in plan.layers.iter().filter(|l| l.external().is_none()) {
        let key = layer.key.hex();
        if !seen.insert(key.clone()) || cache.get_head(&key)?.is_ok() {
            continue;
        }
        match pull_one(
            cache,
            registry,
            repo,
            &key,
            layer.compression().media_type(),
        ) {
            Ok(true) => fetched += 1,
            Ok(false) => {}
            Err(e) => {
                on_event(Event::Warning(format!(
                    "remote cache: layer {}: {}",
                    layer.qualified_name(),
                    crate::error_chain(&e)
                )));
                // An unreachable registry fails every lookup the same way;
                // a bad entry says nothing about the next one.
                if matches!(&e, Error::Registry(strata_registry::Error::Registry { .. })) {
                    break;
                }
            }
        }
    }
    Ok(fetched)
}

/// One layer from the remote cache; `Ok(false)` when it has none under `key`.
/// Largest layer record taken from a remote cache: a listing of a million
/// files is about 200 MB of JSON; a record claiming more is refused before
/// it is fetched into memory.
const MAX_RECORD: u64 = 256 << 20;

fn pull_one(
    cache: &Cache,
    reg: &Registry,
    repo: &Reference,
    key: &str,
    media_type: strata_layer::MediaType,
) -> Result<bool, Error> {
    let r = repo.with_tag(&tag_for(key))?;
    let manifest = match reg.fetch_manifest(&r) {
        Ok(m) => m,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let bad = |reason: String| Error::BadSource {
        source_ref: r.to_string(),
        reason,
    };
    let m: serde_json::Value = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| bad(format!("unreadable manifest: {e}")))?;
    let config = &m["config"];
    if config["mediaType"] != RECORD_MEDIA_TYPE {
        return Err(bad(format!(
            "not a strata layer artifact (config media type {})",
            config["mediaType"]
        )));
    }
    let config_digest = config["digest"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| bad("the config has no sha256 digest".into()))?;
    let size = config["size"]
        .as_u64()
        .filter(|&n| n <= MAX_RECORD)
        .ok_or_else(|| {
            bad(format!(
                "the record's size is missing or over {MAX_RECORD} bytes"
            ))
        })?;
    let mut record_bytes = Vec::new();
    reg.fetch_blob(&r, &config_digest, Some(size), &mut record_bytes)?;
    let record: LayerRecord = serde_json::from_slice(&record_bytes)
        .map_err(|e| bad(format!("unreadable layer record: {e}")))?;
    // The key covers the compressor, so the record must carry its media
    // type, and so must the artifact's layer; anything else would be
    // exported under a media type its bytes do not have.
    if record.desc.media_type != media_type
        || m["layers"][0]["mediaType"].as_str() != Some(media_type.as_str())
    {
        return Err(bad(format!(
            "the record's media type {} is not {}",
            record.desc.media_type,
            media_type.as_str()
        )));
    }
    let layer = &m["layers"][0];
    if layer["digest"].as_str() != Some(record.desc.blob.to_string().as_str())
        || layer["size"].as_u64() != Some(record.desc.size)
    {
        return Err(bad(format!(
            "the artifact's layer is not the record's blob {}",
            record.desc.blob
        )));
    }
    // Into a temporary file, checked (diff_id, listing) before it goes in
    // the cache: the record comes from another machine, trust only what
    // the bytes show.
    let tmp_dir = cache.root().join("tmp");
    let io_err = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io_err(&tmp_dir))?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        reg.fetch_blob(&r, &record.desc.blob, Some(record.desc.size), &mut w)?;
        std::io::Write::flush(&mut w).map_err(io_err(&tmp_dir))?;
    }
    store_fetched(cache, key, &record, tmp.path(), &r.to_string())?;
    Ok(true)
}

/// Check a fetched blob (at `path`, its digest already checked) against
/// its record: its tar must hash to the diff_id and hold exactly the
/// record's listing.
pub(crate) fn check_fetched(
    key: &str,
    record: &LayerRecord,
    path: &std::path::Path,
    source: &str,
) -> Result<(), Error> {
    let listing =
        crate::base::check_contents(path, record.desc.media_type, &record.desc.diff_id, key)?;
    same_listing(record, &listing, source)
}

/// [`check_fetched`] of a blob's bytes as `blob` reads them while they
/// arrive (`path` names them in errors).
pub(crate) fn check_fetched_stream(
    key: &str,
    record: &LayerRecord,
    blob: impl std::io::BufRead,
    path: &std::path::Path,
    source: &str,
) -> Result<(), Error> {
    let listing = crate::base::check_stream(
        blob,
        path,
        record.desc.media_type,
        &record.desc.diff_id,
        key,
    )?;
    same_listing(record, &listing, source)
}

fn same_listing(
    record: &LayerRecord,
    listing: &strata_layer::Listing,
    source: &str,
) -> Result<(), Error> {
    if *listing != record.listing {
        return Err(Error::BadSource {
            source_ref: source.to_owned(),
            reason: format!(
                "the record's listing does not match the files of blob {}",
                record.desc.blob
            ),
        });
    }
    Ok(())
}

/// Put a layer fetched from another machine (its record, its blob in the
/// temporary file `tmp`) into `cache`, once the blob's tar hashes to the
/// record's diff_id and its files are the record's listing: a remote
/// record is taken on no one's word. `source` names where it came from.
pub(crate) fn store_fetched(
    cache: &Cache,
    key: &str,
    record: &LayerRecord,
    tmp: &std::path::Path,
    source: &str,
) -> Result<(), Error> {
    check_fetched(key, record, tmp, source)?;
    let mut blob = cache.new_blob()?;
    let mut file = std::fs::File::open(tmp).map_err(|source| Error::Io {
        path: tmp.to_path_buf(),
        source,
    })?;
    std::io::copy(&mut file, &mut blob).map_err(|source| Error::Io {
        path: tmp.to_path_buf(),
        source,
    })?;
    cache.put(key, record, blob)?;
    Ok(())
}

/// Push layers (their cache keys and records, their blobs in `cache`, as a
/// compose leaves them) to `repo`. Returns how many artifacts were pushed.
pub fn push(
    layers: &[(String, &LayerRecord)],
    cache: &Cache,
    registry: &Registry,
    repo: &Reference,
) -> Result<usize, Error> {
    let mut pushed = 0;
    let mut seen = std::collections::BTreeSet::new();
    for (key, record) in layers {
        if !seen.insert(key.clone()) {
            continue;
        }
        let r = repo.with_tag(&tag_for(key))?;
        registry.push_blob(&r, &record.desc.blob, &cache.blob_path(&record.desc.blob))?;
        let record_bytes = serde_json::to_vec(record).map_err(|source| Error::Json {
            what: "cannot write a layer record".to_owned(),
            source,
        })?;
        let config = registry.push_blob_bytes(&r, &record_bytes)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": {
                "mediaType": RECORD_MEDIA_TYPE,
                "digest": config.to_string(),
                "size": record_bytes.len(),
            },
            "layers": [{
                "mediaType": record.desc.media_type,
                "digest": record.desc.blob.to_string(),
                "size": record.desc.size,
            }],
        });
        let bytes = serde_json::to_vec(&manifest).map_err(|source| Error::Json {
            what: "cannot write a manifest".to_owned(),
            source,
        })?;
        registry.push_manifest(&r, &bytes, OCI_MANIFEST)?;
        pushed += 1;
    }
    Ok(pushed)
}
