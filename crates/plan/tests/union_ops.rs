//! `run` and `from-dir` layers in a plan: they read the layers below, and
//! their keys cover the command, its environment, the directory's content
//! and the keys of every layer below.

use std::path::Path;

use strata_plan::{Plan, PlanOptions};

fn plan(dir: &Path, text: &str) -> Result<Plan, String> {
    let spec = strata_spec::parse("s.kdl", text).map_err(|d| d.render_plain())?;
    strata_plan::plan(&spec, &dir.join("s.kdl"), &PlanOptions::default())
        .map_err(|d| d.render_plain())
}

/// The key of layer `name` of the plan of `text`.
fn key(dir: &Path, text: &str, name: &str) -> String {
    let p = plan(dir, text).unwrap();
    let l = p.layers.iter().find(|l| l.name == name).expect("layer");
    l.key.hex()
}

fn spec(below: &str, env: &str, run: &str) -> String {
    format!(
        "image app {{\n    layer base {{ file \"/x\" \"{below}\" }}\n    layer r {{ run \"{run}\" }}\n    env A=\"{env}\"\n}}\n"
    )
}

#[test]
fn a_run_key_covers_command_environment_and_the_layers_below() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let k = key(d, &spec("1", "a", "make"), "r");
    assert_eq!(k, key(d, &spec("1", "a", "make"), "r"), "stable");
    assert_ne!(k, key(d, &spec("1", "a", "make all"), "r"), "command");
    assert_ne!(k, key(d, &spec("1", "b", "make"), "r"), "environment");
    assert_ne!(k, key(d, &spec("2", "a", "make"), "r"), "a layer below");

    let p = plan(d, &spec("1", "a", "make")).unwrap();
    let r = p.layers.iter().find(|l| l.name == "r").unwrap();
    assert!(r.reads_below);
    assert_eq!(r.deps().len(), 1);
    assert!(
        p.render_text().contains("run \"make\""),
        "{}",
        p.render_text()
    );
}

#[test]
fn a_from_dir_key_covers_the_directory_and_the_layers_below() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir(d.join("tree")).unwrap();
    std::fs::write(d.join("tree/f"), "1").unwrap();
    let text = |below: &str| {
        format!(
            "image app {{\n    layer base {{ file \"/x\" \"{below}\" }}\n    layer snap {{ from-dir \"tree\" }}\n}}\n"
        )
    };
    let k = key(d, &text("1"), "snap");
    assert_ne!(k, key(d, &text("2"), "snap"), "a layer below");
    std::fs::write(d.join("tree/f"), "2").unwrap();
    assert_ne!(k, key(d, &text("1"), "snap"), "the directory's content");
    let p = plan(d, &text("1")).unwrap();
    assert!(p.layers[1].reads_below);

    std::fs::write(d.join("file"), "x").unwrap();
    let err = plan(d, "image app {\n    layer snap { from-dir \"file\" }\n}\n").unwrap_err();
    assert!(err.contains("not a directory"), "{err}");
}

#[test]
fn run_steps_run_as_root_unless_they_name_a_user() {
    let tmp = tempfile::tempdir().unwrap();
    let step = |text: &str| {
        let p = plan(tmp.path(), text).unwrap();
        // A run layer is union work, its steps the run steps: the type
        // says so, not a check at build time.
        match &p.layers[0].build {
            strata_plan::Build::Union(strata_layer::UnionJob {
                work: strata_layer::UnionWork::Run(steps),
                ..
            }) => steps[0].user.clone(),
            build => panic!("{build:?}"),
        }
    };
    // The image's user is its containers', not its build steps'.
    assert_eq!(
        step("image app {\n    layer r { run \"true\" }\n    user \"nobody\"\n}\n"),
        None
    );
    assert_eq!(
        step("image app {\n    layer r { run \"true\" user=\"app:staff\" }\n}\n").as_deref(),
        Some("app:staff")
    );
}
