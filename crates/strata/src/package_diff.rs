//! Package changes as package changes: the Debian packages of two images,
//! or of two locks of one layer, compared by name (`name: old -> new`,
//! `+ name version`, `- name version`), for `strata diff`, the `--locked`
//! drift error and `strata lock`'s report.
//!
//! A set comes from a lock's `package` lines or from an image's
//! `/var/lib/dpkg/status` (installed entries only), so an image built with
//! `run "apt-get install ..."` compares the same way as one built from
//! `packages` layers.

use std::collections::BTreeMap;
use std::io::{BufReader, Read as _};
use std::path::Path;

use strata_layer::EntryKind;

/// Installed packages: `NAME` (or `NAME:ARCH` when a name is installed
/// for several architectures) -> version.
pub type PackageSet = BTreeMap<String, String>;

/// The set of a lock's `package NAME VERSION ARCH ...` lines (the text
/// after `package `).
pub fn from_lock_lines<'a>(lines: impl IntoIterator<Item = &'a String>) -> PackageSet {
    let triples: Vec<(String, String, String)> = lines
        .into_iter()
        .filter_map(|l| {
            let mut w = l.split(' ');
            Some((
                w.next()?.to_owned(),
                w.next()?.to_owned(),
                w.next()?.to_owned(),
            ))
        })
        .collect();
    keyed(triples)
}

/// The installed packages of a dpkg status file's text.
pub fn from_status(text: &str) -> PackageSet {
    let mut triples = Vec::new();
    for para in text.split("\n\n") {
        let field = |name: &str| {
            para.lines().find_map(|l| {
                let v = l.strip_prefix(name)?.strip_prefix(':')?;
                Some(v.trim().to_owned())
            })
        };
        if let (Some(name), Some(version), Some(status)) =
            (field("Package"), field("Version"), field("Status"))
            && status.ends_with(" installed")
        {
            triples.push((name, version, field("Architecture").unwrap_or_default()));
        }
    }
    keyed(triples)
}

fn keyed(triples: Vec<(String, String, String)>) -> PackageSet {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for (n, _, _) in &triples {
        *count.entry(n).or_default() += 1;
    }
    let several: Vec<String> = count
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(n, _)| (*n).to_owned())
        .collect();
    triples
        .into_iter()
        .map(|(n, v, a)| {
            if several.contains(&n) {
                (format!("{n}:{a}"), v)
            } else {
                (n, v)
            }
        })
        .collect()
}

/// What changed from `old` to `new`, one line each, by name: `NAME: OLD ->
/// NEW`, `+ NAME VERSION` (added), `- NAME VERSION` (removed).
pub fn changes(old: &PackageSet, new: &PackageSet) -> Vec<String> {
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|n| match (old.get(n), new.get(n)) {
            (Some(a), Some(b)) if a == b => None,
            (Some(a), Some(b)) => Some(format!("{n}: {a} -> {b}")),
            (None, Some(b)) => Some(format!("+ {n} {b}")),
            (Some(a), None) => Some(format!("- {n} {a}")),
            (None, None) => None,
        })
        .collect()
}

/// The text of `var/lib/dpkg/status` in a layer blob, if it has one as a
/// regular file (at most 64 MiB).
pub fn status_in_blob(blob: &Path) -> Result<Option<String>, strata_layer::Error> {
    let file = std::fs::File::open(blob).map_err(|source| strata_layer::Error::Io {
        path: blob.to_path_buf(),
        source,
    })?;
    let mut reader = strata_layer::read::BlobReader::new(BufReader::new(file), blob)?;
    while let Some(entry) = reader.next_entry()? {
        if entry.kind == EntryKind::File && entry.path.0 == b"var/lib/dpkg/status" {
            let mut text = Vec::new();
            let read = reader.data().take(64 << 20).read_to_end(&mut text);
            read.map_err(|e| reader.data_error(e))?;
            return Ok(String::from_utf8(text).ok());
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_by_name() {
        let old = from_lock_lines(&[
            "app 1.0 amd64 aa 1 pool/app_1.0_amd64.deb".to_owned(),
            "lib 1.0 amd64 bb 1 pool/lib_1.0_amd64.deb".to_owned(),
            "gone 3 all cc 1 pool/gone_3_all.deb".to_owned(),
        ]);
        let new = from_status(
            "Package: app\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\nPackage: lib\nStatus: install ok installed\nVersion: 2.0\nArchitecture: amd64\n\nPackage: new\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n\nPackage: removed\nStatus: deinstall ok config-files\nVersion: 9\n",
        );
        assert_eq!(
            changes(&old, &new),
            ["- gone 3", "lib: 1.0 -> 2.0", "+ new 1"]
        );
        let multi = from_lock_lines(&[
            "libc6 2 amd64 aa 1 f".to_owned(),
            "libc6 2 i386 aa 1 f".to_owned(),
        ]);
        assert_eq!(
            multi.keys().collect::<Vec<_>>(),
            ["libc6:amd64", "libc6:i386"]
        );
    }
}
