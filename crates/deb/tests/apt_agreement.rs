//! Resolution against apt itself: for each package set of a corpus, the
//! packages `apt-get -s install --no-install-recommends` would install on an
//! empty root, from the same suite of the same mirror, and the packages
//! strata resolves. Prints how many sets agree exactly and fails on any
//! that does not.
//!
//! Online: the mirror is the host's apt sources' first one (never named
//! here), the keyring Debian's archive keyring. SKIPPED without them or
//! without network; a failure when `CI` is set.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;

use strata_deb::Keyring;
use strata_deb::repo::{self, Fetcher, Repository, Source};
use strata_deb::resolve::{self, Request, Universe};

const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
const SUITE: &str = "bookworm";

const SETS: &[&str] = &[
    "openjdk-17-jre-headless",
    "tomcat10",
    "openjdk-17-jre-headless tomcat10",
    "python3",
    "nginx",
    "curl",
    "build-essential",
    "git",
    "vim",
    "postgresql",
    "apache2",
    "php",
    "nodejs",
    "ruby",
    "perl",
    "openssh-server",
    "ca-certificates",
    "wget",
    "gcc",
    "make",
    "libssl-dev",
    "python3-pip",
    "default-jre-headless",
    "redis-server",
    "mariadb-server",
    "emacs-nox",
    "sudo",
    "iproute2",
    "less",
    "jq",
    "rsync",
    "tzdata",
    "locales",
    "systemd",
    "imagemagick",
    "golang-go",
];

fn skip(test: &str, why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {why}, and CI must have it");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// apt's answer for each set, from an apt state of its own in `dir`.
fn apt_sets(dir: &Path, mirror: &str) -> Result<BTreeMap<&'static str, BTreeSet<String>>, String> {
    for d in ["state/lists/partial", "cache/archives/partial"] {
        fs::create_dir_all(dir.join(d)).map_err(|e| e.to_string())?;
    }
    fs::write(
        dir.join("sources.list"),
        format!("deb [signed-by={KEYRING}] {mirror} {SUITE} main\n"),
    )
    .map_err(|e| e.to_string())?;
    fs::write(dir.join("status"), "").map_err(|e| e.to_string())?;
    let d = dir.display();
    let conf = format!(
        "Dir::Etc::SourceList \"{d}/sources.list\";\nDir::Etc::SourceParts \"/nonexistent\";\nDir::Etc::Preferences \"/nonexistent\";\nDir::Etc::PreferencesParts \"/nonexistent\";\nDir::State \"{d}/state\";\nDir::State::status \"{d}/status\";\nDir::Cache \"{d}/cache\";\nAPT::Architecture \"amd64\";\nAPT::Architectures {{ \"amd64\"; }};\nDebug::NoLocking \"1\";\nAPT::Install-Recommends \"0\";\nAcquire::Languages \"none\";\n"
    );
    fs::write(dir.join("apt.conf"), conf).map_err(|e| e.to_string())?;
    let apt = || {
        let mut c = Command::new("apt-get");
        c.env("APT_CONFIG", dir.join("apt.conf"));
        c
    };
    let up = apt()
        .args(["-q", "update"])
        .output()
        .map_err(|e| e.to_string())?;
    if !up.status.success() || String::from_utf8_lossy(&up.stdout).contains("Err:") {
        return Err(format!(
            "apt-get update failed: {}",
            String::from_utf8_lossy(&up.stdout)
        ));
    }
    let mut out = BTreeMap::new();
    for set in SETS {
        let o = apt()
            .args(["-s", "install"])
            .args(set.split_whitespace())
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&o.stdout);
        let pkgs = text
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some("Inst")).then(|| {
                    let name = w.next().unwrap_or("");
                    let v = w.next().unwrap_or("").trim_start_matches('(');
                    format!("{name}={v}")
                })
            })
            .collect();
        out.insert(*set, pkgs);
    }
    Ok(out)
}

#[test]
fn resolution_agrees_with_apt() {
    let test = "resolution_agrees_with_apt";
    let Some(mirror) = repo::host_mirrors(Path::new("/"))
        .into_iter()
        .find(|u| u.starts_with("http"))
    else {
        return skip(test, "the host has no apt sources with an http mirror");
    };
    if !Path::new(KEYRING).exists() || Command::new("apt-get").arg("--version").output().is_err() {
        return skip(test, "apt-get or the Debian archive keyring is missing");
    }
    let tmp = tempfile::tempdir().unwrap();
    let keyring = Keyring::from_bytes(KEYRING, &fs::read(KEYRING).unwrap()).unwrap();
    let source = Source {
        url: mirror.clone(),
        suite: SUITE.into(),
        components: vec!["main".into()],
        architectures: vec!["amd64".into()],
    };
    let mut fetcher = Fetcher::new(&tmp.path().join("cache")).unwrap();
    let repo = match Repository::open(&source, &keyring, &mut fetcher) {
        Ok(r) => r,
        Err(e @ strata_deb::Error::Fetch { .. }) => {
            return skip(test, &format!("the mirror is unreachable: {e}"));
        }
        Err(e) => panic!("{e}"),
    };
    let apt = match apt_sets(&tmp.path().join("apt"), &mirror) {
        Ok(a) => a,
        Err(e) => return skip(test, &e),
    };
    let u = Universe::new(repo.packages, "amd64");
    let mut agree = 0;
    let mut differ = Vec::new();
    for set in SETS {
        let reqs: Vec<Request> = set
            .split_whitespace()
            .map(|r| Request::parse(r).unwrap())
            .collect();
        let ours: BTreeSet<String> = match resolve::resolve(&u, &[], &reqs) {
            Ok(r) => r
                .packages
                .iter()
                .map(|p| format!("{}={}", p.name, p.version))
                .collect(),
            Err(e) => BTreeSet::from([format!("error: {e}")]),
        };
        if ours == apt[set] {
            agree += 1;
        } else {
            differ.push(format!(
                "{set}: only strata {:?}, only apt {:?}",
                ours.difference(&apt[set]).collect::<Vec<_>>(),
                apt[set].difference(&ours).collect::<Vec<_>>()
            ));
        }
    }
    eprintln!(
        "apt agreement: {agree} of {} package sets give exactly apt's set",
        SETS.len()
    );
    assert!(differ.is_empty(), "{differ:#?}");
}
