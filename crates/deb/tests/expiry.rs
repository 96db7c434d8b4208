//! Repository metadata that expires: a Release past its `Valid-Until` and
//! a signature by an expired key are refused, naming the file, the date and
//! the key; `Checks::valid_until` off accepts the former, as apt's
//! `check-valid-until=no` does. The keys are made by `gpg` with a faked
//! clock, the repository by `apt-ftparchive`, read through `file://`.
//!
//! SKIPPED (with the reason) where a tool is missing; a failure when the
//! `CI` variable is set.

use std::fs;
use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Utc};
use strata_deb::release::Checks;
use strata_deb::repo::{Fetcher, Repository, Source};
use strata_deb::{Error, Keyring};
use strata_testkit::debrepo::{build_deb, have_tools, index_and_sign, run, sign};

fn source(root: &Path) -> Source {
    Source {
        url: format!("file://{}", root.display()),
        suite: "stable".into(),
        components: vec!["main".into()],
        architectures: vec!["amd64".into()],
    }
}

/// Opens the repository; the error, if any.
fn open(root: &Path, key: &[u8], checks: &Checks) -> Result<(), Error> {
    let cache = tempfile::tempdir().unwrap();
    Repository::open_checked(
        &source(root),
        &Keyring::from_bytes("test.gpg", key).unwrap(),
        &mut Fetcher::new(cache.path()).unwrap(),
        checks,
    )
    .map(|_| ())
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn a_release_past_its_valid_until_is_refused_unless_told() {
    if !have_tools("a_release_past_its_valid_until_is_refused_unless_told") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (root, gnupg) = (tmp.path().join("repo"), tmp.path().join("gnupg"));
    build_deb(&root, "app", "1", "amd64", &[]);
    let key = index_and_sign(&root, &gnupg);
    let release = root.join("dists/stable/Release");
    let text = fs::read_to_string(&release).unwrap();
    fs::write(
        &release,
        format!("Valid-Until: Sat, 01 Jan 2022 00:00:00 UTC\n{text}"),
    )
    .unwrap();
    sign(&root, &gnupg);
    let e = open(&root, &key, &Checks::default()).unwrap_err();
    assert!(matches!(e, Error::Expired { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("dists/stable/InRelease") && msg.contains("Sat, 01 Jan 2022 00:00:00 UTC"),
        "{msg}"
    );
    // Before that date, and with the check off, it is fine.
    let before = Checks {
        now: at("2021-12-31T00:00:00Z"),
        ..Checks::default()
    };
    assert!(open(&root, &key, &before).is_ok());
    let off = Checks {
        valid_until: false,
        ..Checks::default()
    };
    assert!(open(&root, &key, &off).is_ok());
}

#[test]
fn a_signature_by_an_expired_key_is_refused_naming_the_key() {
    if !have_tools("a_signature_by_an_expired_key_is_refused_naming_the_key") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (root, gnupg) = (tmp.path().join("repo"), tmp.path().join("gnupg"));
    build_deb(&root, "app", "1", "amd64", &[]);
    index_and_sign(&root, &gnupg);
    // A key made on 1 January 2020 that expired a day later, and the
    // Release signed with it that morning.
    let old = tmp.path().join("old-gnupg");
    fs::create_dir_all(&old).unwrap();
    let mut perms = fs::metadata(&old).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
    fs::set_permissions(&old, perms).unwrap();
    let gpg = |time: &str, args: &[&str]| {
        run(Command::new("gpg")
            .env("GNUPGHOME", &old)
            .args(["--batch", "--quiet", "--faked-system-time", time])
            .args(args))
    };
    gpg(
        "20200101T000000",
        &[
            "--passphrase",
            "",
            "--quick-gen-key",
            "strata old <o@example.invalid>",
            "ed25519",
            "sign",
            "1d",
        ],
    );
    let inrelease = root.join("dists/stable/InRelease");
    fs::remove_file(&inrelease).unwrap();
    gpg(
        "20200101T060000",
        &[
            "--clearsign",
            "-o",
            inrelease.to_str().unwrap(),
            root.join("dists/stable/Release").to_str().unwrap(),
        ],
    );
    let key = gpg("20200101T070000", &["--export"]);
    let fingerprint = String::from_utf8(gpg("20200101T070000", &["--with-colons", "--list-keys"]))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_owned())
        })
        .unwrap();
    let e = open(&root, &key, &Checks::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, Error::ExpiredKey { .. })
            && msg.contains("InRelease")
            && msg.contains(&fingerprint)
            && msg.contains("2 Jan 2020"),
        "{msg}"
    );
    // While the key was valid, the same signature is good.
    let then = Checks {
        now: at("2020-01-01T12:00:00Z"),
        ..Checks::default()
    };
    assert!(open(&root, &key, &then).is_ok());
}
