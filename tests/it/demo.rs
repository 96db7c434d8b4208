//! The demo specs, composed for real: shared layers, config, the JSON report,
//! and snapshots of their plans and of every layer's file listing.

use std::collections::BTreeSet;

use crate::support::{compose, index_digests, repo, strata_ok};

const DEMOS: [&str; 2] = ["tomcat", "hello"];

#[test]
fn plans_of_the_demo_specs() {
    for name in DEMOS {
        let plan = strata::plan_spec(
            &repo().join(format!("specs/{name}.kdl")),
            &Default::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        insta::assert_snapshot!(format!("plan_{name}"), plan.render_text());
        insta::assert_snapshot!(format!("plan_{name}_dot"), plan.render_dot());
    }
}

/// What each layer of each demo image contains, as `strata inspect --files`
/// reads it back from the blobs: the review artefact for any change to the
/// specs, their inputs or the layer writer. (`specs/snapshots/` holds the
/// same content in the `strata snapshot` form; see tests/it/snapshot.rs.)
#[test]
fn layer_listings_of_the_demo_specs() {
    for name in DEMOS {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join(name);
        compose(
            &format!("specs/{name}.kdl"),
            &out,
            &tmp.path().join("cache"),
        );
        let text = strata::inspect::inspect(out.to_str().unwrap(), true).unwrap();
        // Blob digests and sizes depend on the compressor; the snapshot keeps
        // to what the layers contain (the diff_ids and the listings).
        let stable: String = text
            .lines()
            .map(|l| match l.find(" diff_id ") {
                Some(i) if l.trim_start().starts_with("layer ") => {
                    format!("{} {}", &l[..l.find(" sha256:").unwrap_or(i)], &l[i + 1..])
                }
                _ if l.trim_start().starts_with("manifest ")
                    || l.trim_start().starts_with("config ") =>
                {
                    String::new()
                }
                _ if l.trim_start().starts_with("files of layer") => {
                    l.split(" (").next().unwrap_or(l).to_owned()
                }
                _ => l.to_owned(),
            })
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        insta::assert_snapshot!(format!("inspect_{name}"), stable);
    }
}

#[test]
fn tomcat_stores_the_shared_base_layer_once() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tomcat");
    let report = compose("specs/tomcat.kdl", &out, &tmp.path().join("cache"));

    let tags: Vec<String> = index_digests(&out).into_iter().map(|(t, _)| t).collect();
    assert_eq!(tags, ["centos", "tomcat"]);
    let centos = &report.images[0];
    let tomcat = &report.images[1];
    assert_eq!(centos.layers.len(), 1);
    assert_eq!(tomcat.layers.len(), 4, "rootfs + jdk + tomcat + webapp");
    assert_eq!(
        centos.layers[0].desc.blob, tomcat.layers[0].desc.blob,
        "tomcat builds on centos's layer"
    );

    // Every blob once: 4 distinct layers + 2 configs + 2 manifests.
    let blobs = std::fs::read_dir(out.join("blobs/sha256")).unwrap().count();
    let distinct: BTreeSet<_> = report
        .images
        .iter()
        .flat_map(|i| &i.layers)
        .map(|l| l.desc.blob)
        .collect();
    assert_eq!(distinct.len(), 4);
    assert_eq!(blobs, distinct.len() + 2 * 2);
}

#[test]
fn tomcat_config_inherits_and_expands_env() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tomcat");
    compose("specs/tomcat.kdl", &out, &tmp.path().join("cache"));
    let layout = strata_export_layout(&out);
    let tomcat = layout.image("tomcat").unwrap();
    let cfg = tomcat.config.config().as_ref().expect("config section");
    let env = cfg.env().clone().unwrap_or_default();
    assert!(
        env.contains(&"JAVA_HOME=/usr/local/jdk1.8.0_191".to_owned()),
        "{env:?}"
    );
    assert!(
        env.contains(
            &"CLASSPATH=/usr/local/jdk1.8.0_191/lib/dt.jar:/usr/local/jdk1.8.0_191/lib/tools.jar"
                .to_owned()
        ),
        "{env:?}"
    );
    assert!(
        env.contains(
            &"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/jdk1.8.0_191/bin:/usr/local/apache-tomcat-8.5.34/bin"
                .to_owned()
        ),
        "{env:?}"
    );
    assert_eq!(
        cfg.cmd().clone().unwrap_or_default(),
        ["/usr/local/apache-tomcat-8.5.34/bin/catalina.sh", "run"]
    );
    let labels = cfg.labels().clone().unwrap_or_default();
    assert_eq!(
        labels.get("org.label-schema.name").map(String::as_str),
        Some("CentOS Base Image"),
        "inherited label"
    );
    assert!(
        cfg.exposed_ports()
            .clone()
            .unwrap_or_default()
            .contains(&"8080/tcp".to_owned())
    );
    assert_eq!(
        tomcat.config.history().as_ref().map(Vec::len),
        Some(4),
        "one history entry per layer"
    );
}

fn strata_export_layout(dir: &std::path::Path) -> strata_export::Layout {
    strata_export::open_layout(dir).unwrap()
}

#[test]
fn json_report_says_what_was_built_and_what_came_from_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let spec = repo().join("specs/tomcat.kdl");
    let out = tmp.path().join("out");
    let args = [
        "compose",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ];

    let first: serde_json::Value =
        serde_json::from_str(&strata_ok(tmp.path(), &cache, &args)).unwrap();
    let second: serde_json::Value =
        serde_json::from_str(&strata_ok(tmp.path(), &cache, &args)).unwrap();
    assert_eq!(first["layout_unchanged"], false, "a new layout is written");
    assert_eq!(
        second["layout_unchanged"], true,
        "a warm compose into the same layout leaves it alone"
    );
    let images = first["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    for (img, again) in images.iter().zip(second["images"].as_array().unwrap()) {
        assert!(img["manifest"].as_str().unwrap().starts_with("sha256:"));
        assert!(img["config"].as_str().unwrap().starts_with("sha256:"));
        assert_eq!(
            img["manifest"], again["manifest"],
            "a warm compose gives the same image"
        );
        for layer in img["layers"].as_array().unwrap() {
            for field in ["name", "diff_id", "digest", "size", "media_type", "cache"] {
                assert!(!layer[field].is_null(), "layer lacks {field}: {layer}");
            }
        }
        for layer in again["layers"].as_array().unwrap() {
            assert_eq!(layer["cache"], "hit", "second compose: {layer}");
        }
    }
    // In the cold run, the centos rootfs is built once even though both images use it.
    let cold: Vec<&str> = images[1]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["cache"].as_str().unwrap())
        .collect();
    assert_eq!(cold, ["miss", "miss", "miss", "miss"]);
}

#[test]
fn docker_archive_names_every_image() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("tomcat.tar");
    let opts = strata::ComposeOptions {
        out: tmp.path().join("out"),
        docker_archive: Some(archive.clone()),
        cache_dir: Some(tmp.path().join("cache")),
        ..Default::default()
    };
    strata::compose(&repo().join("specs/tomcat.kdl"), &opts, &|_| {}).unwrap();
    let mut ar = tar::Archive::new(std::fs::File::open(&archive).unwrap());
    let mut manifest = None;
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("manifest.json") {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            manifest = Some(s);
        }
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&manifest.expect("manifest.json in the archive")).unwrap();
    let tags: Vec<&str> = manifest
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["RepoTags"][0].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["centos:latest", "tomcat:latest"]);
}
