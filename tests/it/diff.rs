//! `strata diff A B`: two layouts composed from specs that differ in one
//! file's content, one file's mode and one env value must be explained as
//! exactly that; identical images say nothing and exit 0; a lock file works
//! as a side; a side that cannot be read exits 2.

use std::path::Path;
use std::process::Output;

use crate::support::{strata, strata_ok};

fn spec(greeting: &str, tool_mode: &str) -> String {
    format!(
        r#"image app {{
    layer data {{
        copy "data" to="/data/"
        copy "tool.sh" to="/usr/bin/tool" mode={tool_mode}
    }}
    layer conf {{
        file "/etc/app.conf" "port = 8080\n"
    }}
    env GREETING="{greeting}" LANG="C.UTF-8"
    cmd "/usr/bin/tool"
}}
"#
    )
}

fn setup(dir: &Path, greeting: &str, tool_mode: &str, notes: &str) {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("app.kdl"), spec(greeting, tool_mode)).unwrap();
    std::fs::write(dir.join("data/notes.txt"), notes).unwrap();
    std::fs::write(dir.join("data/same.txt"), "unchanged\n").unwrap();
    std::fs::write(dir.join("tool.sh"), "#!/bin/sh\necho tool\n").unwrap();
}

/// Digests and compressed sizes replaced, so the snapshot shows the
/// structure and stays put when a compressor changes.
fn masked(s: &str) -> String {
    let s: String = s
        .lines()
        .map(|l| match l.split_once("size ") {
            Some((indent, _)) if indent.trim().is_empty() => format!("{indent}size [..]\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    let s = s.as_str();
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("sha256:") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 7..];
        let hex = after.bytes().take_while(|b| b.is_ascii_hexdigit()).count();
        if hex == 64 {
            out.push_str("sha256:[..]");
            rest = &after[64..];
        } else {
            out.push_str("sha256:");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn diff_explains_one_file_one_mode_and_one_env_change() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let cache = tmp.path().join("cache");
    setup(&a, "hello", "0o644", "first draft\n");
    setup(&b, "bye", "0o755", "second draft, longer\n");
    strata_ok(
        &a,
        &cache,
        &["compose", "app.kdl", "--out", "../out-a", "--quiet"],
    );
    strata_ok(
        &b,
        &cache,
        &["compose", "app.kdl", "--out", "../out-b", "--quiet"],
    );

    let out = strata(tmp.path(), &cache, &["diff", "out-a", "out-b"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    // The facts, in words a reviewer checks at a glance ...
    for want in [
        "image app\n",
        "  config.Env:\n    - GREETING=hello\n    + GREETING=bye\n",
        "  layer 1 (data): blob sha256:",
        "    ~ /data/notes.txt: content 12 sha256:",
        "    ~ /usr/bin/tool: mode 0644 -> 0755\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // ... and nothing else: the unchanged layer and file are not mentioned.
    assert!(!text.contains("layer 2"), "{text}");
    assert!(!text.contains("same.txt"), "{text}");
    insta::assert_snapshot!("diff_one_file_one_mode_one_env", masked(&text));

    // The same image: nothing to say, exit 0 (as diff(1)); tags work.
    let out = strata(tmp.path(), &cache, &["diff", "out-a", "out-a:app"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());

    // A side that is not there: exit 2, and the error names it.
    let out = strata(tmp.path(), &cache, &["diff", "out-a", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere"));
}

#[test]
fn diff_against_a_lock_and_across_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let cache = tmp.path().join("cache");
    setup(&dir, "hello", "0o644", "first draft\n");
    strata_ok(
        &dir,
        &cache,
        &["lock", "app.kdl", "--out", "../out-a", "--quiet"],
    );

    // A layout and its own lock are identical.
    let out = strata(tmp.path(), &cache, &["diff", "out-a", "a/app.lock"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // The lock against a changed layout: the layer and the file, from the
    // lock's listing; the config fields are not in a lock.
    std::fs::write(dir.join("data/notes.txt"), "rewritten\n").unwrap();
    strata_ok(
        &dir,
        &cache,
        &["compose", "app.kdl", "--out", "../out-b", "--quiet"],
    );
    let out = strata(tmp.path(), &cache, &["diff", "a/app.lock", "out-b"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("  layer 1 (app/data): blob"), "{text}");
    assert!(
        text.contains("    ~ /data/notes.txt: content 12 sha256:"),
        "{text}"
    );
    assert!(
        text.contains("(a lock file records no config fields)"),
        "{text}"
    );

    // SOURCE_DATE_EPOCH moves every mtime and `created`: folded into one line per layer.
    let status = std::process::Command::new(crate::support::strata_bin())
        .args(["compose", "app.kdl", "--out", "../out-c", "--quiet"])
        .current_dir(&dir)
        .env("STRATA_CACHE_DIR", &cache)
        .env("SOURCE_DATE_EPOCH", "86400")
        .status()
        .unwrap();
    assert!(status.success());
    let out = strata(tmp.path(), &cache, &["diff", "out-b", "out-c"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("  created: 1970-01-01T00:00:00Z -> 1970-01-02T00:00:00Z\n"),
        "{text}"
    );
    assert!(text.contains(" entries: mtime 0 -> 86400 ("), "{text}");
    assert!(!text.contains("content"), "only times moved:\n{text}");
}
