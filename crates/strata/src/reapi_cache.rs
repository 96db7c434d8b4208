//! A layer cache on a Remote Execution API v2 server (BuildGrid, Buildbarn,
//! BuildBuddy, NativeLink, bazel-remote): `compose --remote-cache
//! grpc://HOST:PORT`. It plugs into the same two stages as the registry
//! cache (`remote_cache.rs`): **pull** before the build, **publish** after
//! the export. `docs/remote-cache.md` is the normative description.
//!
//! Each layer is one entry of the action cache, under the digest of a
//! canonical `Action` derived from the layer's cache key alone
//! ([`action_for`]): no server or client needs the spec to find it. Its
//! `ActionResult` names two output files, `layer.blob` (the layer blob, so
//! its CAS digest is the OCI digest and a base shared by many images is one
//! CAS entry) and `layer.record.json` (the `LayerRecord`: diff_id, digest,
//! size, media type, listing).
//!
//! A hit is trusted only as far as its bytes show: the blob must hash to
//! the result's digest (checked while it streams), be the record's blob,
//! and its tar must hash to the record's diff_id and hold the record's
//! files, before it enters the local cache. An entry that fails is
//! reported, built locally, and replaced on the server by the local result.
//! A server that is down, refuses us or is too slow is one warning and the
//! end of remote work for this compose: layers build locally, and the
//! compose succeeds as it would have without the flag.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;
use strata_cache::{Cache, LayerRecord};
use strata_plan::Plan;
use strata_reapi::{
    Action, ActionResult, BlobDigest, Client, Command, Message as _, OutputFile, Source,
};

use crate::report::RemoteStatus;
use crate::{Error, Event};

/// The first arguments of every layer's canonical `Command`; the version
/// changes when the entry's shape (its outputs, the record's JSON) does.
pub const COMMAND_PREFIX: [&str; 2] = ["strata-layer", "v1"];
/// The output file holding the layer blob.
pub const BLOB_OUTPUT: &str = "layer.blob";
/// The output file holding the layer record (JSON).
pub const RECORD_OUTPUT: &str = "layer.record.json";

/// Largest layer record read into memory (as for the registry cache).
const MAX_RECORD: u64 = 256 << 20;

/// Remote calls in flight at once (fetches in the pull stage, uploads in
/// the publish stage): enough to hide a loopback or LAN round trip, few
/// enough not to flood a shared server.
const IN_FLIGHT: usize = 4;

/// The canonical `Command` and `Action` of the layer with cache key `key`
/// (64 hex digits): `strata-layer v1 KEY`, producing `layer.blob` and
/// `layer.record.json`, from an empty input root, with no platform, salt or
/// timeout. Their protobuf encodings are deterministic (no maps, fields in
/// tag order), so every client derives the same action digest.
pub fn action_for(key: &str) -> (Command, Action) {
    let mut arguments: Vec<String> = COMMAND_PREFIX.iter().map(|s| s.to_string()).collect();
    arguments.push(key.to_owned());
    let command = Command {
        arguments,
        // Sorted, as the API requires.
        output_paths: vec![BLOB_OUTPUT.to_owned(), RECORD_OUTPUT.to_owned()],
        ..Default::default()
    };
    let action = Action {
        command_digest: Some(BlobDigest::of_message(&command).to_proto()),
        // The empty `Directory` encodes to no bytes.
        input_root_digest: Some(BlobDigest::of(b"").to_proto()),
        ..Default::default()
    };
    (command, action)
}

/// The action-cache key of the layer with cache key `key`.
pub fn action_digest(key: &str) -> BlobDigest {
    BlobDigest::of_message(&action_for(key).1)
}

/// The REAPI digest of an OCI digest and size.
fn blob_digest(d: &strata_layer::Digest, size: u64) -> BlobDigest {
    BlobDigest {
        hash: d.hex(),
        size,
    }
}

/// A remote cache for one compose: the client, and whether the server has
/// been given up on (after which nothing more is sent and no more warnings
/// are given).
pub struct RemoteCache {
    client: Client,
    down: AtomicBool,
    instance: String,
}

