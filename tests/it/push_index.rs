//! Pushing an `index` and SBOM referrers (issue 19), to the loopback
//! `docker-registry` (distribution 2.8, which has no referrers API):
//! `compose --push` sends the index after its images and each image's SBOM
//! as an OCI 1.1 referrer (a manifest with `subject`), listed under the
//! fallback tag `sha256-HEX`; `strata push LAYOUT:INDEX` works alone;
//! Docker pulls the index and runs the image of its platform. The
//! registry's API is read with a tiny HTTP client here (no `oras` needed).

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::docker::{docker, docker_ready};
use crate::registry::{TestRegistry, remote_digest, tools};
use crate::support::{index_digests, repo, run_ok, strata_ok};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// `GET path` from the registry on `port`: status and body.
fn get(port: u16, path: &str, accept: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: {accept}\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, raw[split + 4..].to_vec())
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

#[test]
fn an_index_and_its_sboms_are_pushed_and_docker_pulls_and_runs_it() {
    let test = "an_index_and_its_sboms_are_pushed";
    if !tools(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let reg = TestRegistry::start(&dir.join("registry"), None);
    std::fs::copy(repo().join("specs/inputs/hello"), dir.join("hello")).unwrap();
    std::fs::write(
        dir.join("s.kdl"),
        r#"image hello-amd64 {
    layer hello { copy "hello" to="/hello" mode=0o755 }
    cmd "/hello"
}
image hello-arm64 {
    from hello-amd64
    platform "linux/arm64/v8"
}
index hello {
    image hello-amd64
    image hello-arm64
}
"#,
    )
    .unwrap();
    let base = format!("docker://{}/p3", reg.host());
    let out = strata_ok(
        dir,
        &dir.join("cache"),
        &[
            "compose",
            "s.kdl",
            "-o",
            "out",
            "--sbom",
            "--push",
            &base,
            "--insecure",
            "--json",
        ],
    );
    let report = json(out.as_bytes());
    let local = index_digests(&dir.join("out"));
    let digest_of = |name: &str| {
        local
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} in {local:?}"))
            .1
            .clone()
    };
    let pushed = report["pushed"].as_array().expect("pushed");
    let index = pushed
        .iter()
        .find(|p| p["image"] == "hello")
        .unwrap_or_else(|| panic!("the index is pushed: {out}"));
    assert_eq!(index["reference"], format!("{base}/hello:latest"), "{out}");
    assert_eq!(
        index["manifest"].as_str(),
        Some(digest_of("hello").as_str())
    );
    assert_eq!(
        remote_digest(&format!("{base}/hello:latest")),
        digest_of("hello"),
        "the registry serves the layout's index bytes"
    );

    // Each image's SBOM is a referrer: no referrers API on distribution
    // 2.8, so it is listed under the fallback tag, and its manifest names
    // the image as its subject.
    let amd64 = digest_of("hello-amd64");
    let hex = amd64.trim_start_matches("sha256:");
    let (status, _) = get(
        reg.port,
        &format!("/v2/p3/hello-amd64/referrers/{amd64}"),
        OCI_INDEX,
    );
    assert_eq!(status, 404, "distribution 2.8 has no referrers API");
    let (status, body) = get(
        reg.port,
        &format!("/v2/p3/hello-amd64/manifests/sha256-{hex}"),
        OCI_INDEX,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let listed = json(&body);
    let refs = listed["manifests"].as_array().expect("manifests");
    assert_eq!(refs.len(), 1, "{listed}");
    assert_eq!(refs[0]["artifactType"], "application/spdx+json", "{listed}");
    let artifact = refs[0]["digest"].as_str().unwrap().to_owned();
    let (status, body) = get(
        reg.port,
        &format!("/v2/p3/hello-amd64/manifests/{artifact}"),
        OCI_MANIFEST,
    );
    assert_eq!(status, 200);
    let manifest = json(&body);
    assert_eq!(manifest["subject"]["digest"], amd64.as_str(), "{manifest}");
    let sbom = manifest["layers"][0]["digest"].as_str().unwrap();
    let (status, body) = get(reg.port, &format!("/v2/p3/hello-amd64/blobs/{sbom}"), "*/*");
    assert_eq!(status, 200);
    assert_eq!(json(&body)["spdxVersion"], "SPDX-2.3");
    let our_referrers = &pushed.iter().find(|p| p["image"] == "hello-amd64").unwrap()["referrers"];
    assert_eq!(our_referrers[0]["manifest"], artifact.as_str(), "{out}");
    assert_eq!(
        our_referrers[0]["fallback_tag"],
        format!("sha256-{hex}"),
        "{out}"
    );

    // Pushed again: the fallback tag lists the artifact once.
    strata_ok(
        dir,
        &dir.join("cache"),
        &[
            "compose",
            "s.kdl",
            "-o",
            "out",
            "--sbom",
            "--push",
            &base,
            "--insecure",
            "-q",
        ],
    );
    let (_, body) = get(
        reg.port,
        &format!("/v2/p3/hello-amd64/manifests/sha256-{hex}"),
        OCI_INDEX,
    );
    assert_eq!(json(&body)["manifests"].as_array().unwrap().len(), 1);

    // `strata push LAYOUT:INDEX` alone.
    let summary = strata_ok(
        dir,
        &dir.join("cache"),
        &[
            "push",
            "out:hello",
            &format!("docker://{}/p3/again:1", reg.host()),
            "--insecure",
        ],
    );
    assert!(summary.contains("pushed hello to"), "{summary}");
    assert_eq!(
        remote_digest(&format!("docker://{}/p3/again:1", reg.host())),
        digest_of("hello")
    );

    // Docker pulls the index and runs the image of its platform.
    if !docker_ready(test) || std::env::consts::ARCH != "x86_64" {
        return;
    }
    let image = format!("{}/p3/again:1", reg.host());
    run_ok(docker().args(["pull", "-q", &image]));
    let ran = docker()
        .args(["run", "--rm", "--network", "none", &image])
        .output()
        .unwrap();
    let _ = docker().args(["rmi", "-f", &image]).output();
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "Hello from strata!\n",
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
}
