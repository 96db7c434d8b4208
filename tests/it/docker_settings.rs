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