impl RemoteCache {
    pub fn connect(opts: &strata_reapi::Options) -> Result<RemoteCache, Error> {
        Ok(RemoteCache {
            client: Client::connect(opts)?,
            down: AtomicBool::new(false),
            instance: opts.instance_name.clone(),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Sort an error: a server that is unreachable is given up on with one
    /// warning (the first thread to see it says so); anything else is about
    /// one layer and is said for that layer.
    fn failed(&self, layer: &str, e: &Error, on_event: &(dyn Fn(Event) + Sync)) {
        let unreachable = matches!(e, Error::Remote(r) if r.is_unreachable());
        if unreachable {
            if !self.down.swap(true, Ordering::Relaxed) {
                on_event(Event::Warning(format!(
                    "remote cache unreachable, not used for the rest of this compose (layers build locally): {}",
                    crate::error_chain(e)
                )));
            }
        } else if !self.is_down() {
            on_event(Event::Warning(format!(
                "remote cache: layer {layer}: dropped a bad entry and built the layer locally: {}",
                crate::error_chain(e)
            )));
        }
    }
}

/// How long a note that the server holds a layer is believed.
const HELD_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl RemoteCache {
    /// The directory of notes, one empty file per layer key, of layers this
    /// server (URL and instance) was seen to hold in the last
    /// [`HELD_FOR`]: a warm compose skips them in the publish stage, so
    /// that it makes no remote call at all. Small and outside the cache's
    /// buckets; a server that lost an entry meanwhile gets it back from the
    /// next compose after the note expires (or from any compose that builds
    /// the layer).
    fn held_dir(&self, cache: &Cache) -> std::path::PathBuf {
        let id = blake3::hash(format!("{}\n{}", self.client.url(), self.instance).as_bytes());
        cache.root().join("remote-held-v1").join(&id.to_hex()[..16])
    }

    /// Whether this server was seen to hold layer `key` lately.
    pub(crate) fn known_held(&self, cache: &Cache, key: &str) -> bool {
        std::fs::metadata(self.held_dir(cache).join(key))
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age < HELD_FOR))
    }

    /// Note that this server holds layer `key` (best effort: a note that
    /// cannot be written costs a `FindMissingBlobs` next time).
    fn note_held(&self, cache: &Cache, key: &str) {
        let dir = self.held_dir(cache);
        let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(key), b""));
    }
}

