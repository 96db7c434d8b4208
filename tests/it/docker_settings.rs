//! Docker's image settings that the OCI image spec lacks (issue 19):
//! `shell` (the argv a `run` step starts its command with, and the config's
//! `Shell`) and `healthcheck` (the config's `Healthcheck`), composed for
//! real on a busybox base and read back with `strata inspect`.

use std::fs;

use crate::sandbox::{ready, unpack, write_spec};
use crate::support::strata_ok;
use crate::union::busybox_dir;

#[test]
fn run_steps_start_their_command_with_the_image_shell() {
    let test = "run_steps_start_their_command_with_the_image_shell";
    if !ready(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    let cache = tmp.path().join("cache");
    // The shell's own words reach the command (`env` sets a variable before
    // starting `sh -c`), and `/bin/sh` need not exist: the layer below
    // deletes it.
    write_spec(
        &dir,
        r#"    shell "/bin/busybox" "env" "SHELLED=yes" "/bin/busybox" "sh" "-c"
    healthcheck "CMD-SHELL" "test -e /shelled" interval="10s" retries=2
    layer nosh { delete "/bin/sh" }
    layer ran { run "echo $SHELLED > /shelled" }"#,
    );
    strata_ok(
        &dir,
        &cache,
        &["compose", "s.kdl", "--out", "out", "--quiet"],
    );
    let root = unpack(&dir, &cache);
    assert_eq!(fs::read_to_string(root.join("shelled")).unwrap(), "yes\n");
    assert!(!root.join("bin/sh").exists(), "no /bin/sh was needed");

    let inspect = strata_ok(&dir, &cache, &["inspect", "out:app"]);
    assert!(
        inspect.contains(
            r#"shell ["/bin/busybox", "env", "SHELLED=yes", "/bin/busybox", "sh", "-c"]"#
        ),
        "{inspect}"
    );
    assert!(
        inspect.contains(
            r#"healthcheck ["CMD-SHELL", "test -e /shelled"] interval=10000ms retries=2"#
        ),
        "{inspect}"
    );
    let json = strata_ok(&dir, &cache, &["inspect", "out:app", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let config = &v["images"][0]["config"]["config"];
    assert_eq!(
        config["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "test -e /shelled"], "Interval": 10_000_000_000u64, "Retries": 2})
    );
    assert_eq!(config["Shell"][0], "/bin/busybox");

    // The shell is part of the run layer's key: another shell rebuilds it.
    let plan = |dir: &std::path::Path| strata_ok(dir, &cache, &["plan", "s.kdl", "--json"]);
    let before = plan(&dir);
    let spec = fs::read_to_string(dir.join("s.kdl")).unwrap();
    fs::write(
        dir.join("s.kdl"),
        spec.replace(r#""SHELLED=yes""#, r#""SHELLED=no""#),
    )
    .unwrap();
    let after = plan(&dir);
    let key = |p: &str, layer: &str| {
        let v: serde_json::Value = serde_json::from_str(p).unwrap();
        v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == layer)
            .map(|l| l["key"].clone())
            .unwrap()
    };
    assert_eq!(key(&before, "app/nosh"), key(&after, "app/nosh"));
    assert_ne!(key(&before, "app/ran"), key(&after, "app/ran"));
}

/// `workdir` makes its directory as Docker's `WORKDIR` does: a missing one
/// (and its missing parents) 0755 and the image user's; an existing one
/// stays as the layers below give it (here `/srv`, which the image's own
/// layer made, and `/tmp`).
#[test]
fn workdir_makes_its_directory_when_the_layers_below_lack_it() {
    use std::os::unix::fs::MetadataExt;
    let test = "workdir_makes_its_directory_when_the_layers_below_lack_it";
    if !ready(test) {
        return;
    }
    if !strata::union::running_as_root() {
        eprintln!("SKIPPED {test}: owners are compared, which needs root to unpack");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    let cache = tmp.path().join("cache");
    fs::write(
        dir.join("s.kdl"),
        r#"
image base {
    rootfs "base.tar"
    env PATH="/bin"
    layer sticky { mkdir "/tmp" mode=0o1777 }
}
image app {
    from base
    user "1000:1001"
    workdir "/srv/app"
    layer here { file "/srv/app.conf" "x" }
}
image keep {
    from base
    user "1000"
    workdir "/tmp"
}
"#,
    )
    .unwrap();
    strata_ok(
        &dir,
        &cache,
        &["compose", "s.kdl", "--out", "out", "--quiet"],
    );
    let root = unpack(&dir, &cache);
    let meta = |p: &str| {
        let m = fs::metadata(root.join(p)).unwrap();
        (m.mode() & 0o7777, m.uid(), m.gid())
    };
    assert_eq!(meta("srv/app"), (0o755, 1000, 1001));
    assert_eq!(meta("srv"), (0o755, 0, 0), "made by the layer below");
    // base's two layers, `here`, and the layer that made the directory.
    let layers = strata_ok(&dir, &cache, &["inspect", "out:app"]);
    assert!(
        layers.contains("\n  layer 4 ") && !layers.contains("\n  layer 5 "),
        "{layers}"
    );

    let keep = dir.join("keep-root");
    strata_ok(&dir, &cache, &["rootfs", "out:keep", "keep-root"]);
    let m = fs::metadata(keep.join("tmp")).unwrap();
    assert_eq!(
        (m.mode() & 0o7777, m.uid()),
        (0o1777, 0),
        "an existing directory is kept"
    );
}

/// The key of the first layer of `image` in `strata plan --json`.
fn layer_key(dir: &std::path::Path, cache: &std::path::Path, layer: &str) -> serde_json::Value {
    let plan = strata_ok(dir, cache, &["plan", "s.kdl", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&plan).unwrap();
    v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == layer)
        .map(|l| l["key"].clone())
        .unwrap_or_else(|| panic!("no layer {layer} in {plan}"))
}

/// `exclude=` leaves entries out as a `.dockerignore` does, and an
/// excluded file is not read: changing it does not change the layer's key.
#[test]
fn excluded_files_are_neither_copied_nor_keyed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cache = dir.join("cache");
    for (p, content) in [
        ("site/index.html", "hi"),
        ("site/notes.md", "notes"),
        ("site/README.md", "readme"),
        ("site/css/x.tmp", "tmp"),
        ("site/css/main.css", "css"),
        ("site/drafts/a.html", "draft"),
        ("site/drafts/keep.html", "keep"),
    ] {
        let path = dir.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    fs::write(
        dir.join("s.kdl"),
        r#"
image app {
    layer www { copy "site" to="/srv/" exclude="*.md **/*.tmp !README.md drafts !drafts/keep.html" }
}
"#,
    )
    .unwrap();
    strata_ok(
        dir,
        &cache,
        &["compose", "s.kdl", "--out", "out", "--quiet"],
    );
    let inspect = strata_ok(dir, &cache, &["inspect", "out:app", "--files"]);
    let files = crate::union::layer_files(&inspect, 1);
    let paths: Vec<&str> = files.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(
        paths,
        [
            "/srv/",
            "/srv/README.md",
            "/srv/css/",
            "/srv/css/main.css",
            "/srv/drafts/",
            "/srv/drafts/keep.html",
            "/srv/index.html",
        ],
        "{files}"
    );

    let before = layer_key(dir, &cache, "app/www");
    fs::write(dir.join("site/css/x.tmp"), "changed").unwrap();
    fs::write(dir.join("site/notes.md"), "changed").unwrap();
    fs::write(dir.join("site/drafts/a.html"), "changed").unwrap();
    assert_eq!(
        layer_key(dir, &cache, "app/www"),
        before,
        "excluded files are not keyed"
    );
    fs::write(dir.join("site/index.html"), "changed").unwrap();
    assert_ne!(layer_key(dir, &cache, "app/www"), before);

    // A pattern that is none is an error at the spec's `exclude=`.
    fs::write(
        dir.join("s.kdl"),
        "image app {\n    layer www { copy \"site\" to=\"/srv/\" exclude=\"[abc\" }\n}\n",
    )
    .unwrap();
    let out = crate::support::strata(dir, &cache, &["plan", "s.kdl"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("s.kdl:2:48") && err.contains("without its `]`"),
        "{err}"
    );
}
