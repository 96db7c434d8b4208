//! `compose --sbom`: an SPDX 2.3 document per image, stored as an OCI 1.1
//! artifact whose subject is the image manifest; deterministic, and
//! harmless to the images and to the tools that read the layout.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{have, index_digests, json_file, repo, run_ok, strata_ok};

fn blob(layout: &Path, digest: &str) -> std::path::PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// (artifact manifest digest, subject digest, sbom blob digest) of every
/// referrer in the layout's index.json.
fn referrers(layout: &Path) -> Vec<(String, String, String)> {
    let index = json_file(&layout.join("index.json"));
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.get("artifactType").is_some())
        .map(|m| {
            assert_eq!(m["artifactType"], "application/spdx+json");
            assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
            assert!(
                m.get("annotations").is_none(),
                "an artifact takes no ref name: {m}"
            );
            let digest = m["digest"].as_str().unwrap().to_owned();
            let manifest = json_file(&blob(layout, &digest));
            assert_eq!(manifest["artifactType"], "application/spdx+json");
            assert_eq!(
                manifest["config"]["mediaType"],
                "application/vnd.oci.empty.v1+json"
            );
            assert_eq!(manifest["config"]["size"], 2);
            let layers = manifest["layers"].as_array().unwrap();
            assert_eq!(layers.len(), 1);
            assert_eq!(layers[0]["mediaType"], "application/spdx+json");
            let sbom = layers[0]["digest"].as_str().unwrap().to_owned();
            let subject = manifest["subject"]["digest"].as_str().unwrap().to_owned();
            (digest, subject, sbom)
        })
        .collect()
}

fn sha256_file(path: &Path) -> String {
    sum("sha256sum", path)
}

