//! External bases in a plan: their layers come first, as they are; their
//! config is inherited; a layer that reads the layers below has their
//! digests in its key; an unresolved external base is an error at its `from`.

use std::collections::BTreeMap;
use std::path::Path;

use strata_layer::ImageConfig;
use strata_layer::{Digest, LayerDescriptor, MediaType};
use strata_plan::{BlobSource, ExternalImage, ExternalLayer, Plan, PlanOptions};

const FROM: &str = "docker://h.io/base:1";

fn base(blob: &[u8]) -> ExternalImage {
    ExternalImage {
        source: format!("{FROM}@{}", Digest::of(b"manifest")),
        manifest: Digest::of(b"manifest"),
        layers: vec![ExternalLayer {
            desc: LayerDescriptor {
                blob: Digest::of(blob),
                diff_id: Digest::of(b"tar"),
                size: blob.len() as u64,
                media_type: MediaType::TarGzip,
            },
            fetch: BlobSource::Registry {
                repository: "docker://h.io/base".into(),
                insecure: false,
            },
        }],
        config: ImageConfig {
            env: vec!["PATH=/bin".into(), "LANG=C".into()],
            cmd: Some(vec!["/bin/sh".into()]),
            os: "linux".into(),
            architecture: "amd64".into(),
            ..ImageConfig::default()
        },
    }
}

fn plan(text: &str, bases: BTreeMap<String, ExternalImage>) -> Result<Plan, String> {
    let spec = strata_spec::parse("s.kdl", text).map_err(|d| d.render_plain())?;
    let opts = PlanOptions {
        bases,
        ..PlanOptions::default()
    };
    strata_plan::plan(&spec, Path::new("s.kdl"), &opts).map_err(|d| d.render_plain())
}

const SPEC: &str = r#"image app {
    from "docker://h.io/base:1"
    layer add { file "/x" "1" }
    layer trim { delete "/etc/motd" }
    env MODE="app"
}
image more {
    from "docker://h.io/base:1"
}
"#;

#[test]
fn base_layers_come_first_and_the_config_is_inherited() {
    let p = plan(SPEC, [(FROM.to_owned(), base(b"blob"))].into()).unwrap();
    let app = &p.images[0];
    assert_eq!(app.layers.len(), 3);
    let first = p.layer(app.layers[0]);
    assert_eq!(first.qualified_name(), "app/base-1");
    assert_eq!(
        first.external().map(|e| e.desc.blob),
        Some(Digest::of(b"blob"))
    );
    assert_eq!(app.config.cmd, Some(vec!["/bin/sh".to_owned()]));
    assert!(app.config.env.contains(&"LANG=C".to_owned()));
    assert!(app.config.env.contains(&"MODE=app".to_owned()));
    // Two images on the same base share its layer node.
    assert_eq!(p.images[1].layers, vec![app.layers[0]]);
    assert_eq!(p.bases.len(), 1);
}

#[test]
fn keys_of_layers_that_read_below_cover_the_base_blobs() {
    let key = |blob: &[u8], name: &str| {
        let p = plan(SPEC, [(FROM.to_owned(), base(blob))].into()).unwrap();
        p.layers.iter().find(|l| l.name == name).unwrap().key.hex()
    };
    assert_ne!(
        key(b"one", "trim"),
        key(b"two", "trim"),
        "delete reads below"
    );
    assert_eq!(
        key(b"one", "add"),
        key(b"two", "add"),
        "a file right under / does not (a file under a directory does: its parents keep their metadata)"
    );
    assert_ne!(key(b"one", "base-1"), key(b"two", "base-1"));
}

#[test]
fn an_unresolved_external_base_is_an_error_at_its_from() {
    let err = plan(SPEC, BTreeMap::new()).unwrap_err();
    assert!(
        err.contains("external base `docker://h.io/base:1` was not resolved"),
        "{err}"
    );
    assert!(err.contains("s.kdl:2:10"), "{err}");
}
