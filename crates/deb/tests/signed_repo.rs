//! A signed repository made for the test (packages by `dpkg-deb`, indexes by
//! `apt-ftparchive`, `InRelease` signed by a key `gpg` makes in a temporary
//! home), read through `file://`: the chain of trust from signature to
//! `.deb`, resolution over real indexes, and each way it must fail.
//!
//! SKIPPED (with the reason) where a tool is missing; a failure when the
//! `CI` variable is set.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use strata_deb::debfile::DebFile;
use strata_deb::repo::{self, Fetcher, Repository, Source};
use strata_deb::resolve::{self, Request, Universe};
use strata_deb::{Error, Keyring, status};
use strata_testkit::debrepo::{build_deb, have_tools, index_and_sign};

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A test repository on disk.
struct Repo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    keyring: Vec<u8>,
}

impl Repo {
    fn new() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        let gnupg = tmp.path().join("gnupg");
        build_deb(
            &root,
            "app",
            "1.0-1",
            "amd64",
            &[
                "Depends: lib (>= 1.5) | altlib, java-runtime (>= 17), helper",
                "Pre-Depends: base",
            ],
        );
        build_deb(&root, "lib", "1.0", "amd64", &[]);
        build_deb(&root, "lib", "2.0", "amd64", &["Multi-Arch: same"]);
        build_deb(&root, "altlib", "1", "amd64", &[]);
        build_deb(
            &root,
            "jre11",
            "11",
            "amd64",
            &["Provides: java-runtime (= 11)"],
        );
        build_deb(
            &root,
            "jre17",
            "17.0.13",
            "amd64",
            &["Provides: java-runtime (= 17)"],
        );
        build_deb(&root, "helper", "3", "all", &["Multi-Arch: foreign"]);
        build_deb(&root, "base", "1", "amd64", &["Essential: yes"]);
        let keyring = index_and_sign(&root, &gnupg);
        Repo {
            _tmp: tmp,
            root,
            keyring,
        }
    }

    fn source(&self) -> Source {
        Source {
            url: format!("file://{}", self.root.display()),
            suite: "stable".into(),
            components: vec!["main".into()],
            architectures: vec!["amd64".into()],
        }
    }

    fn keyring(&self) -> Keyring {
        Keyring::from_bytes("test.gpg", &self.keyring).unwrap()
    }

    fn open(&self, cache: &Path) -> Result<Repository, Error> {
        Repository::open(
            &self.source(),
            &self.keyring(),
            &mut Fetcher::new(cache).unwrap(),
        )
    }
}

