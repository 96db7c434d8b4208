//! The overall progress line of a long compose (issue 19): bytes done of
//! the total expected, with an ETA, on a terminal (a pty from `script`);
//! never under `--json`, and nothing of it when stderr is not a terminal.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use crate::support::{have, strata, strata_bin};

/// A spec whose one layer copies 24 MiB that do not compress (above the
/// 16 MiB a compose must expect for the line to show).
fn long_spec(dir: &Path) {
    let mut f = fs::File::create(dir.join("big.bin")).unwrap();
    // xorshift: cheap bytes that gzip cannot shrink.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..24 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        f.write_all(&buf).unwrap();
    }
    fs::write(
        dir.join("s.kdl"),
        "image big {\n    layer data { copy \"big.bin\" to=\"/data/big.bin\" }\n}\n",
    )
    .unwrap();
}

/// Run strata with `args` in `dir` on a pty (`script`): all it printed.
fn on_a_terminal(dir: &Path, args: &str) -> String {
    let cmd = format!("{} {args}", strata_bin().display());
    let out = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .output()
        .expect("run script");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_long_compose_shows_bytes_total_and_eta_on_a_terminal_only() {
    let test = "a_long_compose_shows_bytes_total_and_eta";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    long_spec(dir);

    // Not a terminal: stderr stays as it was, no progress at all.
    let out = strata(
        dir,
        &dir.join("cache"),
        &["compose", "s.kdl", "--out", "plain"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("all layers") && !err.contains("ETA") && !err.contains('\u{1b}'),
        "{err}"
    );

    if !have("script", test) {
        return;
    }
    let shown = on_a_terminal(dir, "compose s.kdl --out tty --cache-dir tty-cache");
    let line = shown
        .split(['\r', '\n'])
        .find(|l| l.contains("all layers"))
        .unwrap_or_else(|| panic!("no overall line: {shown:?}"));
    assert!(
        line.contains(" of 24.00 MiB") && line.contains("ETA "),
        "{line:?}"
    );
    // The last thing drawn of it is cleared: the summary follows a clear.
    let last = shown.rfind("all layers").unwrap();
    assert!(shown[last..].contains("\u{1b}[2K"), "{shown:?}");

    let json = on_a_terminal(dir, "compose s.kdl --out j --cache-dir json-cache --json");
    assert!(
        !json.contains("all layers") && !json.contains("ETA"),
        "{json}"
    );
}
