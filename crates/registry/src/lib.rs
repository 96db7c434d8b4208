//! Registries over the OCI distribution API, for the rest of strata as plain
//! blocking calls.
//!
//! The protocol work (token and basic auth challenges, chunked uploads, the
//! `Location` dance) is the maintained `oci-client` crate's; this crate adds
//! what strata needs around it: references parsed with errors that name the
//! bad part, credentials from the usual docker config file
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, credential
//! helpers included), plain HTTP for `--insecure` loopback registries, and
//! digest checks on everything that comes back.
//!
//! Why a private tokio runtime: `oci-client` is async, strata is not (rayon
//! for the CPU work). A current-thread runtime owned by [`Registry`] runs each
//! call to completion, so no other crate sees async code.
//!
//! Invariants: a manifest is returned only if its bytes hash to the digest
//! asked for (or, fetched by tag, to the digest the registry announced); a
//! blob is written out only through a hashing writer and the call fails unless
//! the bytes hash to the digest and have the size asked for; a manifest is
//! pushed as the exact bytes given, so its remote digest is the local one.
//! TLS is rustls (ring); there is no OpenSSL anywhere.

mod reference;
mod referrers;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use strata_oci::Digest;
use strata_oci::digest::HashingWriter;

pub use reference::{DOCKER_HUB, MAX_TAG_LEN, Reference, check_tag};
pub use referrers::fallback_tag;

/// The manifest media types strata reads and writes.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Manifests larger than this are refused (the distribution spec lets a
/// registry refuse anything over 4 MiB).
const MAX_MANIFEST: usize = 4 << 20;

/// Bytes read from disk per upload request (a `PATCH` of a chunked upload).
const CHUNK: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad image reference {reference:?}: {reason}")]
    BadReference { reference: String, reason: String },
    #[error("registry {registry}: {what}: {source}")]
    Registry {
        registry: String,
        what: String,
        #[source]
        source: Box<OciDistributionError>,
    },
    #[error("registry {registry}: {what}: {reason}")]
    Protocol {
        registry: String,
        what: String,
        reason: String,
    },
    #[error("registry {registry}: {what} hashes to {found} ({size} bytes), expected {expected}")]
    DigestMismatch {
        registry: String,
        what: String,
        expected: Digest,
        found: Digest,
        size: u64,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the registry client: {0}")]
    Setup(String),
}

impl Error {
    /// Whether the registry said the thing asked for is not there (a 404,
    /// `MANIFEST_UNKNOWN`, `NAME_UNKNOWN`, `BLOB_UNKNOWN`), as opposed to a
    /// failure to ask.
    pub fn is_not_found(&self) -> bool {
        use oci_client::errors::OciErrorCode as C;
        match self {
            Error::Registry { source, .. } => match source.as_ref() {
                OciDistributionError::ImageManifestNotFoundError(_) => true,
                OciDistributionError::RegistryError { envelope, .. } => {
                    envelope.errors.iter().any(|e| {
                        matches!(
                            e.code,
                            C::ManifestUnknown | C::NameUnknown | C::NotFound | C::BlobUnknown
                        )
                    })
                }
                OciDistributionError::ServerError { code, .. } => *code == 404,
                _ => false,
            },
            _ => false,
        }
    }
}

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Speak plain HTTP instead of HTTPS (for a loopback test registry).
    pub insecure: bool,
}

/// A manifest as the registry sent it.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The exact bytes; their sha256 is `digest`.
    pub bytes: Vec<u8>,
    pub digest: Digest,
    /// The `mediaType` field of the JSON (an OCI or docker manifest or index).
    pub media_type: String,
}

impl Manifest {
    /// Whether this is an index (or docker manifest list) rather than an image manifest.
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_MANIFEST_LIST
    }
}

/// A connection to registries (any number of hosts), with its own runtime.
pub struct Registry {
    client: oci_client::Client,
    rt: tokio::runtime::Runtime,
    /// The credentials of each host, read once and handed to the client.
    authed: Mutex<BTreeMap<String, RegistryAuth>>,
}

impl Registry {
    pub fn new(opts: &Options) -> Result<Registry, Error> {
        // rustls needs a process-wide crypto provider; another caller may have
        // installed one already, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: if opts.insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(Duration::from_secs(30)),
            read_timeout: Some(Duration::from_secs(300)),
            ..Default::default()
        };
        let client =
            oci_client::Client::try_from(config).map_err(|e| Error::Setup(e.to_string()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Setup(e.to_string()))?;
        Ok(Registry {
            client,
            rt,
            authed: Mutex::new(BTreeMap::new()),
        })
    }

    /// Hand the client the credentials for `r`'s registry, once per host.
    fn auth(&self, r: &Reference) -> RegistryAuth {
        let mut done = self
            .authed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(auth) = done.get(&r.registry) {
            return auth.clone();
        }
        let auth = credentials(&r.registry);
        let host = r.to_oci().resolve_registry().to_owned();
        self.rt
            .block_on(self.client.store_auth_if_needed(&host, &auth));
        done.insert(r.registry.clone(), auth.clone());
        auth
    }

