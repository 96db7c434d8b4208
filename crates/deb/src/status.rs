//! dpkg's database of installed packages: `/var/lib/dpkg/status` entries
//! made from each `.deb`'s own control paragraph, and read back from a lower
//! layer's status.
//!
//! An entry is the package's control paragraph with `Status: install ok
//! installed` after `Package`, as dpkg writes it once a package is
//! configured; the file lists entries sorted by name and architecture, as
//! dpkg sorts it. That is what `dpkg -l`, `dpkg -s` and the scanners (Trivy,
//! Grype, syft) read.

use crate::Error;
use crate::control::{self, Paragraph};
use crate::packages::MultiArch;
use crate::relation;
use crate::resolve::Installed;
use crate::version::Version;

/// The status entry of a package from its `.deb`'s `control` file; `deb`
/// names the package file in errors.
pub fn entry(deb: &str, control_text: &str) -> Result<Paragraph, Error> {
    let paras = control::parse(control_text).map_err(|e| Error::Control {
        file: format!("{deb}: control"),
        source: e,
    })?;
    let [p] = paras.as_slice() else {
        return Err(Error::BadDeb {
            deb: deb.to_owned(),
            reason: format!("the control file has {} paragraphs, not one", paras.len()),
        });
    };
    let mut p = p.clone();
    for f in ["Package", "Version", "Architecture"] {
        if p.get(f).is_none_or(str::is_empty) {
            return Err(Error::BadDeb {
                deb: deb.to_owned(),
                reason: format!("the control file has no {f} field"),
            });
        }
    }
    p.remove("Status");
    let at = p
        .fields()
        .position(|(n, _)| n.eq_ignore_ascii_case("Package"))
        .map_or(0, |i| i + 1);
    p.insert(at, "Status", "install ok installed");
    Ok(p)
}

/// A whole status file from its entries, sorted by name then
/// architecture; each entry is followed by a blank line, as dpkg writes it.
pub fn write(entries: &[Paragraph]) -> String {
    let mut sorted: Vec<&Paragraph> = entries.iter().collect();
    sorted.sort_by_key(|p| {
        (
            p.get("Package").unwrap_or(""),
            p.get("Architecture").unwrap_or(""),
        )
    });
    let mut out = String::new();
    for p in sorted {
        out.push_str(&p.to_text());
        out.push('\n');
    }
    out
}

/// The installed packages of a status file (entries whose status is
/// `installed`); `file` names it in errors.
pub fn read(file: &str, text: &str) -> Result<Vec<Installed>, Error> {
    let paras = control::parse(text).map_err(|e| Error::Control {
        file: file.to_owned(),
        source: e,
    })?;
    let mut out = Vec::new();
    for p in paras {
        let installed = p
            .get("Status")
            .is_some_and(|s| s.split_whitespace().last() == Some("installed"));
        if !installed {
            continue;
        }
        let name = p.get("Package").unwrap_or("").to_owned();
        let bad = |reason: String| Error::BadPackage {
            file: file.to_owned(),
            package: name.clone(),
            reason,
        };
        let version =
            Version::parse(p.get("Version").unwrap_or("")).map_err(|e| bad(e.to_string()))?;
        let provides = p
            .get("Provides")
            .map(relation::parse_provides)
            .transpose()
            .map_err(|e| bad(e.to_string()))?
            .unwrap_or_default();
        let multi_arch = match p.get("Multi-Arch") {
            Some("same") => MultiArch::Same,
            Some("foreign") => MultiArch::Foreign,
            Some("allowed") => MultiArch::Allowed,
            _ => MultiArch::No,
        };
        out.push(Installed {
            arch: p.get("Architecture").unwrap_or("all").to_owned(),
            name,
            version,
            multi_arch,
            provides,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_and_back() {
        let a = entry("a.deb", "Package: zz\nVersion: 1.0-1\nArchitecture: amd64\nProvides: v (= 2)\nDescription: x\n more\n").unwrap();
        let b = entry("b.deb", "Package: aa\nVersion: 2\nArchitecture: all\n").unwrap();
        let text = write(&[a, b]);
        assert!(
            text.starts_with("Package: aa\nStatus: install ok installed\nVersion: 2\n"),
            "{text}"
        );
        assert!(text.contains("\n\nPackage: zz\nStatus: install ok installed\n"));
        let back = read("status", &text).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].provides[0].name, "v");
    }

    #[test]
    fn refused() {
        assert!(entry("x.deb", "Package: a\n").is_err());
        assert!(
            entry(
                "x.deb",
                "Package: a\nVersion: 1\nArchitecture: all\n\nPackage: b\n"
            )
            .is_err()
        );
        assert!(
            read(
                "status",
                "Package: a\nStatus: install ok installed\nVersion: zz\n"
            )
            .is_err()
        );
        // Packages not installed (removed, config-files) do not count.
        assert!(
            read(
                "status",
                "Package: a\nStatus: deinstall ok config-files\nVersion: 1\n"
            )
            .unwrap()
            .is_empty()
        );
    }
}
