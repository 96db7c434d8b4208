//! `strata completions SHELL` and `strata man`: generated from the clap
//! definitions, so they name every subcommand and flag there is; checked
//! with the real shells and roff tools when installed.

use std::process::Command;

use crate::support::{have, run_ok, strata, strata_ok};

/// Every subcommand, as `strata --help` lists them.
fn subcommands() -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let help = strata_ok(tmp.path(), &tmp.path().join("cache"), &["--help"]);
    let list: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next())
        .filter(|w| *w != "help")
        .map(str::to_owned)
        .collect();
    for expected in [
        "compose",
        "lock",
        "plan",
        "inspect",
        "cache",
        "completions",
        "man",
    ] {
        assert!(list.iter().any(|c| c == expected), "{expected} in {list:?}");
    }
    list
}

#[test]
fn completion_scripts_name_every_subcommand_and_parse() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let subcommands = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let script = strata_ok(tmp.path(), &cache, &["completions", shell]);
        for sub in &subcommands {
            assert!(script.contains(sub.as_str()), "{shell}: {sub} missing");
        }
        assert!(script.contains("oci-archive"), "{shell}: compose flags");
        if shell == "bash" {
            // bash checks the syntax of the script without running it (zsh
            // and fish are not on every machine the tests run on).
            let file = tmp.path().join("strata.bash");
            std::fs::write(&file, &script).unwrap();
            run_ok(Command::new("bash").arg("-n").arg(&file));
        }
    }
    let out = strata(tmp.path(), &cache, &["completions", "tcsh"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_pages_list_every_subcommand_and_render() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let page = strata_ok(tmp.path(), &cache, &["man"]);
    assert!(page.contains(".TH strata 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    let subcommands = subcommands();
    for sub in &subcommands {
        assert!(
            page.contains(&format!("strata\\-{sub}(1)")),
            "{sub} in the page"
        );
    }

    let dir = tmp.path().join("man1");
    let listed = strata_ok(tmp.path(), &cache, &["man", "--out", dir.to_str().unwrap()]);
    assert_eq!(listed.lines().count(), subcommands.len() + 1, "{listed}");
    let compose = std::fs::read_to_string(dir.join("strata-compose.1")).unwrap();
    assert!(compose.contains(".TH strata-compose 1"), "{compose}");
    assert!(compose.contains("\\-\\-sbom"), "flags documented");
    assert_eq!(std::fs::read_to_string(dir.join("strata.1")).unwrap(), page);

    if have("groff", "man_pages_list_every_subcommand_and_render") {
        for file in listed.lines() {
            // -ww: every warning; -z: no output. Valid roff warns about nothing.
            let out = Command::new("groff")
                .args(["-man", "-Tutf8", "-ww", "-z"])
                .arg(dir.join(file))
                .output()
                .unwrap();
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{file}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    if have("man", "man_pages_list_every_subcommand_and_render") {
        let text = run_ok(
            Command::new("man")
                .arg("-l")
                .arg(dir.join("strata.1"))
                .env("MANPAGER", "cat")
                .env("MANWIDTH", "80"),
        );
        assert!(text.contains("SUBCOMMANDS"), "{text}");
        assert!(text.contains("strata-compose(1)"), "{text}");
    }
}
