//! Writing docker-archives: the Docker 25 layout-in-a-tar, deterministic.

use std::collections::BTreeMap;
use std::fs;

use strata_export::{Error, write_docker_archive, write_layout, write_oci_archive};
use strata_oci::Digest;

use crate::{Fixture, names};

use strata_testkit::tar_entries as entries;

#[test]
fn archive_holds_a_layout_and_a_docker_manifest() {
    let fx = Fixture::two_layers();
    let file = fx.path("images.tar");
    write_docker_archive(&file, &fx.images()).unwrap();
    let entries = entries(&file);

    let paths: Vec<&str> = entries.iter().map(|(p, _, _)| p.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "entries sorted by path");
    let blobs = paths
        .iter()
        .filter(|p| p.starts_with("blobs/sha256/") && p.len() > 13);
    assert_eq!(
        blobs.count(),
        6,
        "2 layers (one shared), 2 configs, 2 manifests"
    );
    assert_eq!(paths[..2], ["blobs/", "blobs/sha256/"]);
    assert_eq!(
        paths[8..],
        ["index.json", "manifest.json", "oci-layout", "repositories"]
    );

    for (path, header, content) in &entries {
        assert!(header.as_ustar().is_some(), "{path}: ustar");
        assert_eq!(header.mtime().unwrap(), 0, "{path}");
        assert_eq!(
            (header.uid().unwrap(), header.gid().unwrap()),
            (0, 0),
            "{path}"
        );
        assert_eq!(header.username_bytes(), Some(&b""[..]), "{path}");
        assert_eq!(header.groupname_bytes(), Some(&b""[..]), "{path}");
        let mode = if path.ends_with('/') { 0o755 } else { 0o644 };
        assert_eq!(header.mode().unwrap(), mode, "{path}");
        if let Some(hex) = path.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert_eq!(Digest::of(content).hex(), hex);
        }
    }

    // The same blobs and index as a layout, bar the index annotations.
    let layout = fx.path("layout");
    let exported = write_layout(&layout, &fx.images()).unwrap();
    for name in names(&layout.join("blobs/sha256")) {
        assert!(paths.contains(&format!("blobs/sha256/{name}").as_str()));
    }

    let content = |name: &str| {
        let (_, _, c) = entries.iter().find(|(p, _, _)| p == name).unwrap();
        String::from_utf8(c.clone()).unwrap()
    };
    let blob = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    assert_eq!(content("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#);
    assert_eq!(
        content("manifest.json"),
        format!(
            r#"[{{"Config":"{}","Layers":["{}"],"RepoTags":["base:1.0"]}},{{"Config":"{}","Layers":["{}","{}"],"RepoTags":["app:latest"]}}]"#,
            blob(&exported[0].config),
            blob(&fx.base.desc.blob),
            blob(&exported[1].config),
            blob(&fx.base.desc.blob),
            blob(&fx.app.desc.blob),
        )
    );
    assert_eq!(
        content("repositories"),
        format!(
            r#"{{"app":{{"latest":"{}"}},"base":{{"1.0":"{}"}}}}"#,
            fx.app.desc.blob.hex(),
            fx.base.desc.blob.hex()
        )
    );
    let index: serde_json::Value = serde_json::from_str(&content("index.json")).unwrap();
    let annotations: Vec<BTreeMap<String, String>> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| serde_json::from_value(m["annotations"].clone()).unwrap())
        .collect();
    assert_eq!(
        annotations,
        [
            [
                ("io.containerd.image.name", "docker.io/library/base:1.0"),
                ("org.opencontainers.image.ref.name", "1.0"),
            ],
            [
                ("io.containerd.image.name", "docker.io/library/app:latest"),
                ("org.opencontainers.image.ref.name", "latest"),
            ],
        ]
        .map(|a| a.map(|(k, v)| (k.to_owned(), v.to_owned())).into())
    );
    let digests: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        digests,
        exported
            .iter()
            .map(|e| e.manifest.to_string())
            .collect::<Vec<_>>()
    );
}

#[test]
fn archive_bytes_are_reproducible_and_replace_the_old_file() {
    let fx = Fixture::two_layers();
    let (one, two) = (fx.path("one.tar"), fx.path("two.tar"));
    write_docker_archive(&one, &fx.images()).unwrap();
    fs::write(&two, "an old archive").unwrap();
    write_docker_archive(&two, &fx.images()).unwrap();
    assert_eq!(fs::read(&one).unwrap(), fs::read(&two).unwrap());
    assert_eq!(names(fx.tmp.path()), ["inputs", "one.tar", "two.tar"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&one).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}

#[test]
fn archive_refuses_a_bad_blob_and_leaves_nothing() {
    let fx = Fixture::two_layers();
    let file = fx.path("out.tar");
    fs::write(&file, "previous").unwrap();

    let mut images = fx.images();
    images[1].layers[1].blob_path = fx.base.blob_path.clone();
    images[1].layers[1].desc.size = fx.base.desc.size;
    let err = write_docker_archive(&file, &images).unwrap_err();
    assert!(matches!(err, Error::BadBlob { .. }), "{err}");

    let mut images = fx.images();
    images[1].layers[1].desc.size += 3;
    let err = write_docker_archive(&file, &images).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");

    assert_eq!(fs::read_to_string(&file).unwrap(), "previous");
    assert_eq!(
        names(fx.tmp.path()),
        ["inputs", "out.tar"],
        "no temporary left"
    );
}

#[test]
fn archive_refuses_names_docker_cannot_load() {
    let fx = Fixture::two_layers();
    let mut images = fx.images();
    images[0].name = "Base".to_owned();
    let err = write_docker_archive(&fx.path("out.tar"), &images).unwrap_err();
    assert!(matches!(err, Error::BadImage { .. }), "{err}");
    assert!(!fx.path("out.tar").exists());
}

#[test]
fn oci_archive_refuses_a_corrupt_layout_blob_and_leaves_nothing() {
    let fx = Fixture::two_layers();
    let layout = fx.path("layout");
    write_layout(&layout, &fx.images()).unwrap();
    let file = fx.path("oci.tar");
    write_oci_archive(&file, &layout, 0).unwrap();
    assert_eq!(
        entries(&file).len(),
        2 + 2 + names(&layout.join("blobs/sha256")).len(),
        "two dirs, index.json, oci-layout and every blob"
    );

    // Flip one byte of a layer blob: the archive names the blob.
    let blob = layout.join("blobs/sha256").join(fx.base.desc.blob.hex());
    let mut bytes = fs::read(&blob).unwrap();
    bytes[0] ^= 1;
    fs::remove_file(&blob).unwrap();
    fs::write(&blob, bytes).unwrap();
    fs::write(&file, "previous").unwrap();
    let err = write_oci_archive(&file, &layout, 0).unwrap_err();
    assert!(
        matches!(&err, Error::BadBlob { path, .. } if *path == blob),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "previous");
    assert_eq!(
        names(fx.tmp.path()),
        ["inputs", "layout", "oci.tar"],
        "no temporary left"
    );
}
