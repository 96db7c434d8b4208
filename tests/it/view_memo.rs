//! The folded view of an unchanged stack is a memo (`CACHE/memo-v1`), kept
//! when a layer is rebuilt over it: a layer built over the memo gives the
//! same bytes as one folded from the lower listings, and a changed stack is
//! folded afresh.

use std::fs;
use std::path::Path;

use crate::support::strata_ok;

fn spec(dir: &Path, base_mode: &str, content: &str) {
    fs::write(
        dir.join("s.kdl"),
        format!(
            r#"
image base {{
    layer a {{ mkdir "/srv/app" mode={base_mode} owner="7:8" }}
}}
image app {{
    from base
    layer top {{ file "/srv/app/x" "{content}" }}
}}
"#
        ),
    )
    .unwrap();
}

fn memos(cache: &Path) -> usize {
    fs::read_dir(cache.join("memo-v1")).map_or(0, |d| d.count())
}

/// Composes into `out` with `cache`, and returns the layout's index and the
/// top layer's files.
fn compose(dir: &Path, cache: &Path) -> (Vec<u8>, String) {
    strata_ok(dir, cache, &["compose", "s.kdl", "--out", "out", "--quiet"]);
    let files = strata_ok(dir, cache, &["inspect", "out:app", "--files"]);
    (fs::read(dir.join("out/index.json")).unwrap(), files)
}

#[test]
fn a_layer_rebuilt_over_a_memoized_view_is_the_layer_folded_afresh() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cache = dir.join("cache");
    spec(dir, "0o1750", "one");
    let (_, files) = compose(dir, &cache);
    assert!(files.contains("/srv/app/ dir 1750 7:8"), "{files}");
    assert_eq!(memos(&cache), 0, "a first build keeps no view");

    // The top layer changes: rebuilt, it keeps the view of base ...
    spec(dir, "0o1750", "two");
    compose(dir, &cache);
    assert_eq!(memos(&cache), 1, "a rebuilt layer keeps the view below it");
    // ... and the next change is built over that memo.
    spec(dir, "0o1750", "three");
    let (memoized, files) = compose(dir, &cache);
    assert!(files.contains("/srv/app/ dir 1750 7:8"), "{files}");
    assert_eq!(memos(&cache), 1, "the same stack, the same memo");
    let fresh = dir.join("fresh-cache");
    assert_eq!(
        compose(dir, &fresh).0,
        memoized,
        "the same image without a memo"
    );

    // A changed stack is another view: the parent's new mode is kept.
    spec(dir, "0o0700", "three");
    let (_, files) = compose(dir, &cache);
    assert!(files.contains("/srv/app/ dir 0700 7:8"), "{files}");
    assert_eq!(memos(&cache), 2);

    // A memo that does not check is folded afresh, never trusted.
    for e in fs::read_dir(cache.join("memo-v1")).unwrap() {
        fs::write(e.unwrap().path(), b"garbage that is no view").unwrap();
    }
    spec(dir, "0o0700", "four");
    let (garbled, _) = compose(dir, &cache);
    assert_eq!(compose(dir, &dir.join("fresh-cache-2")).0, garbled);
}
