//! A `Packages` index: one paragraph per binary package, read into
//! [`Package`] records with their relations parsed, their hash and where
//! the `.deb` lies.
//!
//! A record that cannot be read (a bad version, a bad relation, no SHA256)
//! makes the whole index an error naming the file and the package: an index
//! is signed as a whole, so a broken record means a broken repository, and
//! skipping it would silently change what resolves.

use crate::control::{self, Paragraph};
use crate::relation::{self, Alternatives, Relation};
use crate::version::Version;
use crate::{Error, Sha256};

/// `Multi-Arch` of a package (Debian's MultiArchSpec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultiArch {
    /// Unset: satisfies only dependencies of its own architecture.
    #[default]
    No,
    /// Co-installable with itself for other architectures.
    Same,
    /// Satisfies dependencies of any architecture.
    Foreign,
    /// Satisfies `name:any` dependencies of any architecture.
    Allowed,
}

/// One binary package of an index.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub version: Version,
    /// An architecture name, or `all`.
    pub arch: String,
    pub multi_arch: MultiArch,
    pub essential: bool,
    pub priority: Option<String>,
    pub source: Option<String>,
    pub depends: Vec<Alternatives>,
    pub pre_depends: Vec<Alternatives>,
    pub provides: Vec<Relation>,
    pub conflicts: Vec<Alternatives>,
    pub breaks: Vec<Alternatives>,
    /// Path of the `.deb` relative to the repository's root.
    pub filename: String,
    pub size: u64,
    pub sha256: Sha256,
    /// The whole paragraph, as the index wrote it.
    pub paragraph: Paragraph,
}

impl Package {
    /// `name:arch`, as apt and dpkg print a package.
    pub fn id(&self) -> String {
        format!("{}:{}", self.name, self.arch)
    }
}

/// Parses an index; `file` names it in errors.
pub fn parse_index(file: &str, text: &str) -> Result<Vec<Package>, Error> {
    let paras = control::parse(text).map_err(|e| Error::Control {
        file: file.to_owned(),
        source: e,
    })?;
    paras.into_iter().map(|p| from_paragraph(file, p)).collect()
}

/// Reads one record of an index.
fn from_paragraph(file: &str, p: Paragraph) -> Result<Package, Error> {
    let name = p.get("Package").unwrap_or("").to_owned();
    let bad = |reason: String| Error::BadPackage {
        file: file.to_owned(),
        package: if name.is_empty() {
            format!("(record at line {})", p.line)
        } else {
            name.clone()
        },
        reason,
    };
    if !relation::valid_name(&name) {
        return Err(bad("no valid Package field".into()));
    }
    let field = |f: &str| p.get(f).ok_or_else(|| bad(format!("no {f} field")));
    let version = Version::parse(field("Version")?).map_err(|e| bad(e.to_string()))?;
    let arch = field("Architecture")?.to_owned();
    if arch.is_empty() || !arch.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(bad(format!("a bad Architecture {arch:?}")));
    }
    let multi_arch = match p.get("Multi-Arch").map(str::to_ascii_lowercase).as_deref() {
        None | Some("no") => MultiArch::No,
        Some("same") => MultiArch::Same,
        Some("foreign") => MultiArch::Foreign,
        Some("allowed") => MultiArch::Allowed,
        Some(other) => return Err(bad(format!("an unknown Multi-Arch {other:?}"))),
    };
    let rel = |f: &str| -> Result<Vec<Alternatives>, Error> {
        p.get(f)
            .map(relation::parse_field)
            .transpose()
            .map_err(|e| bad(format!("{f}: {e}")))
            .map(Option::unwrap_or_default)
    };
    let provides = p
        .get("Provides")
        .map(relation::parse_provides)
        .transpose()
        .map_err(|e| bad(format!("Provides: {e}")))?
        .unwrap_or_default();
    let filename = field("Filename")?.to_owned();
    if filename.starts_with('/') || filename.split('/').any(|c| c == ".." || c.is_empty()) {
        return Err(bad(format!(
            "a Filename outside the repository: {filename:?}"
        )));
    }
    let size = field("Size")?
        .parse::<u64>()
        .map_err(|_| bad("Size is not a number".into()))?;
    let sha256 = Sha256::from_hex(field("SHA256")?)
        .ok_or_else(|| bad("SHA256 is not 64 hex digits".into()))?;
    Ok(Package {
        version,
        arch,
        multi_arch,
        essential: p
            .get("Essential")
            .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
        priority: p.get("Priority").map(str::to_owned),
        source: p.get("Source").map(str::to_owned),
        depends: rel("Depends")?,
        pre_depends: rel("Pre-Depends")?,
        provides,
        conflicts: rel("Conflicts")?,
        breaks: rel("Breaks")?,
        filename,
        size,
        sha256,
        name: name.clone(),
        paragraph: p,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REC: &str = "Package: tomcat10\nVersion: 10.1.6-1+deb12u1\nArchitecture: all\nMulti-Arch: foreign\nDepends: tomcat10-common (>= 10.1.6-1+deb12u1), ucf, adduser\nPre-Depends: init-system-helpers (>= 1.54~)\nProvides: httpd-java\nPriority: optional\nFilename: pool/main/t/tomcat10/tomcat10_10.1.6-1+deb12u1_all.deb\nSize: 12345\nSHA256: 1111111111111111111111111111111111111111111111111111111111111111\n";

    #[test]
    fn record() {
        let ps = parse_index("Packages", REC).unwrap();
        let p = &ps[0];
        assert_eq!(p.id(), "tomcat10:all");
        assert_eq!(p.multi_arch, MultiArch::Foreign);
        assert_eq!(p.depends.len(), 3);
        assert_eq!(p.pre_depends[0][0].name, "init-system-helpers");
        assert_eq!(p.provides[0].name, "httpd-java");
        assert_eq!(p.size, 12345);
    }

    #[test]
    fn hostile_records_name_the_package() {
        for (edit, want) in [
            ("Version: 10.1.6-1+deb12u1", "Version: x"),
            ("Size: 12345", "Size: -1"),
            ("Filename: pool/main", "Filename: ../../etc"),
            ("Filename: pool/main", "Filename: /pool/main"),
            ("Multi-Arch: foreign", "Multi-Arch: sometimes"),
            ("Depends: tomcat10-common", "Depends: Tomcat10-common"),
            ("SHA256: 1111", "SHA256: 11"),
        ] {
            let text = REC.replace(edit, want);
            match parse_index("Packages", &text) {
                Err(Error::BadPackage { package, file, .. }) => {
                    assert_eq!(
                        (package.as_str(), file.as_str()),
                        ("tomcat10", "Packages"),
                        "{want}"
                    );
                }
                other => panic!("{want}: {other:?}"),
            }
        }
        assert!(parse_index("P", "Version: 1\n").is_err());
    }
}
