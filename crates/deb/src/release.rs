//! A suite's `InRelease` file: its OpenPGP cleartext signature checked
//! against a keyring, then its fields and the sha256 list of the indexes it
//! vouches for.
//!
//! Only the signed text is ever parsed: the Release fields come out of the
//! verified message, never from the bytes around it, so text added outside
//! the signature cannot change what is trusted. The keyring is a file of
//! OpenPGP public keys, binary (`.gpg`, as `/usr/share/keyrings/*.gpg`) or
//! ASCII-armored (`.asc`); a signature made by a key's primary key or by one
//! of its subkeys counts, unless that key has expired (an error naming the
//! key and the date); revocation is not checked (apt checks it through
//! gpgv). A Release whose `Valid-Until` is past is refused (naming the file
//! and the date) unless [`Checks::valid_until`] is off, as apt's
//! `check-valid-until=no` allows: a mirror serving an old, validly signed
//! Release would otherwise hold back security updates unseen.

use std::collections::BTreeMap;
use std::io::Cursor;

use chrono::{DateTime, Utc};
use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};
use pgp::types::{KeyDetails, PublicKeyTrait};

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
    /// `Valid-Until`, as written (RFC 2822).
    pub valid_until: Option<String>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// Whether indexes may be fetched by their hash (`by-hash/SHA256/...`).
    pub acquire_by_hash: bool,
    /// Paths relative to the suite's directory (`main/binary-amd64/Packages.xz`).
    pub files: BTreeMap<String, IndexFile>,
}

/// What an `InRelease` is checked against besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct Checks {
    /// Refuse a Release whose `Valid-Until` is before `now` (apt's
    /// `check-valid-until`, on by default).
    pub valid_until: bool,
    /// The time keys' expiry and `Valid-Until` are checked at.
    pub now: DateTime<Utc>,
}

impl Default for Checks {
    fn default() -> Checks {
        Checks {
            valid_until: true,
            now: Utc::now(),
        }
    }
}

/// Checks an `InRelease` file's signature against `keyring` and parses the
/// signed text. `file` names the file in errors (its URL or path).
pub fn verify_inrelease(file: &str, bytes: &[u8], keyring: &Keyring) -> Result<Release, Error> {
    verify_inrelease_checked(file, bytes, keyring, &Checks::default())
}

/// A key that verified a signature: its fingerprint (hex) and when it
/// expires, if it does.
struct Signer {
    fingerprint: String,
    expires: Option<DateTime<Utc>>,
}

/// [`verify_inrelease`] with `checks`: a signature counts only by a key
/// not expired at `checks.now`, and the Release's `Valid-Until` must not
/// be past when `checks.valid_until`.
pub fn verify_inrelease_checked(
    file: &str,
    bytes: &[u8],
    keyring: &Keyring,
    checks: &Checks,
) -> Result<Release, Error> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::BadSignature {
        file: file.to_owned(),
        reason: "the file is not UTF-8 text".into(),
    })?;
    let (msg, _) = CleartextSignedMessage::from_string(text).map_err(|e| Error::BadSignature {
        file: file.to_owned(),
        reason: format!("not an OpenPGP cleartext signed message: {e}"),
    })?;
    let signed = msg.signed_text();
    let mut signers = Vec::new();
    for sig in msg.signatures() {
        for k in &keyring.keys {
            if sig.verify(&k.primary_key, signed.as_bytes()).is_ok() {
                signers.push(Signer {
                    fingerprint: hex::encode_upper(k.primary_key.fingerprint().as_bytes()),
                    expires: k.expires_at(),
                });
            }
            for s in &k.public_subkeys {
                if s.key.is_signing_key() && sig.verify(&s.key, signed.as_bytes()).is_ok() {
                    // A subkey expires by its binding signature, and with
                    // its primary key.
                    let own = s
                        .signatures
                        .iter()
                        .filter_map(|b| b.key_expiration_time())
                        .max()
                        .map(|d| *s.key.created_at() + *d);
                    let expires = match (own, k.expires_at()) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    signers.push(Signer {
                        fingerprint: hex::encode_upper(s.key.fingerprint().as_bytes()),
                        expires,
                    });
                }
            }
        }
    }
    if signers.is_empty() {
        return Err(Error::BadSignature {
            file: file.to_owned(),
            reason: format!(
                "none of its {} signature(s) verifies with a key of the keyring",
                msg.signatures().len()
            ),
        });
    }
    let live = |s: &Signer| s.expires.is_none_or(|e| e > checks.now);
    if !signers.iter().any(live) {
        let s = &signers[0];
        return Err(Error::ExpiredKey {
            file: file.to_owned(),
            key: s.fingerprint.clone(),
            expired: s.expires.map(|e| e.to_rfc2822()).unwrap_or_default(),
        });
    }
    // Exactly the text that was verified is parsed (dash-unescaped, with
    // CRLF line ends that the control parser takes as LF).
    let release = parse_release(file, &signed)?;
    if checks.valid_until {
        check_valid_until(file, &release, checks.now)?;
    }
    Ok(release)
}

/// Refuses a Release whose `Valid-Until` is before `now` (or unreadable).
pub fn check_valid_until(file: &str, release: &Release, now: DateTime<Utc>) -> Result<(), Error> {
    let Some(v) = &release.valid_until else {
        return Ok(());
    };
    // Release files write `UTC`, which RFC 2822 spells `+0000`.
    let normalized = v.trim().replace(" UTC", " +0000");
    let until = DateTime::parse_from_rfc2822(&normalized).map_err(|e| Error::BadRelease {
        file: file.to_owned(),
        reason: format!("Valid-Until {v:?} is not a date: {e}"),
    })?;
    if until < now {
        return Err(Error::Expired {
            file: file.to_owned(),
            valid_until: v.trim().to_owned(),
        });
    }
    Ok(())
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
        valid_until: p.get("Valid-Until").map(str::to_owned),
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
    fn valid_until_is_honoured() {
        let r = parse_release(
            "R",
            "Valid-Until: Sat, 01 Jan 2022 00:00:00 UTC\nSHA256:\n 0000000000000000000000000000000000000000000000000000000000000001 12 a\n",
        )
        .unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let e = check_valid_until("dists/x/InRelease", &r, at("2022-01-02T00:00:00Z"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dists/x/InRelease") && e.contains("Sat, 01 Jan 2022 00:00:00 UTC"),
            "{e}"
        );
        assert!(check_valid_until("R", &r, at("2021-12-31T23:59:59Z")).is_ok());
        let bad = Release {
            valid_until: Some("soon".into()),
            ..r
        };
        assert!(matches!(
            check_valid_until("R", &bad, at("2021-01-01T00:00:00Z")),
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
