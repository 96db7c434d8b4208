//! Build arguments (issue 19): `arg NAME="default"` in a spec, `--arg
//! NAME=VALUE` on the command line, substituted where a Dockerfile
//! substitutes ARG, part of the key of what uses them (and only of that),
//! recorded in the lock; an unknown `--arg` is a usage error with a
//! did-you-mean.

use std::fs;
use std::path::Path;

use crate::support::{strata, strata_ok};
use crate::union::layer_files;

const SPEC: &str = r#"arg VERSION="1.0"
arg EDITION
image app {
    layer plain { file "/etc/motd" "hello" }
    layer versioned {
        file "/opt/app-${VERSION}/edition" "x"
        mkdir "/srv/$EDITION-data"
    }
    env APP_VERSION="$VERSION" PATH="/bin:$PATH"
    label version="v$VERSION"
    workdir "/opt/app-$VERSION"
}
"#;

fn compose_json(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["compose", "s.kdl", "--out", "out", "--json"];
    args.extend_from_slice(extra);
    let out = strata_ok(dir, &dir.join("cache"), &args);
    serde_json::from_str(&out).expect("json report")
}

/// The cache status of each layer of the report's one image.
fn statuses(report: &serde_json::Value) -> Vec<String> {
    report["images"][0]["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["cache"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn config(dir: &Path) -> serde_json::Value {
    let out = strata_ok(dir, &dir.join("cache"), &["inspect", "out:app", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["images"][0]["config"]["config"].clone()
}

#[test]
fn defaults_and_given_values_are_substituted_and_keyed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(dir.join("s.kdl"), SPEC).unwrap();

    let report = compose_json(dir, &[]);
    assert_eq!(report["args"]["VERSION"], "1.0", "{report}");
    assert_eq!(report["args"]["EDITION"], "", "no default: empty");
    let inspect = strata_ok(dir, &dir.join("cache"), &["inspect", "out:app", "--files"]);
    let layer = layer_files(&inspect, 2);
    assert!(layer.contains("/opt/app-1.0/edition file"), "{layer}");
    assert!(layer.contains("/srv/-data/ dir"), "{layer}");
    let c = config(dir);
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(env.contains(&"APP_VERSION=1.0"), "{env:?}");
    // `$PATH` is not an argument: the environment's, as before.
    assert!(env.iter().any(|e| e.starts_with("PATH=/bin:")), "{env:?}");
    assert_eq!(c["WorkingDir"], "/opt/app-1.0");
    assert_eq!(c["Labels"]["version"], "v1.0");

    let report = compose_json(dir, &["--arg", "VERSION=2.0", "--arg", "EDITION=pro"]);
    assert_eq!(
        statuses(&report),
        ["hit", "miss", "miss"],
        "only the layers that use the argument are rebuilt (the last makes the workdir): {report}"
    );
    let inspect = strata_ok(dir, &dir.join("cache"), &["inspect", "out:app", "--files"]);
    let layer = layer_files(&inspect, 2);
    assert!(layer.contains("/opt/app-2.0/edition file"), "{layer}");
    assert!(layer.contains("/srv/pro-data/ dir"), "{layer}");
    assert_eq!(config(dir)["WorkingDir"], "/opt/app-2.0");

    // The lock records every argument's value.
    strata_ok(
        dir,
        &dir.join("cache"),
        &[
            "lock",
            "s.kdl",
            "--out",
            "out",
            "--quiet",
            "--arg",
            "VERSION=2.0",
        ],
    );
    let lock = fs::read_to_string(dir.join("s.lock")).unwrap();
    assert!(lock.contains("\narg EDITION \"\"\n"), "{lock}");
    assert!(lock.contains("\narg VERSION \"2.0\"\n"), "{lock}");
    // ...and a locked compose with the same value passes.
    strata_ok(
        dir,
        &dir.join("cache"),
        &[
            "compose",
            "s.kdl",
            "--out",
            "out",
            "--quiet",
            "--locked",
            "--arg",
            "VERSION=2.0",
        ],
    );
}

#[test]
fn an_unknown_argument_is_a_usage_error_naming_the_closest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(dir.join("s.kdl"), SPEC).unwrap();
    let out = strata(
        dir,
        &dir.join("cache"),
        &["compose", "s.kdl", "--out", "out", "--arg", "VERSOIN=2"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--arg VERSOIN"), "{err}");
    assert!(err.contains("did you mean `VERSION`?"), "{err}");
    let out = strata(
        dir,
        &dir.join("cache"),
        &["plan", "s.kdl", "--arg", "novalue"],
    );
    assert_eq!(out.status.code(), Some(2), "not NAME=VALUE");
}

#[test]
fn a_bad_arg_declaration_points_at_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(
        dir.join("s.kdl"),
        "arg V=\"1\"\narg V=\"2\"\narg 3\nimage a {\n    layer l { file \"/x\" \"$V\" }\n}\n",
    )
    .unwrap();
    let out = strata(dir, &dir.join("cache"), &["plan", "s.kdl"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("duplicate `arg V`"), "{err}");
    assert!(err.contains("s.kdl:2:5"), "{err}");
    assert!(err.contains("s.kdl:3:5"), "the number: {err}");
}