#[test]
fn resolves_fetches_and_reads_a_signed_repository() {
    if !have_tools("resolves_fetches_and_reads_a_signed_repository") {
        return;
    }
    let r = Repo::new();
    let cache = tempfile::tempdir().unwrap();
    let repo = r.open(cache.path()).unwrap();
    assert_eq!(repo.release.codename.as_deref(), Some("test"));
    assert_eq!(repo.packages.len(), 8);
    let u = Universe::new(repo.packages.clone(), repo.native());
    let got = resolve::resolve(&u, &[], &[Request::parse("app").unwrap()]).unwrap();
    let names: Vec<String> = got
        .packages
        .iter()
        .map(|p| format!("{}={}", p.name, p.version))
        .collect();
    assert_eq!(
        names,
        [
            "app=1.0-1",
            "base=1",
            "helper=3",
            "jre17=17.0.13",
            "lib=2.0"
        ]
    );
    // A pin on lib makes the first alternative fail, so altlib.
    let got = resolve::resolve(
        &u,
        &[],
        &[
            Request::parse("app").unwrap(),
            Request::parse("lib=1.0").unwrap(),
        ],
    )
    .unwrap();
    assert!(got.packages.iter().any(|p| p.name == "altlib"));

    let mut fetcher = Fetcher::new(cache.path()).unwrap();
    let mut entries = Vec::new();
    for p in &got.packages {
        let url = repo.source.file_url(&p.filename);
        let path = repo::fetch_deb(&mut fetcher, &p.name, &url, &p.sha256, p.size).unwrap();
        assert_eq!(path, fetcher.cache_path(&p.sha256));
        let mut deb = DebFile::open(&path, &p.filename).unwrap();
        assert_eq!(deb.data_compression(), "xz");
        let control = deb.control().unwrap();
        entries.push(status::entry(&p.filename, &control.control).unwrap());
        let mut data = Vec::new();
        deb.copy_data(&mut data).unwrap();
        let tar = repo::decompress(data.as_slice(), "xz", 1 << 20).unwrap();
        let want = format!("usr/share/{}/{}", p.name, p.version);
        assert!(
            String::from_utf8_lossy(&tar).contains(&want),
            "{want} in the data of {}",
            p.name
        );
    }
    let text = status::write(&entries);
    let back = status::read("status", &text).unwrap();
    assert_eq!(back.len(), got.packages.len());

    // Offline: the cache alone serves a locked set; what it lacks is an
    // error naming the package.
    let mut offline = Fetcher::new(cache.path()).unwrap();
    offline.online = false;
    let p = &got.packages[0];
    let url = format!("http://mirror.invalid/{}", p.filename);
    repo::fetch_deb(&mut offline, &p.name, &url, &p.sha256, p.size).unwrap();
    let other = repo.packages.iter().find(|p| p.name == "jre11").unwrap();
    let url = format!("http://mirror.invalid/{}", other.filename);
    match repo::fetch_deb(&mut offline, &other.name, &url, &other.sha256, other.size) {
        Err(e @ Error::Unavailable { .. }) => {
            assert!(e.to_string().contains("package jre11"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_bad_signature_or_another_key_is_refused_naming_the_file() {
    if !have_tools("a_bad_signature_or_another_key_is_refused_naming_the_file") {
        return;
    }
    let r = Repo::new();
    let cache = tempfile::tempdir().unwrap();
    let inrelease = r.root.join("dists/stable/InRelease");
    let good = fs::read_to_string(&inrelease).unwrap();

    // One changed byte of the signed text.
    fs::write(
        &inrelease,
        good.replacen("Codename: test", "Codename: tesu", 1),
    )
    .unwrap();
    match r.open(cache.path()) {
        Err(e @ Error::BadSignature { .. }) => {
            assert!(e.to_string().contains("dists/stable/InRelease"), "{e}")
        }
        other => panic!("{:?}", other.err()),
    }
    // A text added outside the signature is not read.
    let outside = format!(
        "{good}\nSHA256:\n {} 1 main/binary-amd64/Packages.xz\n",
        "0".repeat(64)
    );
    fs::write(&inrelease, outside).unwrap();
    if let Ok(repo) = r.open(cache.path()) {
        assert_eq!(repo.packages.len(), 8);
    }
    // Signed by a key that is not in the keyring.
    fs::write(&inrelease, &good).unwrap();
    let other = tempfile::tempdir().unwrap();
    run(Command::new("gpg").env("GNUPGHOME", other.path()).args([
        "--batch",
        "--quiet",
        "--passphrase",
        "",
        "--quick-gen-key",
        "other <o@example.invalid>",
        "ed25519",
        "sign",
        "never",
    ]));
    let other_key = run(Command::new("gpg")
        .env("GNUPGHOME", other.path())
        .args(["--batch", "--export"]));
    let k = Keyring::from_bytes("other.gpg", &other_key).unwrap();
    match Repository::open(&r.source(), &k, &mut Fetcher::new(cache.path()).unwrap()) {
        Err(e @ Error::BadSignature { .. }) => {
            assert!(e.to_string().contains("verifies with a key"), "{e}")
        }
        other => panic!("{:?}", other.err()),
    }
    // Not signed at all.
    fs::copy(r.root.join("dists/stable/Release"), &inrelease).unwrap();
    assert!(matches!(
        r.open(cache.path()),
        Err(Error::BadSignature { .. })
    ));
    // A keyring that is not one.
    assert!(matches!(
        Keyring::from_bytes("junk.gpg", b"junk"),
        Err(Error::BadKeyring { .. })
    ));
}

#[test]
fn a_changed_index_or_deb_is_refused_naming_the_file() {
    if !have_tools("a_changed_index_or_deb_is_refused_naming_the_file") {
        return;
    }
    let r = Repo::new();
    let cache = tempfile::tempdir().unwrap();
    let repo = r.open(cache.path()).unwrap();

    // A .deb swapped on the mirror after the index was signed.
    let p = repo.packages.iter().find(|p| p.name == "helper").unwrap();
    let deb = r.root.join(&p.filename);
    let mut bytes = fs::read(&deb).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&deb, &bytes).unwrap();
    let mut fetcher = Fetcher::new(cache.path()).unwrap();
    let url = repo.source.file_url(&p.filename);
    match repo::fetch_deb(&mut fetcher, &p.name, &url, &p.sha256, p.size) {
        Err(e @ Error::BadHash { .. }) => {
            assert!(e.to_string().contains("helper_3_all.deb"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !fetcher.cache_path(&p.sha256).exists(),
        "nothing unverified is cached"
    );

    // An index changed without a new signature.
    let bin = r.root.join("dists/stable/main/binary-amd64");
    let text = repo::decompress(
        fs::File::open(bin.join("Packages.xz")).unwrap(),
        "xz",
        1 << 20,
    )
    .unwrap();
    let changed = String::from_utf8(text)
        .unwrap()
        .replace("Version: 17.0.13", "Version: 99");
    fs::write(bin.join("Packages"), changed).unwrap();
    fs::remove_file(bin.join("Packages.xz")).unwrap();
    run(Command::new("xz").arg(bin.join("Packages")));
    let fresh = tempfile::tempdir().unwrap();
    match r.open(fresh.path()) {
        Err(e @ Error::BadHash { .. }) => {
            assert!(
                e.to_string().contains("main/binary-amd64/Packages.xz"),
                "{e}"
            )
        }
        other => panic!("{:?}", other.err()),
    }
    // The cache of the first open still holds the good index: opening with
    // it reads that, never the changed file.
    assert_eq!(r.open(cache.path()).unwrap().packages.len(), 8);
}

#[test]
fn a_hostile_deb_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("x.deb");
    for bytes in [
        &b""[..],
        b"!<arch>\n",
        b"!<arch>\ndebian-binary   0           0     0     100644  99999999  `\n2.0\n",
        b"!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n",
        b"!<arch>\ndebian-binary   0           0     0     100644  4         `\n3.0\n",
        b"!<arch>\ndebian-binary   0           0     0     100644  zz        `\n2.0\n",
        b"not an archive at all",
    ] {
        fs::write(&p, bytes).unwrap();
        assert!(
            matches!(DebFile::open(&p, "x.deb"), Err(Error::BadDeb { .. })),
            "{bytes:?}"
        );
    }
}