    fn err(r: &Reference, what: impl Into<String>) -> impl FnOnce(OciDistributionError) -> Error {
        let registry = r.registry.clone();
        let what = what.into();
        move |source| Error::Registry {
            registry,
            what,
            source: Box::new(source),
        }
    }

    /// The manifest `r` names (by digest if it has one, else by tag), checked
    /// against that digest.
    pub fn fetch_manifest(&self, r: &Reference) -> Result<Manifest, Error> {
        let auth = self.auth(r);
        let what = match (&r.digest, &r.tag) {
            (Some(d), _) => format!("manifest {}@{d}", r.repository),
            (None, t) => format!(
                "manifest {}:{}",
                r.repository,
                t.as_deref().unwrap_or("latest")
            ),
        };
        let (bytes, announced) = self
            .rt
            .block_on(self.client.pull_manifest_raw(
                &r.to_oci(),
                &auth,
                &[
                    OCI_MANIFEST,
                    OCI_INDEX,
                    DOCKER_MANIFEST,
                    DOCKER_MANIFEST_LIST,
                ],
            ))
            .map_err(Self::err(r, what.clone()))?;
        let protocol = |reason: String| Error::Protocol {
            registry: r.registry.clone(),
            what: what.clone(),
            reason,
        };
        if bytes.len() > MAX_MANIFEST {
            return Err(protocol(format!(
                "{} bytes is more than the {MAX_MANIFEST} a manifest may have",
                bytes.len()
            )));
        }
        let digest = Digest::of(&bytes);
        let expected = match r.digest {
            Some(d) => d,
            None => announced
                .parse()
                .map_err(|_| protocol(format!("unsupported digest {announced:?}")))?,
        };
        if digest != expected {
            return Err(Error::DigestMismatch {
                registry: r.registry.clone(),
                what,
                expected,
                found: digest,
                size: bytes.len() as u64,
            });
        }
        let media_type = media_type_of(&bytes).map_err(protocol)?;
        Ok(Manifest {
            bytes: bytes.to_vec(),
            digest,
            media_type,
        })
    }

    /// Whether the registry has blob `digest` in `r`'s repository (a `HEAD`).
    pub fn has_blob(&self, r: &Reference, digest: &Digest) -> Result<bool, Error> {
        self.auth(r);
        self.rt
            .block_on(self.client.blob_exists(&r.to_oci(), &digest.to_string()))
            .map_err(Self::err(
                r,
                format!("cannot check for blob {digest} in {}", r.repository),
            ))
    }

    /// Stream blob `digest` into `out`, hashing on the way; fails unless the
    /// bytes hash to `digest` (and are `size` bytes long, when given). On a
    /// failure `out` holds a partial blob: write into a temporary file.
    pub fn fetch_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        size: Option<u64>,
        out: &mut dyn Write,
    ) -> Result<u64, Error> {
        self.auth(r);
        let what = format!("blob {digest} of {}", r.repository);
        let mut w = HashingWriter::new(out);
        let mut received = 0u64;
        self.rt.block_on(async {
            let desc = digest.to_string();
            let mut stream = self
                .client
                .pull_blob_stream(&r.to_oci(), desc.as_str())
                .await
                .map_err(Self::err(r, what.clone()))?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Error::Protocol {
                    registry: r.registry.clone(),
                    what: what.clone(),
                    reason: e.to_string(),
                })?;
                w.write_all(&chunk).map_err(|source| Error::Io {
                    path: PathBuf::from(format!("(download of {digest})")),
                    source,
                })?;
                received += chunk.len() as u64;
                if let Some(s) = size.filter(|&s| received > s) {
                    return Err(Error::Protocol {
                        registry: r.registry.clone(),
                        what: what.clone(),
                        reason: format!("the registry sent more than the {s} bytes expected"),
                    });
                }
            }
            Ok(())
        })?;
        let (found, n, _) = w.finish();
        if found != *digest || size.is_some_and(|s| s != n) {
            return Err(Error::DigestMismatch {
                registry: r.registry.clone(),
                what,
                expected: *digest,
                found,
                size: n,
            });
        }
        Ok(n)
    }

    /// Upload the file at `path` as blob `digest`, in chunks, unless the
    /// registry has it already. Returns whether it was uploaded.
    pub fn push_blob(&self, r: &Reference, digest: &Digest, path: &Path) -> Result<bool, Error> {
        if self.has_blob(r, digest)? {
            return Ok(false);
        }
        self.upload_blob(r, digest, path)?;
        Ok(true)
    }

    /// Ask the registry to link blob `digest` of repository `from` (same
    /// registry) into `r`'s repository, with no upload. False when it would
    /// not (the caller then uploads).
    pub fn mount_blob(&self, r: &Reference, from: &Reference, digest: &Digest) -> bool {
        if from.registry != r.registry {
            return false;
        }
        self.auth(r);
        self.rt
            .block_on(
                self.client
                    .mount_blob(&r.to_oci(), &from.to_oci(), &digest.to_string()),
            )
            .is_ok()
    }

    /// Upload the file at `path` as blob `digest`, in chunks (no `HEAD` first).
    pub fn upload_blob(&self, r: &Reference, digest: &Digest, path: &Path) -> Result<(), Error> {
        self.auth(r);
        let file = fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let path_owned = path.to_path_buf();
        let stream = futures_util::stream::unfold(Some(file), move |file| {
            let path = path_owned.clone();
            async move {
                let mut file = file?;
                let mut buf = vec![0u8; CHUNK];
                let mut n = 0;
                while n < CHUNK {
                    match file.read(&mut buf[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let e = OciDistributionError::GenericError(Some(format!(
                                "{}: {e}",
                                path.display()
                            )));
                            return Some((Err(e), None));
                        }
                    }
                }
                if n == 0 {
                    return None;
                }
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), Some(file)))
            }
        });
        self.rt
            .block_on(
                self.client
                    .push_blob_stream(&r.to_oci(), stream, &digest.to_string(), None),
            )
            .map_err(Self::err(r, format!("cannot push blob {digest}")))?;
        Ok(())
    }

    /// Upload a small blob (a config) from memory, unless the registry has it.
    pub fn push_blob_bytes(&self, r: &Reference, bytes: &[u8]) -> Result<Digest, Error> {
        let digest = Digest::of(bytes);
        if self.has_blob(r, &digest)? {
            return Ok(digest);
        }
        self.rt
            .block_on(
                self.client
                    .push_blob(&r.to_oci(), bytes.to_vec(), &digest.to_string()),
            )
            .map_err(Self::err(r, format!("cannot push blob {digest}")))?;
        Ok(digest)
    }

    /// Put `bytes` as the manifest `r` names (its tag, or its digest), as
    /// they are: the registry's digest of them is their sha256.
    pub fn push_manifest(
        &self,
        r: &Reference,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, Error> {
        self.auth(r);
        let digest = Digest::of(bytes);
        let what = format!("cannot push manifest {digest}");
        let content_type = media_type.parse().map_err(|_| Error::Protocol {
            registry: r.registry.clone(),
            what: what.clone(),
            reason: format!("bad media type {media_type:?}"),
        })?;
        self.rt
            .block_on(
                self.client
                    .push_manifest_raw(&r.to_oci(), bytes.to_vec(), content_type),
            )
            .map_err(Self::err(r, what))?;
        Ok(digest)
    }
}

