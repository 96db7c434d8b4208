//! Multi-stage builds (issue 17): `copy "/PATH" from="IMAGE"` puts exactly
//! what the source image shows at the path into a layer of another image,
//! with Docker's `COPY --from` metadata rules; the layer is rebuilt when its
//! source image changes and only then; mistakes are located in the spec;
//! and a slim image made from a `run` build stage runs under Docker.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::docker::{docker, docker_ready};
use crate::support::{have, run_ok, strata, strata_ok};
use crate::union::{busybox_dir, layer_files};

const SPEC: &str = r#"
compression "none"
image slim {
    layer base { mkdir "/usr/local" mode=0o700 owner="3:3"; }
    layer app {
        copy "/out" from="build" to="/usr/local"
        copy "/out/bin/latest" from="build" to="/usr/bin/" owner="1000:1000" mode=0o750
    }
    layer top { file "/etc/motd" "TOP" }
}
image build {
    layer src {
        file "/out/bin/app" "APP" mode=0o4755 owner="7:7"
        file "/out/etc/app.conf" "k=v" mode=0o600
        symlink "/out/bin/latest" target="app"
        file "/scratch/junk" "x"
    }
    layer more { file "/scratch/more" "MORE" }
}
"#;

/// `cache` of each layer of image `image` in a `--json` report.
fn caches(report: &str, image: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(report).unwrap();
    let img = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == image)
        .unwrap_or_else(|| panic!("no image {image} in {report}"));
    img["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["cache"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn compose_json(dir: &Path, cache: &Path, out: &str) -> String {
    strata_ok(dir, cache, &["compose", "s.kdl", "--out", out, "--json"])
}

#[test]
fn copy_from_puts_exactly_the_paths_and_rebuilds_only_for_its_source() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cache = dir.join("cache");
    fs::write(dir.join("s.kdl"), SPEC).unwrap();
    // `slim` is written before `build`: images are ordered by what they need.
    let first = compose_json(dir, &cache, "out");
    assert_eq!(caches(&first, "slim"), ["miss", "miss", "miss"]);
    let inspect = strata_ok(dir, &cache, &["inspect", "out:slim", "--files"]);
    let sha = |s: &str| format!("sha256:{}", strata::Digest::of(s.as_bytes()).hex());
    // The directory's contents in /usr/local, whose mode and owner the layer
    // below gave it stay; owners 0:0, modes kept (setuid too); the symlink
    // is a symlink in the tree and followed when it is the source; a new
    // parent is the copy's owner's. Nothing else of `build` comes along.
    assert_eq!(
        layer_files(&inspect, 2),
        format!(
            "/usr/ dir 0755 3:3\n\
             /usr/bin/ dir 0755 1000:1000\n\
             /usr/bin/latest file 0750 1000:1000 3 {app}\n\
             /usr/local/ dir 0700 3:3\n\
             /usr/local/bin/ dir 0755 0:0\n\
             /usr/local/bin/app file 4755 0:0 3 {app}\n\
             /usr/local/bin/latest symlink 0777 0:0 -> app\n\
             /usr/local/etc/ dir 0755 0:0\n\
             /usr/local/etc/app.conf file 0600 0:0 3 {conf}\n",
            app = sha("APP"),
            conf = sha("k=v"),
        ),
        "{inspect}"
    );

    // A layer above it changed, and an image it does not copy from was
    // added: the copy is a hit.
    let edited =
        SPEC.replace("\"TOP\"", "\"TOP2\"") + "image other { layer x { file \"/x\" \"x\" } }\n";
    fs::write(dir.join("s.kdl"), &edited).unwrap();
    assert_eq!(
        caches(&compose_json(dir, &cache, "out"), "slim"),
        ["hit", "hit", "miss"]
    );
    // The source image renamed: its name is not in the key.
    let renamed = edited
        .replace("from=\"build\"", "from=\"compile\"")
        .replace("image build", "image compile");
    fs::write(dir.join("s.kdl"), &renamed).unwrap();
    assert_eq!(
        caches(&compose_json(dir, &cache, "out"), "slim"),
        ["hit", "hit", "hit"]
    );
    // The source image changed where it is not copied: rebuilt (the key
    // covers the whole source image), to the same bytes; `top` keeps the
    // parents below it, so it reads below and is rebuilt too.
    let before = strata_ok(dir, &cache, &["inspect", "out:slim", "--files"]);
    fs::write(dir.join("s.kdl"), renamed.replace("\"MORE\"", "\"MORE2\"")).unwrap();
    let report = compose_json(dir, &cache, "out");
    assert_eq!(caches(&report, "slim"), ["hit", "miss", "miss"], "{report}");
    assert!(report.contains("op 1: copy /out from=compile"), "{report}");
    let after = strata_ok(dir, &cache, &["inspect", "out:slim", "--files"]);
    assert_eq!(layer_files(&before, 2), layer_files(&after, 2));
    // What is copied changed: rebuilt, with the new bytes.
    fs::write(
        dir.join("s.kdl"),
        renamed
            .replace("\"MORE\"", "\"MORE2\"")
            .replace("\"APP\"", "\"APP2\""),
    )
    .unwrap();
    let report = compose_json(dir, &cache, "out");
    assert_eq!(caches(&report, "slim"), ["hit", "miss", "miss"], "{report}");
    let after = strata_ok(dir, &cache, &["inspect", "out:slim", "--files"]);
    assert!(
        layer_files(&after, 2).contains(&format!(
            "/usr/local/bin/app file 4755 0:0 4 {}",
            sha("APP2")
        )),
        "{after}"
    );
}

