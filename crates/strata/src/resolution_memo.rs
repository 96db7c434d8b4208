//! Resolutions remembered: a `packages` layer resolved once against a
//! repository's indexes is not resolved again while the indexes, the
//! requests and the packages below it are the same.
//!
//! Reading the indexes is most of a warm compose's time when the layers
//! themselves are cached: bookworm's main index is about 45 MB of text,
//! decompressed from xz and parsed on every compose only to give the same
//! set again (a profile of tomcat-debian with every layer a hit had 64% of
//! the CPU in opening the repository and 15% in dropping the parsed
//! index). The `InRelease` is still fetched and verified every time, so a
//! mirror that moves on (new index hashes) is seen at once: the memo's key
//! holds the hashes the verified Release gives for the indexes read.
//!
//! What a resolution depends on, and so the key: the indexes (their paths
//! and sha256, which the signed Release vouches for), the architectures
//! (the first is native) and components, the layer's requests as the spec
//! writes them (`required` and each package string, in order), the
//! packages installed below it (their lock lines, in install order: what
//! dpkg's status below says is derived from those `.deb`s alone), and the
//! resolver's version. The value is the set as lock lines, the form
//! `compose --locked` installs; the packages are fetched and checked
//! against those hashes as any locked set is.
//!
//! Entries live in the package cache (`debs-v1/resolved-v1/KEY`), written
//! to a temporary name and renamed; an entry that does not read back as
//! lock lines is a miss.

use std::path::{Path, PathBuf};

use crate::packages::LockedPackage;

/// Bump when the resolver can give another set for the same inputs, or
/// when the key's parts change.
const MEMO_VERSION: &str = "resolved-v1";

/// The key of one layer's resolution.
pub(crate) struct MemoKey(blake3::Hasher);

impl MemoKey {
    /// Starts a key from the repository's identity (see [`identity`]).
    pub(crate) fn new(identity: &[u8; 32]) -> MemoKey {
        let mut h = blake3::Hasher::new();
        h.update(MEMO_VERSION.as_bytes());
        h.update(identity);
        MemoKey(h)
    }

    /// Adds one string part, length-prefixed so that parts cannot run
    /// into each other.
    pub(crate) fn part(&mut self, kind: &str, value: &str) {
        for s in [kind, value] {
            self.0.update(&(s.len() as u64).to_le_bytes());
            self.0.update(s.as_bytes());
        }
    }

    fn hex(&self) -> String {
        self.0.finalize().to_hex().to_string()
    }
}

/// What a repository's resolutions read: its components and architectures
/// and the index files the verified Release names for them.
pub(crate) fn identity(
    source: &strata_deb::repo::Source,
    indexes: &[strata_deb::repo::IndexRef],
) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    let mut put = |s: &str| {
        h.update(&(s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    for c in &source.components {
        put("component");
        put(c);
    }
    for a in &source.architectures {
        put("architecture");
        put(a);
    }
    for i in indexes {
        put("index");
        put(&i.path);
        put(&i.sha256.hex());
        put(&i.size.to_string());
    }
    *h.finalize().as_bytes()
}

fn dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("debs-v1").join(MEMO_VERSION)
}

/// The set remembered under `key`, if any.
pub(crate) fn get(cache_dir: &Path, key: &MemoKey) -> Option<Vec<LockedPackage>> {
    let text = std::fs::read_to_string(dir(cache_dir).join(key.hex())).ok()?;
    text.lines().map(LockedPackage::parse).collect()
}

/// Remembers `set` under `key`. A failure to write is not an error: the
/// next compose resolves again.
pub(crate) fn put(cache_dir: &Path, key: &MemoKey, set: &[LockedPackage]) {
    use std::io::Write as _;
    let d = dir(cache_dir);
    let _ = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(&d)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&d)?;
        for p in set {
            writeln!(tmp, "{}", p.line())?;
        }
        tmp.persist(d.join(key.hex()))?;
        Ok(())
    })();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_every_part_and_entries_round_trip() {
        let id = [1u8; 32];
        let key = |parts: &[(&str, &str)]| {
            let mut k = MemoKey::new(&id);
            for (a, b) in parts {
                k.part(a, b);
            }
            k.hex()
        };
        assert_eq!(key(&[("request", "a")]), key(&[("request", "a")]));
        assert_ne!(key(&[("request", "a")]), key(&[("request", "b")]));
        assert_ne!(
            key(&[("request", "ab")]),
            key(&[("request", "a"), ("", "b")])
        );
        assert_ne!(MemoKey::new(&[2; 32]).hex(), MemoKey::new(&id).hex());

        let tmp = tempfile::tempdir().unwrap();
        let mut k = MemoKey::new(&id);
        k.part("request", "app");
        assert!(get(tmp.path(), &k).is_none());
        let p = LockedPackage {
            name: "app".into(),
            version: "1.0".into(),
            arch: "amd64".into(),
            sha256: "ab".repeat(32),
            size: 10,
            filename: "pool/main/a/app/app_1.0_amd64.deb".into(),
        };
        put(tmp.path(), &k, std::slice::from_ref(&p));
        assert_eq!(get(tmp.path(), &k), Some(vec![p]));
        // Junk is a miss, not a set.
        std::fs::write(dir(tmp.path()).join(k.hex()), "junk\n").unwrap();
        assert!(get(tmp.path(), &k).is_none());
    }
}
