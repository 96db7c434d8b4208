//! Writing OCI image layouts, replacing them safely, and reading them back.

use std::fs;

use oci_spec::image::ImageIndex;
use strata_export::{Error, config_summary, layers_summary, open_layout, write_layout};
use strata_oci::Digest;

use crate::{Fixture, image, names, tar_layer};

#[test]
fn two_images_share_a_layer_stored_once() {
    let fx = Fixture::two_layers();
    let out = fx.path("out");
    let exported = write_layout(&out, &fx.images()).unwrap();

    assert_eq!(names(&out), ["blobs", "index.json", "oci-layout"]);
    assert_eq!(
        fs::read_to_string(out.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    // 2 layers (one shared), 2 configs, 2 manifests.
    assert_eq!(names(&out.join("blobs/sha256")).len(), 6);
    for name in names(&out.join("blobs/sha256")) {
        let bytes = fs::read(out.join("blobs/sha256").join(&name)).unwrap();
        assert_eq!(Digest::of(&bytes).hex(), name, "blob named by its digest");
    }

    let index: ImageIndex =
        serde_json::from_slice(&fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(index.schema_version(), 2);
    let refs: Vec<_> = index
        .manifests()
        .iter()
        .map(|m| m.annotations().as_ref().unwrap()["org.opencontainers.image.ref.name"].clone())
        .collect();
    assert_eq!(refs, ["base", "app"]);

    let layout = open_layout(&out).unwrap();
    assert_eq!(layout.images().len(), 2);
    for (read, (written, input)) in layout.images().iter().zip(exported.iter().zip(fx.images())) {
        assert_eq!(read.name, written.name);
        assert_eq!(read.manifest_digest, written.manifest);
        assert_eq!(read.config_digest, written.config);
        let expected: Vec<_> = input.layers.iter().map(|l| l.desc).collect();
        assert_eq!(read.layers, expected);
        let manifest_len = fs::metadata(layout.blob_path(&read.manifest_digest))
            .unwrap()
            .len();
        assert_eq!(manifest_len, written.manifest_size);
    }
    assert_eq!(layout.image("app").unwrap().layers.len(), 2);
    layout.verify().unwrap();
}

#[test]
fn writing_twice_gives_the_same_bytes() {
    let fx = Fixture::two_layers();
    let (one, two) = (fx.path("one"), fx.path("two"));
    let first = write_layout(&one, &fx.images()).unwrap();
    let second = write_layout(&two, &fx.images()).unwrap();
    assert_eq!(first, second);
    assert_eq!(
        fs::read(one.join("index.json")).unwrap(),
        fs::read(two.join("index.json")).unwrap()
    );
    assert_eq!(
        names(&one.join("blobs/sha256")),
        names(&two.join("blobs/sha256"))
    );
    for name in names(&one.join("blobs/sha256")) {
        assert_eq!(
            fs::read(one.join("blobs/sha256").join(&name)).unwrap(),
            fs::read(two.join("blobs/sha256").join(&name)).unwrap()
        );
    }
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused() {
    let fx = Fixture::two_layers();
    let mut images = fx.images();
    // The app layer's bytes are not the ones its digest names.
    let claimed = Digest::of(b"some other layer");
    images[1].layers[1].desc.blob = claimed;
    let out = fx.path("out");
    let err = write_layout(&out, &images).unwrap_err();
    assert!(
        matches!(&err, Error::BadBlob { digest, found, .. } if *digest == claimed && *found == fx.app.desc.blob),
        "{err}"
    );
    assert!(!out.exists());
    assert_eq!(names(fx.tmp.path()), ["inputs"], "no temporary left behind");
}

#[cfg(unix)]
#[test]
fn a_copied_blob_is_verified_too() {
    let fx = Fixture::two_layers();
    // A symlinked blob is copied, not hard-linked.
    let link = fx.path("link");
    std::os::unix::fs::symlink(&fx.base.blob_path, &link).unwrap();
    let mut good = image("base", "1", &[&fx.base]);
    good.layers[0].blob_path = link.clone();
    let out = fx.path("out");
    write_layout(&out, &[good.clone()]).unwrap();
    let blob = out.join("blobs/sha256").join(fx.base.desc.blob.hex());
    assert!(!fs::symlink_metadata(&blob).unwrap().is_symlink());
    assert_eq!(
        fs::read(&blob).unwrap(),
        fs::read(&fx.base.blob_path).unwrap()
    );

    let mut bad = good;
    bad.layers[0].blob_path = fx.path("badlink");
    std::os::unix::fs::symlink(&fx.app.blob_path, &bad.layers[0].blob_path).unwrap();
    let err = write_layout(&fx.path("out2"), &[bad]).unwrap_err();
    assert!(matches!(err, Error::BadBlob { .. }), "{err}");
    assert!(!fx.path("out2").exists());
}

#[test]
fn a_wrong_size_is_refused() {
    let fx = Fixture::two_layers();
    let mut images = fx.images();
    images[0].layers[0].desc.size += 1;
    let err = write_layout(&fx.path("out"), &images).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    assert!(!fx.path("out").exists());
}

#[test]
fn a_non_layout_directory_or_file_is_left_alone() {
    let fx = Fixture::two_layers();
    let dir = fx.path("precious");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("notes.txt"), "keep me").unwrap();
    let err = write_layout(&dir, &fx.images()).unwrap_err();
    assert!(matches!(err, Error::NotALayout { .. }), "{err}");
    assert_eq!(names(&dir), ["notes.txt"]);
    assert_eq!(
        fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "keep me"
    );

    let file = fx.path("file");
    fs::write(&file, "not a directory").unwrap();
    let err = write_layout(&file, &fx.images()).unwrap_err();
    assert!(matches!(err, Error::NotALayout { .. }), "{err}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "not a directory");
    assert_eq!(names(fx.tmp.path()), ["file", "inputs", "precious"]);
}

#[test]
fn an_existing_layout_or_empty_directory_is_replaced() {
    let fx = Fixture::two_layers();
    let out = fx.path("out");
    fs::create_dir(&out).unwrap();
    write_layout(&out, &fx.images()).unwrap();
    assert_eq!(open_layout(&out).unwrap().images().len(), 2);

    let only_app = vec![image("app", "2", &[&fx.app])];
    let exported = write_layout(&out, &only_app).unwrap();
    let layout = open_layout(&out).unwrap();
    assert_eq!(layout.images().len(), 1);
    assert_eq!(layout.images()[0].manifest_digest, exported[0].manifest);
    // The old blobs went with the old layout: 1 layer, 1 config, 1 manifest.
    assert_eq!(names(&out.join("blobs/sha256")).len(), 3);
    assert_eq!(
        names(fx.tmp.path()),
        ["inputs", "out"],
        "nothing left aside"
    );
}

#[test]
fn duplicate_names_are_refused() {
    let fx = Fixture::two_layers();
    let images = vec![image("x", "1", &[&fx.base]), image("x", "2", &[&fx.app])];
    let err = write_layout(&fx.path("out"), &images).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
}

#[test]
fn a_layout_that_lies_is_reported() {
    let fx = Fixture::two_layers();
    let out = fx.path("out");
    let exported = write_layout(&out, &fx.images()).unwrap();
    let layout = open_layout(&out).unwrap();

    let err = layout.image("nope").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: no image tagged \"nope\" (tags: base, app)",
            out.display()
        )
    );

    // A manifest blob whose bytes changed.
    let manifest = layout.blob_path(&exported[1].manifest);
    let bytes = fs::read(&manifest).unwrap();
    fs::remove_file(&manifest).unwrap();
    fs::write(&manifest, bytes.replace_first(b"layers", b"lAyers")).unwrap();
    let err = open_layout(&out).unwrap_err();
    assert!(matches!(err, Error::BadBlob { .. }), "{err}");
    fs::write(&manifest, &bytes).unwrap();

    // A missing config.
    let config = layout.blob_path(&exported[0].config);
    fs::rename(&config, fx.path("config")).unwrap();
    let err = open_layout(&out).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    assert!(err.to_string().ends_with(": missing"), "{err}");
    fs::rename(fx.path("config"), &config).unwrap();

    // A layer blob that changed is caught by verify, not by open.
    let layer = layout.blob_path(&fx.app.desc.blob);
    let mut bytes = fs::read(&layer).unwrap();
    fs::remove_file(&layer).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&layer, &bytes).unwrap();
    let layout = open_layout(&out).unwrap();
    assert!(matches!(layout.verify(), Err(Error::BadBlob { .. })));

    // Not a layout at all.
    let err = open_layout(fx.tmp.path()).unwrap_err();
    assert!(err.to_string().ends_with("oci-layout: missing"), "{err}");
}

trait ReplaceFirst {
    fn replace_first(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceFirst for Vec<u8> {
    fn replace_first(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = self
            .windows(from.len())
            .position(|w| w == from)
            .expect("pattern present");
        [&self[..at], to, &self[at + from.len()..]].concat()
    }
}

#[test]
fn summaries_are_stable_text() {
    // Uncompressed layers: their digests do not depend on a compressor's version.
    let fx = Fixture::two_layers();
    let one = tar_layer(fx.tmp.path(), "one", &[("hello.txt", b"hello\n")]);
    let two = tar_layer(fx.tmp.path(), "two", &[("srv/app.txt", b"app\n")]);
    let out = fx.path("out");
    write_layout(&out, &[image("app", "1", &[&one, &two])]).unwrap();
    let layout = open_layout(&out).unwrap();
    let app = layout.image("app").unwrap();
    insta::assert_snapshot!("config_summary", config_summary(app));
    insta::assert_snapshot!("layers_summary", layers_summary(app));
    // Reading again (maps come back in a new random order) renders the same.
    for _ in 0..5 {
        let again = open_layout(&out).unwrap();
        assert_eq!(
            config_summary(again.image("app").unwrap()),
            config_summary(app)
        );
    }
}