/// The `mediaType` of a manifest or index; an index without one is
/// recognised by its `manifests` array (the field is optional in OCI).
fn media_type_of(bytes: &[u8]) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    if let Some(t) = v.get("mediaType").and_then(|t| t.as_str()) {
        return Ok(t.to_owned());
    }
    if v.get("manifests").is_some() {
        Ok(OCI_INDEX.to_owned())
    } else if v.get("layers").is_some() {
        Ok(OCI_MANIFEST.to_owned())
    } else {
        Err("the manifest has no mediaType, layers or manifests".into())
    }
}

/// The credentials for `registry` from the docker config file (or a
/// credential helper it names); anonymous when there are none.
fn credentials(registry: &str) -> RegistryAuth {
    let servers: &[&str] = if registry == DOCKER_HUB {
        &[
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
        ]
    } else {
        &[registry]
    };
    for server in servers {
        match docker_credential::get_credential(server) {
            Ok(docker_credential::DockerCredential::UsernamePassword(u, p)) => {
                return RegistryAuth::Basic(u, p);
            }
            Ok(docker_credential::DockerCredential::IdentityToken(t)) => {
                return RegistryAuth::Bearer(t);
            }
            Err(_) => {}
        }
    }
    RegistryAuth::Anonymous
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_from_the_field_or_the_shape() {
        assert_eq!(
            media_type_of(br#"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","layers":[]}"#),
            Ok(DOCKER_MANIFEST.to_owned())
        );
        assert_eq!(
            media_type_of(br#"{"manifests":[]}"#),
            Ok(OCI_INDEX.to_owned())
        );
        assert_eq!(
            media_type_of(br#"{"layers":[]}"#),
            Ok(OCI_MANIFEST.to_owned())
        );
        assert!(media_type_of(b"{}").is_err());
        assert!(media_type_of(b"not json").is_err());
    }

    #[test]
    fn an_index_is_told_from_a_manifest() {
        let m = |t: &str| Manifest {
            bytes: Vec::new(),
            digest: Digest::of(b""),
            media_type: t.to_owned(),
        };
        assert!(m(OCI_INDEX).is_index());
        assert!(m(DOCKER_MANIFEST_LIST).is_index());
        assert!(!m(OCI_MANIFEST).is_index());
    }

    #[test]
    fn only_a_registry_that_answered_not_found_is_not_found() {
        let not_found = Error::Registry {
            registry: "h".into(),
            what: "manifest".into(),
            source: Box::new(OciDistributionError::ServerError {
                code: 404,
                url: "u".into(),
                message: String::new(),
            }),
        };
        assert!(not_found.is_not_found());
        let refused = Error::Registry {
            registry: "h".into(),
            what: "manifest".into(),
            source: Box::new(OciDistributionError::ServerError {
                code: 500,
                url: "u".into(),
                message: String::new(),
            }),
        };
        assert!(!refused.is_not_found());
    }
}