/// `strata compose` of `spec` in a fresh directory: exit code and stderr.
fn compose_fails(spec: &str) -> (Option<i32>, String) {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("s.kdl"), spec).unwrap();
    let out = strata(
        tmp.path(),
        &tmp.path().join("cache"),
        &["compose", "s.kdl", "--out", "out"],
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn copy_from_mistakes_are_located_in_the_spec() {
    // A path the source image lacks: a failed build (5) at the copy.
    let (code, err) = compose_fails(
        "image b { layer l { file \"/a\" \"a\" } }\nimage s {\n  layer l {\n    copy \"/nope/x\" from=\"b\" to=\"/x\"\n  }\n}\n",
    );
    assert_eq!(code, Some(5), "{err}");
    assert!(
        err.contains("s.kdl:4:5")
            && err
                .contains("cannot copy /nope/x from image `b`: no such file or directory (/nope)"),
        "{err}"
    );
    // An unknown image, with a suggestion: an invalid spec (3).
    let (code, err) = compose_fails(
        "image build { layer l { file \"/a\" \"a\" } }\nimage s { layer l { copy \"/a\" from=\"buld\" to=\"/a\" } }\n",
    );
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("s.kdl:2:36")
            && err.contains("no image named `buld`")
            && err.contains("did you mean `build`?"),
        "{err}"
    );
    // Images that need each other, through `from` and `copy from=`.
    let (code, err) = compose_fails(
        "image a { from \"b\"; }\nimage b { layer l { copy \"/x\" from=\"a\" to=\"/x\" } }\n",
    );
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("images need each other in a cycle: a -> b -> a")
            && err.contains("s.kdl:1:16"),
        "{err}"
    );
    let (code, err) = compose_fails("image a { layer l { copy \"/x\" from=\"a\" to=\"/x\" } }\n");
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("a -> a"), "{err}");
    // Another operation in a `copy from=` layer, a relative source, and
    // `exclude=`, which filters host directories only.
    let (code, err) = compose_fails(
        "image b { layer l { file \"/a\" \"a\" } }\nimage s {\n  layer l {\n    copy \"/a\" from=\"b\" to=\"/a\"\n    file \"/f\" \"f\"\n    copy \"a\" from=\"b\" to=\"/b\"\n    copy \"/a\" from=\"b\" to=\"/c\" exclude=\"*.md\"\n  }\n}\n",
    );
    assert_eq!(code, Some(3), "{err}");
    for want in [
        "s.kdl:5:5: `file` cannot share a layer with `copy from=`",
        "s.kdl:6:10: path must be absolute",
        "`exclude` filters host directories, and this copy is from an image",
    ] {
        assert!(err.contains(want), "{want} in:\n{err}");
    }
}

