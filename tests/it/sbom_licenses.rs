//! Licences in the SBOM (issue 18): each Debian package's `licenseDeclared`
//! is what its `/usr/share/doc/NAME/copyright` declares when the file is
//! machine-readable (DEP-5), as an SPDX expression; a free-form file, or
//! none, is NOASSERTION; a doc directory that is a symlink to another
//! package's is followed; each `LicenseRef-` is defined in the document.
//! Offline, from a repository the test makes and signs itself, and checked
//! by a real SPDX reader, the SPDX project's own `pyspdxtools`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use strata_testkit::debrepo::{build_deb_with, have_tools, index_and_sign};

use crate::support::{sbom_of, strata_ok};

/// `pyspdxtools` (PyPI's spdx-tools): `$STRATA_PYSPDXTOOLS`, the virtualenv
/// `.ci/run` makes (`/opt/spdx-venv`), or `PATH`. `None` (SKIPPED) without
/// it, and a failure under `CI`, which installs it.
pub fn pyspdxtools(test: &str) -> Option<PathBuf> {
    crate::support::venv_tool(
        test,
        "pyspdxtools",
        "STRATA_PYSPDXTOOLS",
        "/opt/spdx-venv",
        "spdx-tools",
    )
}

/// Validates an SPDX document with `pyspdxtools`, which exits non-zero and
/// prints the problems when the document breaks the SPDX 2.3 spec.
pub fn validate(tool: &Path, doc: &Path) {
    // It decides the format by the file name.
    let tmp = tempfile::tempdir().unwrap();
    let named = tmp.path().join("sbom.spdx.json");
    fs::copy(doc, &named).unwrap();
    let out = Command::new(tool)
        .args(["--novalidation", "--infile"])
        .arg(&named)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyspdxtools cannot read the sbom: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(tool)
        .args(["--version", "SPDX-2.3", "--infile"])
        .arg(&named)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyspdxtools finds the sbom invalid: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const DEP5: &str = "Format: https://example.invalid/copyright-format/1.0/\nUpstream-Name: app\n\nFiles: *\nCopyright: 2024 Someone\nLicense: GPL-2+ or Artistic, and public-domain\n\nFiles: debian/*\nCopyright: 2024 Else\nLicense: Expat\n\nLicense: public-domain\n Nobody owns this.\n";

#[test]
fn sbom_licences_from_the_packages_copyright_files() {
    let test = "sbom_licences_from_the_packages_copyright_files";
    if !have_tools(test) {
        return;
    }
    let tool = pyspdxtools(test);
    let tmp = tempfile::tempdir().unwrap();
    let (root, gnupg, cache) = (
        tmp.path().join("repo"),
        tmp.path().join("gnupg"),
        tmp.path().join("cache"),
    );
    build_deb_with(
        &root,
        "app",
        "1.0",
        "amd64",
        &["Depends: libapp1, app-dev, prose"],
        &[("usr/share/doc/app/copyright", DEP5)],
    );
    build_deb_with(
        &root,
        "libapp1",
        "1.0",
        "amd64",
        &[],
        &[(
            "usr/share/doc/libapp1/copyright",
            "Format: https://example.invalid/copyright-format/1.0/\n\nFiles: src/*\nCopyright: A\nLicense: LGPL-2.1+\n\nFiles: tools/*\nCopyright: B\nLicense: BSD-3-clause\n",
        )],
    );
    // A -dev package whose doc directory is its library's, as Debian links them.
    build_deb_with(
        &root,
        "app-dev",
        "1.0",
        "amd64",
        &[],
        &[("usr/share/doc/app-dev", "-> libapp1")],
    );
    build_deb_with(
        &root,
        "prose",
        "1.0",
        "all",
        &[],
        &[(
            "usr/share/doc/prose/copyright",
            "This package was debianized by someone.\nIt is under the GPL, version 2 or later.\n",
        )],
    );
    let key = index_and_sign(&root, &gnupg);
    let dir = tmp.path().join("spec");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("test.gpg"), &key).unwrap();
    fs::write(
        dir.join("app.kdl"),
        format!(
            "repository test url=\"file://{}\" suite=\"stable\" keyring=\"test.gpg\"\nimage app {{\n    layer os {{ file \"/etc/os-release\" \"ID=debian\\nVERSION_ID=\\\"12\\\"\\n\" }}\n    layer lib {{ packages \"libapp1\" }}\n    layer app {{ packages \"app\" }}\n}}\n",
            root.display()
        ),
    )
    .unwrap();
    strata_ok(
        &dir,
        &cache,
        &["compose", "app.kdl", "-o", "out", "--sbom", "-q"],
    );
    let (doc, path) = sbom_of(&dir.join("out"));
    let licences: Vec<(&str, &str)> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["SPDXID"].as_str().unwrap().starts_with("SPDXRef-Deb-"))
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["licenseDeclared"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        licences,
        [
            ("libapp1", "BSD-3-Clause AND LGPL-2.1-or-later"),
            (
                "app",
                "(GPL-2.0-or-later OR Artistic-1.0) AND LicenseRef-public-domain"
            ),
            ("app-dev", "BSD-3-Clause AND LGPL-2.1-or-later"),
            ("prose", "NOASSERTION"),
        ]
    );
    assert_eq!(
        doc["hasExtractedLicensingInfos"],
        serde_json::json!([{
            "licenseId": "LicenseRef-public-domain",
            "extractedText": "Nobody owns this.",
        }])
    );
    if let Some(tool) = tool {
        validate(&tool, &path);
    }
}
