//! `owner=` by user and group name (issue 19): resolved against the image's
//! own /etc/passwd and /etc/group as the layers below give them (the topmost
//! wins, a whiteout removes it); the layer holds the ids; the key changes
//! when what a name resolves to below changes; a missing name is a failed
//! build (exit 5) naming it, the layer and the spec line.

use std::fs;
use std::path::Path;

use crate::support::{compose_spec, strata_ok};
use crate::union::layer_files;

fn spec(app_uid: u32, files_layer: &str) -> String {
    format!(
        r#"image base {{
    layer users {{
        file "/etc/passwd" "root:x:0:0:root:/root:/bin/sh\napp:x:{app_uid}:{app_uid}::/home/app:/bin/sh\nweb:x:33:34::/var/www:/bin/sh\n"
        file "/etc/group" "root:x:0:\napp:x:{app_uid}:\nstaff:x:50:\n"
    }}
    layer decoy {{ file "/srv/readme" "the passwd below is the one" }}
}}
image app {{
    from base
{files_layer}
}}
"#
    )
}

const FILES: &str = r#"    layer files {
        copy "app.txt" to="/srv/app/" owner="app:app"
        file "/srv/mixed" "x" owner="1000:staff"
        mkdir "/srv/web" owner="web"
    }"#;

fn files_of(dir: &Path, n: usize) -> String {
    let inspect = strata_ok(dir, &dir.join("cache"), &["inspect", "out:app", "--files"]);
    layer_files(&inspect, n)
}

/// Composes `s.kdl`: what the JSON report says of the cache for the third
/// layer of image `app` (the one with owner names).
fn files_layer_cache(dir: &Path) -> serde_json::Value {
    let report = strata_ok(
        dir,
        &dir.join("cache"),
        &["compose", "s.kdl", "--out", "out", "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&report).unwrap();
    let app = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "app")
        .unwrap_or_else(|| panic!("no image app in {report}"));
    app["layers"][2]["cache"].clone()
}

#[test]
fn names_resolve_to_the_ids_the_layers_below_give() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(dir.join("app.txt"), "hi\n").unwrap();
    fs::write(dir.join("s.kdl"), spec(1234, FILES)).unwrap();
    strata_ok(
        dir,
        &dir.join("cache"),
        &["compose", "s.kdl", "--out", "out"],
    );
    let layer = files_of(dir, 3);
    assert!(
        layer.contains("/srv/app/app.txt file 0644 1234:1234 "),
        "{layer}"
    );
    assert!(layer.contains("/srv/mixed file 0644 1000:50 "), "{layer}");
    // A user alone: its primary group from /etc/passwd (as BuildKit does).
    assert!(layer.contains("/srv/web/ dir 0755 33:34"), "{layer}");

    // The same spec again: a hit; then `app` renumbered below: the layer
    // that names it is rebuilt with the new ids.
    assert_eq!(files_layer_cache(dir), "hit");
    fs::write(dir.join("s.kdl"), spec(4321, FILES)).unwrap();
    assert_eq!(files_layer_cache(dir), "miss");
    let layer = files_of(dir, 3);
    assert!(
        layer.contains("/srv/app/app.txt file 0644 4321:4321 "),
        "{layer}"
    );
    assert!(!layer.contains("1234"), "{layer}");
}

#[test]
fn a_missing_name_fails_the_build_naming_it_the_layer_and_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = "    layer files {\n        file \"/srv/x\" \"x\" owner=\"ghost:app\"\n    }";
    let (code, err) = compose_spec(dir, &spec(1234, files));
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("user `ghost`"), "{err}");
    assert!(err.contains("app/files"), "{err}");
    assert!(err.contains("from layer base/users"), "{err}");
    assert!(err.contains("s.kdl:11:"), "the spec line of owner=: {err}");

    // A whiteout above removes the file: the group is then missing.
    let files = "    layer gone { delete \"/etc/group\" }\n    layer files {\n        file \"/srv/x\" \"x\" owner=\"app:staff\"\n    }";
    let (code, err) = compose_spec(dir, &spec(1234, files));
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("group `staff`"), "{err}");
    assert!(err.contains("which have no /etc/group"), "{err}");

    // Nothing below at all: an invalid spec, found before building.
    let (code, err) = compose_spec(
        dir,
        "image solo {\n    layer l { file \"/x\" \"x\" owner=\"app\" }\n}\n",
    );
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("no layer below it"), "{err}");
}