#[test]
fn a_slim_image_made_from_a_run_stage_runs_under_docker() {
    let test = "a_slim_image_made_from_a_run_stage_runs_under_docker";
    if !have("busybox", test) || !have("unshare", test) || !docker_ready(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    fs::write(
        dir.join("s.kdl"),
        r#"
image multistage-build {
    rootfs "base.tar"
    env PATH="/bin"
    layer compile {
        run "mkdir -p /out/bin && printf '#!/bin/sh\necho built by a stage: $1\n' > /out/bin/greet && chmod 755 /out/bin/greet && echo junk > /out/junk"
    }
}
image multistage-slim {
    layer bin {
        copy "/bin/busybox" from="multistage-build" to="/bin/"
        copy "/bin/sh" from="multistage-build" to="/bin/sh"
        copy "/out/bin/greet" from="multistage-build" to="/usr/local/bin/greet"
    }
    env PATH="/usr/local/bin:/bin"
    entrypoint "greet"
    cmd "slim"
}
"#,
    )
    .unwrap();
    let cache = tmp.path().join("cache");
    let archive = tmp.path().join("images.tar");
    strata_ok(
        &dir,
        &cache,
        &[
            "compose",
            "s.kdl",
            "--out",
            "out",
            "--quiet",
            "--docker-archive",
            archive.to_str().unwrap(),
        ],
    );
    let inspect = strata_ok(&dir, &cache, &["inspect", "out:multistage-slim", "--files"]);
    let files = layer_files(&inspect, 1);
    // `/bin/sh` is a symlink in `build`: the copy follows it, so the slim
    // image has a second busybox, not a dangling link; no junk.
    assert!(
        files.contains("/bin/sh file 0755 0:0") && !files.contains("junk"),
        "{files}"
    );
    let loaded = run_ok(docker().arg("load").arg("-i").arg(&archive));
    assert!(loaded.contains("multistage-slim:latest"), "{loaded}");
    let out = run_ok(Command::new(crate::docker::docker_bin()).args([
        "run",
        "--rm",
        "--network",
        "none",
        "multistage-slim:latest",
    ]));
    assert_eq!(out, "built by a stage: slim\n");
    let _ = docker()
        .args([
            "rmi",
            "-f",
            "multistage-slim:latest",
            "multistage-build:latest",
        ])
        .output();
}

#[test]
fn a_run_step_reads_another_image_through_a_read_only_bind_mount() {
    let test = "a_run_step_reads_another_image_through_a_read_only_bind_mount";
    if !have("busybox", test) || !have("unshare", test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    let spec = r#"
image base {
    rootfs "base.tar"
    env PATH="/bin"
}
image build {
    from "base"
    layer compile {
        run "mkdir -p /out && echo VERSION > /out/data && ln -s data /out/link && echo conf > /out/conf"
    }
}
image app {
    from "base"
    layer use {
        run "cat /mnt/build/out/link > /copied && cat /etc/tool.conf >> /copied && (echo x > /mnt/build/out/new 2>/dev/null && echo writable || echo read-only) > /result" {
            bind "/mnt/build" from="build"
            bind "/etc/tool.conf" from="build" source="/out/conf"
        }
    }
}
"#;
    fs::write(dir.join("s.kdl"), spec).unwrap();
    let cache = tmp.path().join("cache");
    strata_ok(
        &dir,
        &cache,
        &["compose", "s.kdl", "--out", "out", "--quiet"],
    );
    let inspect = strata_ok(&dir, &cache, &["inspect", "out:app", "--files"]);
    let files = layer_files(&inspect, 2);
    // What the command wrote, and nothing of the mounts: no /mnt, no
    // /etc/tool.conf, nothing written into the other image.
    let paths: Vec<&str> = files
        .lines()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(paths, ["/copied", "/result"], "{files}");
    strata_ok(&dir, &cache, &["rootfs", "out:app", "root"]);
    assert_eq!(
        fs::read_to_string(dir.join("root/copied")).unwrap(),
        "VERSION\nconf\n"
    );
    assert_eq!(
        fs::read_to_string(dir.join("root/result")).unwrap(),
        "read-only\n"
    );
    strata_ok(&dir, &cache, &["rootfs", "out:build", "build-root"]);
    assert!(!dir.join("build-root/out/new").exists());

    // The mounted image is in the key: changing it reruns the step, and
    // changing an image the step does not mount does not.
    let json = |spec: &str| {
        fs::write(dir.join("s.kdl"), spec).unwrap();
        strata_ok(
            &dir,
            &cache,
            &["compose", "s.kdl", "--out", "out", "--json"],
        )
    };
    let other = format!("{spec}\nimage other {{ layer x {{ file \"/x\" \"x\" }} }}\n");
    assert_eq!(caches(&json(&other), "app"), ["hit", "hit"]);
    let changed = other.replace("echo conf", "echo conf2");
    let report = json(&changed);
    assert_eq!(caches(&report, "app"), ["hit", "miss"], "{report}");
    strata_ok(&dir, &cache, &["rootfs", "out:app", "root2"]);
    assert_eq!(
        fs::read_to_string(dir.join("root2/copied")).unwrap(),
        "VERSION\nconf2\n"
    );

    // A source the image lacks fails the step, naming it.
    let missing = spec.replace("source=\"/out/conf\"", "source=\"/out/nope\"");
    fs::write(dir.join("s.kdl"), missing).unwrap();
    let out = strata(&dir, &cache, &["compose", "s.kdl", "--out", "out"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(
        err.contains("/etc/tool.conf") && err.contains("no such file or directory (/out/nope)"),
        "{err}"
    );
}