/// The hex digest `tool` (sha1sum, sha256sum) gives `path`.
fn sum(tool: &str, path: &Path) -> String {
    run_ok(Command::new(tool).arg(path))
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn sbom_is_spdx_about_each_image_reproducible_and_leaves_images_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = repo().join("specs/tomcat.kdl");
    let spec = spec.to_str().unwrap();
    let cache = tmp.path().join("cache");
    let json = strata_ok(
        tmp.path(),
        &cache,
        &["compose", spec, "-o", "a", "--sbom", "--json"],
    );
    strata_ok(
        tmp.path(),
        &tmp.path().join("cache2"),
        &["compose", spec, "-o", "b", "--sbom", "-q"],
    );
    strata_ok(tmp.path(), &cache, &["compose", spec, "-o", "plain", "-q"]);
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));

    // The images are the same with and without an SBOM.
    let images = index_digests(&a)
        .into_iter()
        .filter(|(tag, _)| !tag.is_empty())
        .collect::<Vec<_>>();
    assert_eq!(images, index_digests(&tmp.path().join("plain")));
    // Two composes (one from a cold cache) give the same bytes, SBOMs included.
    assert_eq!(
        crate::support::tree_bytes(&a),
        crate::support::tree_bytes(&b)
    );
    // And a warm one, whose layers are all cache hits: their listings (which
    // a plain compose leaves unread) must reach the SBOM all the same.
    strata_ok(
        tmp.path(),
        &cache,
        &["compose", spec, "-o", "warm", "--sbom", "-q"],
    );
    assert_eq!(
        crate::support::tree_bytes(&a),
        crate::support::tree_bytes(&tmp.path().join("warm"))
    );

    let found = referrers(&a);
    assert_eq!(found.len(), 2, "one SBOM per image");
    let report: Value = serde_json::from_str(&json).unwrap();
    for ((tag, manifest), (artifact, subject, sbom)) in images.iter().zip(&found) {
        // Referrer discovery as `oras discover` does it: subject == the image.
        assert_eq!(subject, manifest, "{tag}");
        let image = report["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == tag.as_str())
            .unwrap();
        assert_eq!(image["sbom"].as_str(), Some(artifact.as_str()), "{tag}");
        assert_eq!(
            format!("sha256:{}", sha256_file(&blob(&a, sbom))),
            *sbom,
            "{tag}: the blob is named by its digest"
        );

        let doc = json_file(&blob(&a, sbom));
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(doc["dataLicense"], "CC0-1.0");
        assert_eq!(doc["SPDXID"], "SPDXRef-DOCUMENT");
        assert_eq!(doc["name"], format!("{tag}:latest"));
        let namespace = doc["documentNamespace"].as_str().unwrap();
        assert!(
            namespace.starts_with("https://")
                && namespace.ends_with(manifest.strip_prefix("sha256:").unwrap()),
            "{namespace}"
        );
        assert_eq!(doc["creationInfo"]["created"], "1970-01-01T00:00:00Z");
        assert!(
            doc["creationInfo"]["creators"][0]
                .as_str()
                .unwrap()
                .starts_with("Tool: strata-")
        );
        // Every SPDX element has an SPDXID of the required form, and each
        // relationship names existing elements.
        let packages = doc["packages"].as_array().unwrap();
        let files = doc["files"].as_array().unwrap();
        let mut ids = std::collections::BTreeSet::from(["SPDXRef-DOCUMENT".to_owned()]);
        for element in packages.iter().chain(files) {
            let id = element["SPDXID"].as_str().unwrap();
            assert!(
                id.strip_prefix("SPDXRef-")
                    .is_some_and(|rest| !rest.is_empty()
                        && rest
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')),
                "{id}"
            );
            assert!(ids.insert(id.to_owned()), "{id} is unique");
        }
        for p in packages {
            for key in ["name", "downloadLocation"] {
                assert!(p[key].is_string(), "package {key}: {p}");
            }
        }
        for r in doc["relationships"].as_array().unwrap() {
            assert!(ids.contains(r["spdxElementId"].as_str().unwrap()), "{r}");
            assert!(
                ids.contains(r["relatedSpdxElement"].as_str().unwrap()),
                "{r}"
            );
        }
        let image_pkg = &packages[0];
        assert_eq!(image_pkg["primaryPackagePurpose"], "CONTAINER");
        assert_eq!(
            image_pkg["checksums"][0]["checksumValue"],
            manifest.strip_prefix("sha256:").unwrap()
        );
        let layers: Vec<&Value> = packages
            .iter()
            .filter(|p| p["primaryPackagePurpose"] == "ARCHIVE")
            .collect();
        assert_eq!(layers.len(), if tag == "centos" { 1 } else { 4 }, "{tag}");
        // Each layer's verification code (SPDX 2.3 §7.9) is the SHA1 of the
        // sorted SHA1s of the files it contains.
        for layer in layers {
            assert_eq!(layer["filesAnalyzed"], true);
            let id = layer["SPDXID"].as_str().unwrap();
            let mut sha1s: Vec<&str> = doc["relationships"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["spdxElementId"] == id && r["relationshipType"] == "CONTAINS")
                .map(|r| {
                    let file = files
                        .iter()
                        .find(|f| f["SPDXID"] == r["relatedSpdxElement"])
                        .unwrap();
                    assert_eq!(file["checksums"][0]["algorithm"], "SHA1");
                    file["checksums"][0]["checksumValue"].as_str().unwrap()
                })
                .collect();
            assert!(!sha1s.is_empty(), "{id}");
            sha1s.sort_unstable();
            let joined = tmp.path().join("sha1s");
            fs::write(&joined, sha1s.concat()).unwrap();
            assert_eq!(
                layer["packageVerificationCode"]["packageVerificationCodeValue"],
                sum("sha1sum", &joined).as_str(),
                "{tag} {id}"
            );
        }

        if tag == "tomcat" {
            // A known file with its sha256, as the input has it.
            let jsp = files
                .iter()
                .find(|f| {
                    f["fileName"] == "./usr/local/apache-tomcat-8.5.34/webapps/ROOT/index.jsp"
                })
                .expect("index.jsp is listed");
            let jsp_input = repo().join("specs/inputs/index.jsp");
            assert_eq!(jsp["checksums"][0]["algorithm"], "SHA1");
            assert_eq!(
                jsp["checksums"][0]["checksumValue"].as_str().unwrap(),
                sum("sha1sum", &jsp_input)
            );
            assert_eq!(jsp["checksums"][1]["algorithm"], "SHA256");
            assert_eq!(
                jsp["checksums"][1]["checksumValue"].as_str().unwrap(),
                sha256_file(&jsp_input)
            );
            // The declared inputs, with their digests: the sha256 of the
            // file, and strata's blake3 digest in the comment.
            let inputs: Vec<&str> = packages
                .iter()
                .filter(|p| p["primaryPackagePurpose"] == "SOURCE")
                .map(|p| {
                    let name = p["name"].as_str().unwrap();
                    assert_eq!(p["checksums"][0]["algorithm"], "SHA256");
                    assert_eq!(
                        p["checksums"][0]["checksumValue"].as_str().unwrap(),
                        sha256_file(&repo().join("specs").join(name)),
                        "{name}"
                    );
                    let comment = p["comment"].as_str().unwrap();
                    let blake3 = comment.rsplit(' ').next().unwrap();
                    assert!(
                        blake3.len() == 64 && blake3.bytes().all(|b| b.is_ascii_hexdigit()),
                        "{comment}"
                    );
                    name
                })
                .collect();
            for input in [
                "inputs/centos-7-rootfs.tar.gz",
                "inputs/jdk-8u191-linux-x64.tar.gz",
                "inputs/apache-tomcat-8.5.34.tar.gz",
                "inputs/index.jsp",
            ] {
                assert!(inputs.contains(&input), "{input} in {inputs:?}");
            }
        }
    }

    // strata's own readers skip the artifacts and show them on their image.
    let inspect = strata_ok(tmp.path(), &cache, &["inspect", "a:tomcat"]);
    assert!(
        inspect.contains(&format!("  referrer {} application/spdx+json", found[1].0)),
        "{inspect}"
    );
}

#[test]
fn tools_read_a_layout_with_sboms() {
    const TEST: &str = "tools_read_a_layout_with_sboms";
    if !have("skopeo", TEST) || !have("umoci", TEST) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let spec = repo().join("specs/tomcat.kdl");
    strata_ok(
        tmp.path(),
        &tmp.path().join("cache"),
        &[
            "compose",
            spec.to_str().unwrap(),
            "-o",
            "lay",
            "--sbom",
            "--oci-archive",
            "lay.tar",
            "-q",
        ],
    );
    let layout = tmp.path().join("lay");
    let digests = index_digests(&layout);
    let digest = &digests.iter().find(|(t, _)| t == "tomcat").unwrap().1;
    for source in [
        format!("oci:{}:tomcat", layout.display()),
        format!(
            "oci-archive:{}:tomcat",
            tmp.path().join("lay.tar").display()
        ),
    ] {
        let inspect: Value =
            serde_json::from_str(&run_ok(Command::new("skopeo").arg("inspect").arg(&source)))
                .unwrap();
        assert_eq!(
            inspect["Digest"].as_str(),
            Some(digest.as_str()),
            "{source}"
        );
    }
    let copy = tmp.path().join("copy");
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--preserve-digests"])
            .arg(format!("oci:{}:tomcat", layout.display()))
            .arg(format!("oci:{}:tomcat", copy.display())),
    );
    assert_eq!(index_digests(&copy)[0].1, *digest);
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:tomcat", layout.display()))
            .arg(tmp.path().join("bundle")),
    );
    assert!(
        tmp.path()
            .join("bundle/rootfs/usr/local/jdk1.8.0_191/bin/java")
            .is_file()
    );
}