/// Fetch into `cache` every layer of `plan` it lacks and the remote cache
/// has, [`IN_FLIGHT`] at a time. Returns what the remote said per layer
/// key asked: `Hit` (fetched and checked) or `Miss`.
pub fn pull(
    plan: &Plan,
    cache: &Cache,
    remote: &RemoteCache,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<BTreeMap<String, RemoteStatus>, Error> {
    let mut asked = BTreeMap::new();
    for layer in plan.layers.iter().filter(|l| l.external().is_none()) {
        let key = layer.key.hex();
        if !asked.contains_key(&key) && cache.get_head(&key)?.is_err() {
            asked.insert(key, layer);
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(IN_FLIGHT.min(asked.len()).max(1))
        .build()
        .map_err(|e| Error::Workers(format!("cannot start them: {e}")))?;
    let asked: Vec<_> = asked.into_iter().collect();
    let results: Vec<(String, RemoteStatus)> = pool.install(|| {
        asked
            .par_iter()
            .map(|(key, layer)| {
                if remote.is_down() {
                    return (key.clone(), RemoteStatus::Miss);
                }
                let media_type = layer.compression().media_type();
                match pull_one(cache, remote, key, media_type) {
                    Ok(true) => {
                        remote.note_held(cache, key);
                        (key.clone(), RemoteStatus::Hit)
                    }
                    Ok(false) => (key.clone(), RemoteStatus::Miss),
                    Err(e) => {
                        remote.failed(&layer.qualified_name(), &e, on_event);
                        (key.clone(), RemoteStatus::Miss)
                    }
                }
            })
            .collect()
    });
    Ok(results.into_iter().collect())
}

/// One layer from the action cache and CAS; `Ok(false)` when the action
/// cache has no result for it.
fn pull_one(
    cache: &Cache,
    remote: &RemoteCache,
    key: &str,
    media_type: strata_layer::MediaType,
) -> Result<bool, Error> {
    let client = &remote.client;
    let action = action_digest(key);
    let Some(result) = client.get_action_result(&action)? else {
        return Ok(false);
    };
    let source = format!("{} action {action}", client.url());
    take_result(cache, client, key, media_type, &result, &source)?;
    Ok(true)
}

/// Take the layer an action result names (`layer.blob`, `layer.record.json`)
/// into `cache`, after every check: the record must be of `media_type` and
/// name the blob; the blob is hashed as it streams, and its tar must hash
/// to the record's diff_id and hold the record's listing. `source` names
/// the result in errors. What a remote cache hit and a remote build share.
pub(crate) fn take_result(
    cache: &Cache,
    client: &Client,
    key: &str,
    media_type: strata_layer::MediaType,
    result: &ActionResult,
    source: &str,
) -> Result<(), Error> {
    let bad = |reason: String| Error::BadSource {
        source_ref: source.to_owned(),
        reason,
    };
    let output = |path: &str| -> Result<BlobDigest, Error> {
        let f = result
            .output_files
            .iter()
            .find(|f| f.path == path)
            .ok_or_else(|| bad(format!("the action result has no {path}")))?;
        let d = f
            .digest
            .as_ref()
            .ok_or_else(|| bad(format!("{path} has no digest")))?;
        Ok(BlobDigest::from_proto(d)?)
    };
    let (blob_d, record_d) = (output(BLOB_OUTPUT)?, output(RECORD_OUTPUT)?);
    let record_bytes = client.read_bytes(&record_d, MAX_RECORD)?;
    let record: LayerRecord = serde_json::from_slice(&record_bytes)
        .map_err(|e| bad(format!("unreadable layer record: {e}")))?;
    // The key covers the compressor: a record of another media type would be
    // exported under a type its bytes do not have.
    if record.desc.media_type != media_type {
        return Err(bad(format!(
            "the record's media type {} is not {}",
            record.desc.media_type,
            media_type.as_str()
        )));
    }
    if blob_digest(&record.desc.blob, record.desc.size) != blob_d {
        return Err(bad(format!(
            "{BLOB_OUTPUT} is {blob_d}, but the record's blob is {}",
            blob_digest(&record.desc.blob, record.desc.size)
        )));
    }
    // Straight into a cache blob (a temporary file until `put`), checked
    // as it arrives: no second copy of the bytes, no second read.
    let mut blob = cache.new_blob()?;
    crate::checked_fetch::fetch_checked(client, &blob_d, &mut blob, key, &record, source)?;
    cache.put(key, &record, blob)?;
    Ok(())
}

/// Upload layers (cache key, record, and `fresh`: whether the action cache
/// is known to lack it or hold a bad entry) after a compose. Blobs go first,
/// only those the CAS lacks (one `FindMissingBlobs`); then an action result
/// for every fresh layer and every layer one of whose blobs was missing.
/// Returns how many action results were written; a failure is a warning.
pub fn push(
    layers: &[(String, &LayerRecord, bool)],
    cache: &Cache,
    remote: &RemoteCache,
    on_event: &(dyn Fn(Event) + Sync),
) -> usize {
    if remote.is_down() {
        return 0;
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut entries = Vec::new();
    for (key, record, fresh) in layers {
        if !seen.insert(key.clone()) {
            continue;
        }
        let record_bytes = match serde_json::to_vec(record) {
            Ok(b) => b,
            Err(source) => {
                let e = Error::Json {
                    what: "cannot write a layer record".to_owned(),
                    source,
                };
                remote.failed(key, &e, on_event);
                continue;
            }
        };
        entries.push((key.clone(), *record, record_bytes, *fresh));
    }
    // Which blobs the server lacks, asked once for all of them.
    let mut wanted: Vec<BlobDigest> = Vec::new();
    for (key, record, record_bytes, _) in &entries {
        let (command, action) = action_for(key);
        wanted.push(blob_digest(&record.desc.blob, record.desc.size));
        wanted.push(BlobDigest::of(record_bytes));
        wanted.push(BlobDigest::of_message(&command));
        wanted.push(BlobDigest::of_message(&action));
    }
    let missing = match remote.client.find_missing(&wanted) {
        Ok(m) => m,
        Err(e) => {
            remote.failed("(all)", &e.into(), on_event);
            return 0;
        }
    };
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(IN_FLIGHT.min(entries.len()).max(1))
        .build()
    {
        Ok(p) => p,
        Err(_) => return 0,
    };
    pool.install(|| {
        entries
            .par_iter()
            .map(|(key, record, record_bytes, fresh)| {
                if remote.is_down() {
                    return 0;
                }
                let (command, action) = action_for(key);
                let blob_d = blob_digest(&record.desc.blob, record.desc.size);
                let record_d = BlobDigest::of(record_bytes);
                let mut blobs = Vec::new();
                if missing.contains(&blob_d) {
                    blobs.push((
                        blob_d.clone(),
                        Source::File(cache.blob_path(&record.desc.blob)),
                    ));
                }
                if missing.contains(&record_d) {
                    blobs.push((record_d.clone(), Source::Bytes(record_bytes.clone())));
                }
                for m in [command.encode_to_vec(), action.encode_to_vec()] {
                    let d = BlobDigest::of(&m);
                    if missing.contains(&d) {
                        blobs.push((d, Source::Bytes(m)));
                    }
                }
                if !fresh && blobs.is_empty() {
                    remote.note_held(cache, key);
                    return 0;
                }
                let result = ActionResult {
                    output_files: vec![
                        OutputFile {
                            path: BLOB_OUTPUT.to_owned(),
                            digest: Some(blob_d.to_proto()),
                            ..Default::default()
                        },
                        OutputFile {
                            path: RECORD_OUTPUT.to_owned(),
                            digest: Some(record_d.to_proto()),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                };
                let done = remote.client.upload(&blobs).and_then(|_| {
                    remote
                        .client
                        .update_action_result(&BlobDigest::of_message(&action), &result)
                });
                match done {
                    Ok(()) => {
                        remote.note_held(cache, key);
                        1
                    }
                    Err(e) => {
                        remote.failed(key, &e.into(), on_event);
                        0
                    }
                }
            })
            .sum()
    })
}

/// What a remote cache holds for one layer of a spec (`strata cache remote`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RemoteEntry {
    /// `image/layer`.
    pub layer: String,
    pub key: String,
    /// `absent` (no action result), `incomplete` (a blob it names is not in
    /// the CAS), `present`; with `--check`, `ok` (fetched and checked as a
    /// compose would) or `bad`.
    pub state: &'static str,
    /// Why it is incomplete or bad.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the remote cache holds for every layer `plan` builds (layers of
/// external bases left out). With `check`, every entry is fetched into a
/// throwaway cache and checked as a compose checks it.
pub fn survey(plan: &Plan, remote: &RemoteCache, check: bool) -> Result<Vec<RemoteEntry>, Error> {
    let scratch = tempfile::tempdir().map_err(|source| Error::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let scratch_cache = Cache::open(scratch.path().join("cache"))?;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for layer in plan.layers.iter().filter(|l| l.external().is_none()) {
        let key = layer.key.hex();
        if !seen.insert(key.clone()) {
            continue;
        }
        let entry = |state, reason| RemoteEntry {
            layer: layer.qualified_name(),
            key: key.clone(),
            state,
            reason,
        };
        if check {
            let media_type = layer.compression().media_type();
            out.push(match pull_one(&scratch_cache, remote, &key, media_type) {
                Ok(true) => entry("ok", None),
                Ok(false) => entry("absent", None),
                Err(e @ Error::Remote(_)) if matches!(&e, Error::Remote(r) if r.is_unreachable()) =>
                {
                    return Err(e);
                }
                Err(e) => entry("bad", Some(crate::error_chain(&e))),
            });
            continue;
        }
        let Some(result) = remote.client.get_action_result(&action_digest(&key))? else {
            out.push(entry("absent", None));
            continue;
        };
        let named: Vec<BlobDigest> = result
            .output_files
            .iter()
            .filter_map(|f| f.digest.as_ref())
            .filter_map(|d| BlobDigest::from_proto(d).ok())
            .collect();
        let missing = remote.client.find_missing(&named)?;
        out.push(if named.len() < 2 {
            entry(
                "incomplete",
                Some("the action result names no blob or record".into()),
            )
        } else if let Some(m) = missing.first() {
            entry("incomplete", Some(format!("blob {m} is not in the CAS")))
        } else {
            entry("present", None)
        });
    }
    Ok(out)
}
