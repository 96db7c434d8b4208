//! The config and manifest JSON: canonical bytes, empty fields left out.

use std::path::PathBuf;

use strata_export::{Error, ExportImage, ImageConfig, LayerDesc, image_json};
use strata_oci::LayerDescriptor;
use strata_oci::{Digest, MediaType};

/// Layers that exist only as descriptors: `image_json` reads no blob.
fn fake_layers() -> Vec<LayerDesc> {
    ["rootfs", "jdk", "tomcat"]
        .iter()
        .enumerate()
        .map(|(i, name)| LayerDesc {
            desc: LayerDescriptor {
                blob: Digest::of(format!("blob {name}").as_bytes()),
                diff_id: Digest::of(format!("tar {name}").as_bytes()),
                size: 1000 + i as u64,
                media_type: if i == 2 {
                    MediaType::TarZstd
                } else {
                    MediaType::TarGzip
                },
            },
            blob_path: PathBuf::from("/nonexistent"),
            created_by: format!("strata: layer {name}"),
            verified: false,
        })
        .collect()
}

fn fixed_image() -> ExportImage {
    let mut image = crate::image("tomcat", "8.5", &[]);
    image.layers = fake_layers();
    image.config.created = 1_700_000_000;
    image.annotations = [
        (
            "org.opencontainers.image.title".to_owned(),
            "tomcat".to_owned(),
        ),
        (
            "org.opencontainers.image.base.name".to_owned(),
            "centos".to_owned(),
        ),
    ]
    .into();
    image
}

#[test]
fn config_and_manifest_json_snapshots() {
    let json = image_json(&fixed_image()).unwrap();
    insta::assert_snapshot!("config_json", String::from_utf8(json.config).unwrap());
    insta::assert_snapshot!("manifest_json", String::from_utf8(json.manifest).unwrap());
}

fn busy_config() -> ImageConfig {
    let mut config = crate::config();
    config.labels = (0..50)
        .map(|i| (format!("label.{:02}.{}", (i * 37) % 50, i), format!("v{i}")))
        .collect();
    config.exposed_ports = (0..30)
        .map(|i| format!("{}/tcp", 8000 + (i * 7) % 30))
        .collect();
    config.volumes = (0..30).map(|i| format!("/vol/{}", (i * 11) % 30)).collect();
    config
}

#[test]
fn many_maps_serialise_to_the_same_sorted_bytes() {
    let layers = fake_layers();
    let first = strata_export::config_json(&busy_config(), &layers, "busy").unwrap();
    for _ in 0..20 {
        assert_eq!(
            strata_export::config_json(&busy_config(), &layers, "busy").unwrap(),
            first
        );
    }
    let text = String::from_utf8(first).unwrap();
    assert!(
        !text.contains('\n') && !text.contains("\": "),
        "no insignificant whitespace"
    );
    assert_sorted(
        &text,
        &busy_config().labels.keys().cloned().collect::<Vec<_>>(),
    );
    assert_sorted(
        &text,
        &busy_config().exposed_ports.into_iter().collect::<Vec<_>>(),
    );
    assert_sorted(
        &text,
        &busy_config().volumes.into_iter().collect::<Vec<_>>(),
    );
    assert_sorted(
        &text,
        &[
            "architecture",
            "author",
            "config",
            "created",
            "history",
            "os",
            "rootfs",
        ]
        .map(|k| k.to_owned()),
    );
    assert_sorted(
        &text,
        &[
            "Cmd",
            "Env",
            "ExposedPorts",
            "Labels",
            "StopSignal",
            "User",
            "Volumes",
            "WorkingDir",
        ]
        .map(|k| k.to_owned()),
    );

    // The manifest's annotations are sorted too.
    let mut image = fixed_image();
    image.annotations = (0..40)
        .map(|i| (format!("a.{}", (i * 13) % 40), "x".to_owned()))
        .collect();
    let manifest = image_json(&image).unwrap().manifest;
    for _ in 0..20 {
        assert_eq!(image_json(&image).unwrap().manifest, manifest);
    }
    let keys: Vec<String> = image.annotations.keys().cloned().collect();
    assert_sorted(&String::from_utf8(manifest).unwrap(), &keys);
}

/// Each of `keys` (sorted already) appears as a JSON key in `text`, in that order.
fn assert_sorted(text: &str, keys: &[String]) {
    let mut sorted = keys.to_vec();
    sorted.sort();
    let positions: Vec<usize> = sorted
        .iter()
        .map(|k| {
            text.find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("key {k} missing in {text}"))
        })
        .collect();
    assert!(positions.is_sorted(), "keys out of order in {text}");
}

#[test]
fn empty_settings_are_left_out() {
    let config = ImageConfig {
        os: "linux".to_owned(),
        architecture: "arm64".to_owned(),
        variant: Some("v8".to_owned()),
        ..ImageConfig::default()
    };
    let json = strata_export::config_json(&config, &[], "bare").unwrap();
    assert_eq!(
        String::from_utf8(json).unwrap(),
        r#"{"architecture":"arm64","config":{},"created":"1970-01-01T00:00:00Z","os":"linux","rootfs":{"diff_ids":[],"type":"layers"},"variant":"v8"}"#
    );
}

#[test]
fn a_config_without_platform_is_refused() {
    let err = strata_export::config_json(&ImageConfig::default(), &[], "bare").unwrap_err();
    assert!(matches!(err, Error::BadImage { .. }), "{err}");
    assert_eq!(err.to_string(), "image bare: no os in the image config");
}

/// Docker's `Healthcheck` and `Shell`, which the OCI image spec lacks, are
/// written as Docker writes them (durations in nanoseconds, zero fields left
/// out) and read back.
#[test]
fn docker_healthcheck_and_shell() {
    let mut config = crate::config();
    config.healthcheck = Some(strata_oci::Healthcheck {
        test: vec![
            "CMD-SHELL".into(),
            "wget -q -O- http://localhost/ || exit 1".into(),
        ],
        interval: Some(30_000_000_000),
        timeout: None,
        start_period: Some(5_000_000_000),
        retries: Some(3),
    });
    config.shell = Some(vec![
        "/bin/ash".into(),
        "-eo".into(),
        "pipefail".into(),
        "-c".into(),
    ]);
    let json = strata_export::config_json(&config, &[], "hc").unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        v["config"]["Healthcheck"],
        serde_json::json!({
            "Test": ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"],
            "Interval": 30_000_000_000u64,
            "StartPeriod": 5_000_000_000u64,
            "Retries": 3,
        })
    );
    assert_eq!(
        v["config"]["Shell"],
        serde_json::json!(["/bin/ash", "-eo", "pipefail", "-c"])
    );
    let (h, shell) = strata_export::read_docker_fields(&json);
    assert_eq!(h, config.healthcheck);
    assert_eq!(shell, config.shell);
    // Canonical: the same bytes again, keys sorted.
    assert_eq!(
        json,
        strata_export::config_json(&config, &[], "hc").unwrap()
    );
    // Without them, the config is what it was before they existed.
    let plain = strata_export::config_json(&crate::config(), &[], "hc").unwrap();
    assert!(!String::from_utf8(plain).unwrap().contains("Healthcheck"));
}
