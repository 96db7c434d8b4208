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

/// A loopback HTTP server of `files` (path, bytes) on its own thread; the
/// count of requests it answered. It serves until the test ends.
pub(crate) fn serve(
    files: Vec<(&'static str, Vec<u8>)>,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
            }
            seen.fetch_add(1, Ordering::SeqCst);
            let target = request.split(' ').nth(1).unwrap_or("");
            let path = target.split('?').next().unwrap_or("");
            let response = match files.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(body);
                    r
                }
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&response);
        }
    });
    (port, count)
}

/// The sha256 of `bytes`, as `sha256sum` prints it.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let f = tempfile::NamedTempFile::new().unwrap();
    fs::write(f.path(), bytes).unwrap();
    let out = crate::support::run_ok(std::process::Command::new("sha256sum").arg(f.path()));
    out.split(' ').next().unwrap().to_owned()
}

/// `add` of a URL (Docker's `ADD --checksum`): fetched once into the cache,
/// verified, copied as it is (a tarball is not unpacked) with mode 0600;
/// a second compose fetches nothing; a wrong checksum is an error naming
/// the URL and both digests, and nothing is kept.
#[test]
fn add_of_a_url_is_fetched_once_verified_and_never_unpacked() {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::Ordering;
    let tool = b"#!/bin/sh\necho tool\n".to_vec();
    let mut tarball = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tarball);
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "inside.txt", &b"x\n"[..]).unwrap();
        b.finish().unwrap();
    }
    let (port, count) = serve(vec![
        ("/files/tool.sh", tool.clone()),
        ("/files/data.tar", tarball.clone()),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cache = dir.join("cache");
    let spec = |tool_sum: &str| {
        format!(
            r#"
image app {{
    layer fetched {{
        add "http://127.0.0.1:{port}/files/tool.sh" to="/opt/" checksum="sha256:{tool_sum}"
        add "http://127.0.0.1:{port}/files/data.tar?v=1" to="/opt/data.tar" checksum="sha256:{}" mode=0o644
    }}
}}
"#,
            sha256_hex(&tarball)
        )
    };
    fs::write(dir.join("s.kdl"), spec(&sha256_hex(&tool))).unwrap();
    strata_ok(
        dir,
        &cache,
        &["compose", "s.kdl", "--out", "out", "--quiet"],
    );
    assert_eq!(count.load(Ordering::SeqCst), 2, "each URL fetched once");
    strata_ok(dir, &cache, &["rootfs", "out:app", "root"]);
    let root = dir.join("root");
    assert_eq!(fs::read(root.join("opt/tool.sh")).unwrap(), tool);
    let mode = fs::metadata(root.join("opt/tool.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o600, "Docker's mode for a fetched file");
    assert_eq!(
        fs::read(root.join("opt/data.tar")).unwrap(),
        tarball,
        "not unpacked"
    );
    assert!(!root.join("opt/inside.txt").exists());

    // Again, into another layout: nothing is fetched.
    strata_ok(
        dir,
        &cache,
        &["compose", "s.kdl", "--out", "out2", "--quiet"],
    );
    assert_eq!(count.load(Ordering::SeqCst), 2, "the cache answers");

    // A wrong checksum: an error naming the URL, what was expected and
    // what came.
    let wrong = "0".repeat(64);
    fs::write(dir.join("s.kdl"), spec(&wrong)).unwrap();
    let fresh = dir.join("fresh-cache");
    let out = crate::support::strata(dir, &fresh, &["compose", "s.kdl", "--out", "out3"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("http://127.0.0.1:{port}/files/tool.sh"))
            && err.contains(&format!("sha256:{wrong}"))
            && err.contains(&format!("sha256:{}", sha256_hex(&tool))),
        "{err}"
    );
    let kept: Vec<_> = fs::read_dir(fresh.join("urls-v1/sha256"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !kept.iter().any(|n| n.to_string_lossy() == wrong),
        "nothing kept under the wrong name: {kept:?}"
    );
}
