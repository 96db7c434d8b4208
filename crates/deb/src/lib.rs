//! Debian packages for strata: repository indexes verified from a signed
//! `InRelease` down to each `.deb`, control data, versions ordered as dpkg
//! orders them, dependency resolution as apt does it, `.deb` archives read
//! without running anything, and the dpkg status that makes the result a
//! system `dpkg -l` and scanners understand.
//!
//! The chain of trust: [`release::verify_inrelease`] checks the suite's
//! signature against a keyring and yields the sha256 and size of every
//! index; [`repo::Repository`] fetches an index and checks it against
//! those before parsing it; each `.deb` is checked against its index's
//! sha256 before [`debfile`] reads a byte of it. Fetched files are cached
//! by their sha256 (written to a temporary name and renamed), so a locked
//! set installs offline and a cached file is verified again when read.
//!
//! Invariants: nothing unverified is parsed beyond the signature check, and
//! nothing unverified is unpacked; no input (index, control file, archive)
//! can make this crate panic or write outside the directories it is given;
//! the same indexes and request give the same resolution on any machine
//! (every choice goes through ordered maps, never hash order). This crate
//! knows nothing about specs, layers or images.

pub mod control;
pub mod copyright;
pub mod debfile;
pub mod maint;
pub mod packages;
pub mod relation;
pub mod release;
pub mod repo;
pub mod resolve;
pub mod status;
pub mod version;

pub use packages::{MultiArch, Package};
pub use release::{Keyring, Release};
pub use version::Version;

use std::fmt;
use std::path::PathBuf;

/// A sha256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    pub fn from_hex(s: &str) -> Option<Sha256> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out).ok()?;
        Some(Sha256(out))
    }

    pub fn of(bytes: &[u8]) -> Sha256 {
        use sha2::Digest as _;
        Sha256(sha2::Sha256::digest(bytes).into())
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

/// Why a repository, index or package could not be used. Every variant
/// names the file (a URL or path) or the package it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("keyring {keyring}: {reason}")]
    BadKeyring { keyring: String, reason: String },
    #[error("{file}: bad signature: {reason}")]
    BadSignature { file: String, reason: String },
    #[error("{file}: {reason}")]
    BadRelease { file: String, reason: String },
    /// The Release's `Valid-Until` is past.
    #[error(
        "{file}: expired: its Valid-Until ({valid_until}) is past, so the mirror may serve a stale Release (`check-valid-until=#false` on the repository accepts it)"
    )]
    Expired { file: String, valid_until: String },
    /// The only keys that verify the signature have expired.
    #[error("{file}: signed by key {key}, which expired on {expired}")]
    ExpiredKey {
        file: String,
        key: String,
        expired: String,
    },
    #[error("{file}: {source}")]
    Control {
        file: String,
        #[source]
        source: control::ControlError,
    },
    #[error("{file}: package {package}: {reason}")]
    BadPackage {
        file: String,
        package: String,
        reason: String,
    },
    /// A fetched file is not what its signed index says it is.
    #[error(
        "{file}: sha256 mismatch: expected {expected} ({expected_size} bytes), got {found} ({found_size} bytes)"
    )]
    BadHash {
        file: String,
        expected: Sha256,
        expected_size: u64,
        found: Sha256,
        found_size: u64,
    },
    /// The suite's Release file does not list an index strata needs.
    #[error("{release}: lists no index {index} (component {component}, architecture {arch})")]
    NoIndex {
        release: String,
        index: String,
        component: String,
        arch: String,
    },
    #[error("{url}: {reason}")]
    Fetch { url: String, reason: String },
    /// A locked file is neither in the cache nor on the mirror.
    #[error("package {package}: {file} is neither in the cache nor on the mirror ({reason})")]
    Unavailable {
        package: String,
        file: String,
        reason: String,
    },
    #[error("{file}: {reason}")]
    Decompress { file: String, reason: String },
    #[error("{deb}: {reason}")]
    BadDeb { deb: String, reason: String },
    #[error("{0}")]
    Resolve(#[from] resolve::ResolveError),
    /// A package request that is not `name[:arch]`, `name=version` or
    /// `name (op version)`.
    #[error("{0}")]
    Request(#[from] relation::BadRelation),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
