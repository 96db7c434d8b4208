//! `--json` on every command that reports something: each prints one JSON
//! object on stdout that agrees with the text form and the files written.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::support::{index_digests, strata, strata_ok};

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not json ({e}):\n{s}"))
}

/// The subcommands that report something; `rootfs` (writes a directory),
/// `completions`, `man` (print a script or a page), `worker` (serves a
/// build farm until stopped, logging on stderr) and `help` do not.
const REPORTING: &[&[&str]] = &[
    &["compose"],
    &["lock"],
    &["diff"],
    &["squash"],
    &["commit"],
    &["plan"],
    &["inspect"],
    &["snapshot"],
    &["cache", "ls"],
    &["cache", "verify"],
    &["cache", "gc"],
    &["push"],
];

#[test]
fn every_reporting_command_takes_json() {
    let tmp = tempfile::tempdir().unwrap();
    for cmd in REPORTING {
        let mut args = cmd.to_vec();
        args.push("--help");
        let help = strata_ok(tmp.path(), &tmp.path().join("cache"), &args);
        assert!(
            help.contains("--json"),
            "strata {cmd:?} has no --json:\n{help}"
        );
    }
    // And the audit list is the whole list: every subcommand is in it or
    // named as not reporting.
    let help = strata_ok(tmp.path(), &tmp.path().join("cache"), &["--help"]);
    let commands = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap();
    for line in commands.lines().filter(|l| !l.starts_with("   ")) {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        assert!(
            REPORTING.iter().any(|c| c[0] == name)
                || ["rootfs", "import", "completions", "man", "worker", "help"].contains(&name),
            "`strata {name}`: does it report something? add it to REPORTING"
        );
    }
}

fn small_spec(dir: &Path) {
    fs::write(
        dir.join("app.kdl"),
        "epoch 1700000000\nimage app {\n    layer l { file \"/etc/motd\" \"hi\\n\" }\n    cmd \"/bin/true\"\n}\n",
    )
    .unwrap();
}

#[test]
fn json_of_plan_inspect_diff_and_lock_agrees_with_the_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cache = dir.join("cache");
    small_spec(dir);

    let lock = json(&strata_ok(
        dir,
        &cache,
        &["lock", "app.kdl", "-o", "lay", "--json"],
    ));
    assert_eq!(lock["written"], true);
    assert_eq!(lock["lock"], "app.lock");
    assert!(dir.join("app.lock").is_file());
    let digests = index_digests(&dir.join("lay"));
    assert_eq!(lock["images"][0]["name"], "app");
    assert_eq!(lock["images"][0]["manifest"], digests[0].1.as_str());
    let again = json(&strata_ok(
        dir,
        &cache,
        &["lock", "app.kdl", "-o", "lay", "--json"],
    ));
    assert_eq!(
        again["written"], false,
        "an up to date lock is not rewritten"
    );

    let plan = json(&strata_ok(dir, &cache, &["plan", "app.kdl", "--json"]));
    assert_eq!(plan["epoch"], 1_700_000_000);
    assert_eq!(plan["layers"][0]["name"], "app/l");
    let text = strata_ok(dir, &cache, &["plan", "app.kdl"]);
    let key = plan["layers"][0]["key"].as_str().unwrap();
    assert!(text.contains(&format!("[key {}]", &key[..16])), "{text}");
    assert_eq!(plan["images"][0]["platform"], "linux/amd64");
    let out = strata(dir, &cache, &["plan", "app.kdl", "--json", "--dot"]);
    assert_eq!(out.status.code(), Some(2), "--json and --dot conflict");

    let inspect = json(&strata_ok(
        dir,
        &cache,
        &["inspect", "lay:app", "--json", "--files"],
    ));
    let image = &inspect["images"][0];
    assert_eq!(image["manifest"], digests[0].1.as_str());
    assert_eq!(image["config"]["config"]["Cmd"][0], "/bin/true");
    assert_eq!(
        image["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    let files = image["layers"][0]["files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["path"] == "etc/motd" || f["path"] == "/etc/motd"),
        "{files:?}"
    );

    let same = strata(dir, &cache, &["diff", "lay", "app.lock", "--json"]);
    assert_eq!(same.status.code(), Some(0));
    assert_eq!(
        json(&String::from_utf8_lossy(&same.stdout))["identical"],
        true
    );
    fs::write(
        dir.join("app.kdl"),
        fs::read_to_string(dir.join("app.kdl"))
            .unwrap()
            .replace("hi", "bye"),
    )
    .unwrap();
    strata_ok(dir, &cache, &["compose", "app.kdl", "-o", "new", "-q"]);
    let compose = json(&strata_ok(
        dir,
        &cache,
        &["compose", "app.kdl", "-o", "new", "--json"],
    ));
    assert_eq!(compose["out"], "new");
    assert_eq!(
        compose["layout_unchanged"], true,
        "the same compose again leaves its layout alone"
    );
    assert_eq!(
        compose["images"][0]["manifest"],
        index_digests(&dir.join("new"))[0].1.as_str()
    );
    let differ = strata(dir, &cache, &["diff", "lay", "new", "--json"]);
    assert_eq!(differ.status.code(), Some(1));
    let d = json(&String::from_utf8_lossy(&differ.stdout));
    assert_eq!(d["identical"], false);
    assert!(
        d["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("etc/motd")),
        "{d}"
    );

    let squash = json(&strata_ok(
        dir,
        &cache,
        &["squash", "lay:app", "--tag", "flat", "--json"],
    ));
    assert_eq!(squash["name"], "flat");
    let flat = index_digests(&dir.join("lay"));
    assert!(
        flat.iter()
            .any(|(t, d)| t == "flat" && squash["manifest"] == d.as_str()),
        "{flat:?}"
    );
}

#[test]
fn json_of_snapshot_and_cache_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cache = dir.join("cache");
    small_spec(dir);

    let missing = strata(dir, &cache, &["snapshot", "app.kdl", "--json"]);
    assert_eq!(missing.status.code(), Some(1));
    let v = json(&String::from_utf8_lossy(&missing.stdout));
    assert_eq!(v["ok"], false);
    assert_eq!(v["snapshots"][0]["state"], "missing");
    let written = json(&strata_ok(
        dir,
        &cache,
        &["snapshot", "app.kdl", "--accept", "--json"],
    ));
    assert_eq!(written["snapshots"][0]["state"], "written");
    let path = written["snapshots"][0]["path"].as_str().unwrap();
    assert!(
        dir.join(path).is_file() || Path::new(path).is_file(),
        "{path}"
    );
    let same = json(&strata_ok(dir, &cache, &["snapshot", "app.kdl", "--json"]));
    assert_eq!(
        (same["ok"].clone(), same["snapshots"][0]["state"].clone()),
        (true.into(), "unchanged".into())
    );

    let ls = json(&strata_ok(dir, &cache, &["cache", "ls", "--json"]));
    let layers = ls["layers"].as_array().unwrap().len();
    assert!(layers >= 1);
    let verify = json(&strata_ok(dir, &cache, &["cache", "verify", "--json"]));
    assert_eq!(verify["checked"], layers);
    assert_eq!(verify["removed"].as_array().unwrap().len(), 0);
    let gc = json(&strata_ok(
        dir,
        &cache,
        &["cache", "gc", "--max-size", "0", "--json"],
    ));
    assert!(!gc["removed"].as_array().unwrap().is_empty(), "{gc}");
    assert!(gc["freed"].as_u64().unwrap() > 0, "{gc}");
}
