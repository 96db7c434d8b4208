//! A suite's `InRelease` file: its OpenPGP cleartext signature checked
//! against a keyring, then its fields and the sha256 list of the indexes it
//! vouches for.
//!
//! Only the signed text is ever parsed: the Release fields come out of the
//! verified message, never from the bytes around it, so text added outside
//! the signature cannot change what is trusted. The keyring is a file of
//! OpenPGP public keys, binary (`.gpg`, as `/usr/share/keyrings/*.gpg`) or
//! ASCII-armored (`.asc`); a signature made by a key's primary key or by one
//! of its subkeys counts. Key expiry and revocation are not checked (apt
//! checks them through gpgv); the signature itself is.

use std::collections::BTreeMap;
use std::io::Cursor;

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};
use pgp::types::PublicKeyTrait;

use crate::control;
use crate::{Error, Sha256};

/// The public keys a repository's signature must come from.
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

impl Keyring {
    /// Reads a keyring's bytes; `name` is for error messages.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Keyring, Error> {
        let bad = |reason: String| Error::BadKeyring {
            keyring: name.to_owned(),
            reason,
        };
        let armored = bytes.starts_with(b"-----BEGIN");
        let iter: Box<dyn Iterator<Item = pgp::errors::Result<SignedPublicKey>>> = if armored {
            SignedPublicKey::from_armor_many(Cursor::new(bytes))
                .map_err(|e| bad(e.to_string()))?
                .0
        } else {
            SignedPublicKey::from_bytes_many(Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?
        };
        let mut keys = Vec::new();
        for k in iter {
            keys.push(k.map_err(|e| bad(e.to_string()))?);
        }
        if keys.is_empty() {
            return Err(bad("it holds no public key".into()));
        }
        Ok(Keyring { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// One index a Release file lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    pub sha256: Sha256,
    pub size: u64,
}

/// The verified fields of a Release file.
#[derive(Debug, Clone)]
pub struct Release {
    pub suite: Option<String>,
    pub codename: Option<String>,
    pub origin: Option<String>,
    pub date: Option<String>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// Whether indexes may be fetched by their hash (`by-hash/SHA256/...`).
    pub acquire_by_hash: bool,
    /// Paths relative to the suite's directory (`main/binary-amd64/Packages.xz`).
    pub files: BTreeMap<String, IndexFile>,
}

/// Checks an `InRelease` file's signature against `keyring` and parses the
/// signed text. `file` names the file in errors (its URL or path).
pub fn verify_inrelease(file: &str, bytes: &[u8], keyring: &Keyring) -> Result<Release, Error> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::BadSignature {
        file: file.to_owned(),
        reason: "the file is not UTF-8 text".into(),
    })?;
    let (msg, _) = CleartextSignedMessage::from_string(text).map_err(|e| Error::BadSignature {
        file: file.to_owned(),
        reason: format!("not an OpenPGP cleartext signed message: {e}"),
    })?;
    let signed = msg.signed_text();
    let good = msg.signatures().iter().any(|sig| {
        keyring.keys.iter().any(|k| {
            sig.verify(&k.primary_key, signed.as_bytes()).is_ok()
                || k.public_subkeys.iter().any(|s| {
                    s.key.is_signing_key() && sig.verify(&s.key, signed.as_bytes()).is_ok()
                })
        })
    });
    if !good {
        return Err(Error::BadSignature {
            file: file.to_owned(),
            reason: format!(
                "none of its {} signature(s) verifies with a key of the keyring",
                msg.signatures().len()
            ),
        });
    }
    // Exactly the text that was verified is parsed (dash-unescaped, with
    // CRLF line ends that the control parser takes as LF).
    parse_release(file, &signed)
}

/// Parses a Release file's text (already verified).
pub fn parse_release(file: &str, text: &str) -> Result<Release, Error> {
    let paras = control::parse(text).map_err(|e| Error::Control {
        file: file.to_owned(),
        source: e,
    })?;
    let [p] = paras.as_slice() else {
        return Err(Error::BadRelease {
            file: file.to_owned(),
            reason: format!("a Release file is one paragraph, this has {}", paras.len()),
        });
    };
    let words = |f: &str| -> Vec<String> {
        p.get(f)
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let Some(sums) = p.get("SHA256") else {
        return Err(Error::BadRelease {
            file: file.to_owned(),
            reason:
                "it has no SHA256 field (a repository signed only with MD5 or SHA1 is not trusted)"
                    .into(),
        });
    };
    let mut files = BTreeMap::new();
    for line in control::lines(sums) {
        let bad = || Error::BadRelease {
            file: file.to_owned(),
            reason: format!("a SHA256 line is not `HASH SIZE PATH`: {line:?}"),
        };
        let mut it = line.split_whitespace();
        let (Some(h), Some(s), Some(path), None) = (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(bad());
        };
        let sha256 = Sha256::from_hex(h).ok_or_else(bad)?;
        let size = s.parse::<u64>().map_err(|_| bad())?;
        files.insert(path.to_owned(), IndexFile { sha256, size });
    }
    Ok(Release {
        suite: p.get("Suite").map(str::to_owned),
        codename: p.get("Codename").map(str::to_owned),
        origin: p.get("Origin").map(str::to_owned),
        date: p.get("Date").map(str::to_owned),
        architectures: words("Architectures"),
        components: words("Components"),
        acquire_by_hash: p
            .get("Acquire-By-Hash")
            .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_fields() {
        let text = "Origin: Debian\nSuite: stable\nCodename: bookworm\nArchitectures: amd64 arm64\nComponents: main contrib\nAcquire-By-Hash: yes\nSHA256:\n 0000000000000000000000000000000000000000000000000000000000000001 12 main/binary-amd64/Packages.xz\n";
        let r = parse_release("R", text).unwrap();
        assert_eq!(r.codename.as_deref(), Some("bookworm"));
        assert_eq!(r.architectures, ["amd64", "arm64"]);
        assert!(r.acquire_by_hash);
        assert_eq!(r.files["main/binary-amd64/Packages.xz"].size, 12);
    }

    #[test]
    fn release_refused() {
        assert!(matches!(
            parse_release("R", "Suite: x\nMD5Sum:\n 00 1 a\n"),
            Err(Error::BadRelease { .. })
        ));
        assert!(matches!(
            parse_release("R", "SHA256:\n zz 1 a\n"),
            Err(Error::BadRelease { .. })
        ));
    }

    #[test]
    fn garbage_is_a_bad_signature() {
        let k = Keyring { keys: Vec::new() };
        assert!(matches!(
            verify_inrelease("InRelease", b"Suite: x\n", &k),
            Err(Error::BadSignature { .. })
        ));
        assert!(matches!(
            verify_inrelease("InRelease", &[0xff, 0xfe], &k),
            Err(Error::BadSignature { .. })
        ));
    }
}
