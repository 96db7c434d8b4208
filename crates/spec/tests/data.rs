//! The data-driven tests: every `test_data/ok/*.kdl` parses and its dump
//! matches its snapshot; every `test_data/err/*.kdl` fails and its rendered
//! diagnostics match theirs. Add a case by adding a file, then review the new
//! snapshot by eye (`INSTA_UPDATE=always cargo test -p strata-spec`).

use std::path::{Path, PathBuf};

/// The `.kdl` files of `test_data/{dir}`, sorted by name.
fn cases(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "kdl"))
        .collect();
    files.sort();
    files
}

/// Parse one case under a stable name (`err/0001_x.kdl`), independent of the checkout.
fn run(
    dir: &str,
    path: &Path,
) -> (
    String,
    String,
    Result<strata_spec::Spec, strata_spec::Diagnostics>,
) {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("utf-8 file name");
    let file = format!("{dir}/{stem}.kdl");
    let text = std::fs::read_to_string(path).expect("readable test file");
    let result = strata_spec::parse(&file, &text);
    (format!("{dir}_{stem}"), text, result)
}

fn snapshot(name: &str, source: &str, output: &str) {
    insta::with_settings!({
        snapshot_path => "snapshots",
        prepend_module_to_snapshot => false,
        description => source,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, output);
    });
}

#[test]
fn ok() {
    let files = cases("ok");
    assert!(files.len() >= 5, "ok cases missing");
    for path in files {
        let (name, text, result) = run("ok", &path);
        match result {
            Ok(spec) => snapshot(&name, &text, &spec.dump()),
            Err(d) => panic!("{name} should parse:\n{}", d.render_plain()),
        }
    }
}

#[test]
fn err() {
    let files = cases("err");
    assert!(files.len() >= 25, "err cases missing");
    for path in files {
        let (name, text, result) = run("err", &path);
        match result {
            Ok(spec) => panic!("{name} should fail, parsed as:\n{}", spec.dump()),
            Err(d) => {
                assert!(!d.items.is_empty(), "{name}: an error without items");
                // `Display` is the one-line form; the snapshot shows both.
                let out = format!("{d}\n\n{}", d.render_plain());
                snapshot(&name, &text, &out);
            }
        }
    }
}
