//! Integration tests of strata-export: layouts, archives, config JSON, and the
//! real tools (umoci, skopeo) that must accept what this crate writes.

mod archive;
mod config;
mod layout;
mod tools;
mod up_to_date;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use strata_export::{ExportImage, ImageConfig, LayerDesc};
use strata_oci::LayerDescriptor;
use strata_oci::{Digest, MediaType};

/// A layer tar holding `files`.
fn tar_bytes(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_ustar();
        header.set_path(path).unwrap();
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_size(content.len() as u64);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append(&header, *content).unwrap();
    }
    tar.into_inner().unwrap()
}

/// An uncompressed layer holding `files`, written to `dir/name`: bytes that
/// depend on nothing but this code (snapshots use it).
pub fn tar_layer(dir: &Path, name: &str, files: &[(&str, &[u8])]) -> LayerDesc {
    let tar = tar_bytes(files);
    let blob_path = dir.join(name);
    fs::write(&blob_path, &tar).unwrap();
    LayerDesc {
        desc: LayerDescriptor {
            blob: Digest::of(&tar),
            diff_id: Digest::of(&tar),
            size: tar.len() as u64,
            media_type: MediaType::Tar,
        },
        blob_path,
        created_by: format!("strata: layer {name}"),
        verified: false,
    }
}

/// A gzip'd layer tar holding `files`, written to `dir/name`.
pub fn gz_layer(dir: &Path, name: &str, files: &[(&str, &[u8])]) -> LayerDesc {
    let tar = tar_bytes(files);
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let blob_path = dir.join(name);
    fs::write(&blob_path, &gz).unwrap();
    LayerDesc {
        desc: LayerDescriptor {
            blob: Digest::of(&gz),
            diff_id: Digest::of(&tar),
            size: gz.len() as u64,
            media_type: MediaType::TarGzip,
        },
        blob_path,
        created_by: format!("strata: layer {name}"),
        verified: false,
    }
}

/// A small fixed config, the same on every call.
pub fn config() -> ImageConfig {
    ImageConfig {
        env: vec![
            "PATH=/usr/local/bin:/usr/bin:/bin".to_owned(),
            "JAVA_HOME=/usr/local/jdk".to_owned(),
        ],
        cmd: Some(vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            "cat /hello.txt".to_owned(),
        ]),
        entrypoint: None,
        workdir: Some("/srv".to_owned()),
        user: Some("1000:1000".to_owned()),
        exposed_ports: ["8080/tcp".to_owned(), "53/udp".to_owned()].into(),
        volumes: ["/data".to_owned()].into(),
        labels: [
            (
                "org.label-schema.name".to_owned(),
                "CentOS Base Image".to_owned(),
            ),
            ("a.first".to_owned(), "line one\nline two".to_owned()),
        ]
        .into(),
        stop_signal: Some("SIGTERM".to_owned()),
        author: Some("strata tests".to_owned()),
        os: "linux".to_owned(),
        architecture: "amd64".to_owned(),
        variant: None,
        created: 0,
        healthcheck: None,
        shell: None,
    }
}

pub fn image(name: &str, tag: &str, layers: &[&LayerDesc]) -> ExportImage {
    ExportImage {
        name: name.to_owned(),
        tag: tag.to_owned(),
        config: config(),
        annotations: BTreeMap::new(),
        layers: layers.iter().map(|l| (*l).clone()).collect(),
    }
}

/// Two images: `base` with one layer, `app` with that layer and one more.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub base: LayerDesc,
    pub app: LayerDesc,
}

impl Fixture {
    pub fn two_layers() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let inputs = tmp.path().join("inputs");
        fs::create_dir(&inputs).unwrap();
        let base = gz_layer(&inputs, "base", &[("hello.txt", b"hello from strata\n")]);
        let app = gz_layer(&inputs, "app", &[("srv/app.txt", b"app\n")]);
        Fixture { tmp, base, app }
    }

    pub fn images(&self) -> Vec<ExportImage> {
        vec![
            image("base", "1.0", &[&self.base]),
            image("app", "latest", &[&self.base, &self.app]),
        ]
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

/// The names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
