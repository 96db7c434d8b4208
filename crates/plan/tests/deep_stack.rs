//! A deep image plans in space linear in its depth: each layer links to the
//! one under it, a layer that reads below has one `below` key part however
//! deep it is, and it waits only for the nearest reading layer below and the
//! layers between. Yet the key of the top layer still covers every layer
//! below it.

use std::path::Path;

use strata_plan::{LayerId, Plan, PlanOptions};

fn plan(dir: &Path, text: &str) -> Plan {
    let spec = strata_spec::parse("s.kdl", text).unwrap_or_else(|d| panic!("{}", d.render_plain()));
    strata_plan::plan(&spec, &dir.join("s.kdl"), &PlanOptions::default())
        .unwrap_or_else(|d| panic!("{}", d.render_plain()))
}

/// `n` layers, each writing a file under `/etc` (so each from the second on
/// keeps what the layers below gave `/etc`, and reads them); layer `k` of
/// them writes `content_k` instead of its number.
fn deep(n: usize, k: usize, content_k: &str) -> String {
    let mut s = String::from("image big {\n");
    for i in 0..n {
        let c = if i == k {
            content_k.to_owned()
        } else {
            i.to_string()
        };
        s.push_str(&format!(
            "    layer l{i} {{ file \"/etc/f{i}\" \"{c}\" }}\n"
        ));
    }
    s.push_str("}\n");
    s
}

#[test]
fn a_deep_stack_plans_in_linear_space_and_its_top_key_covers_every_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 3000;
    let p = plan(tmp.path(), &deep(n, 0, "0"));
    assert_eq!(p.layers.len(), n);

    // Linear: one dependency and a bounded number of key parts per layer
    // (the old plan kept n²/2 of each: 4.5 million here).
    let deps: usize = p.layers.iter().map(|l| l.deps().len()).sum();
    let parts: usize = p.layers.iter().map(|l| l.key_parts.len()).sum();
    assert!(deps < n, "dependencies: {deps}");
    assert!(parts <= 6 * n, "key parts: {parts}");
    let top = p.layers.last().unwrap();
    assert!(top.reads_below);
    assert_eq!(top.deps(), [LayerId(n - 2)]);
    assert_eq!(top.depth, n - 1);
    assert!(top.key_parts.iter().filter(|k| k.label == "below").count() == 1);

    // The whole stack below, bottom first, from the links.
    let below = p.below(top.id);
    assert_eq!(below.len(), n - 1);
    assert!(below.iter().enumerate().all(|(i, id)| id.0 == i));

    // The top key covers the bottom layer, n layers down, and only what
    // decides the bytes: the same spec gives the same keys.
    let again = plan(tmp.path(), &deep(n, 0, "0"));
    assert_eq!(again.layers.last().unwrap().key, top.key);
    let changed = plan(tmp.path(), &deep(n, 0, "zero"));
    assert_ne!(changed.layers.last().unwrap().key, top.key);
    assert_ne!(changed.layers[1].key, p.layers[1].key);

    // The text plan names the top of a deep stack, not all of it.
    let text = p.render_text();
    assert!(
        text.contains(&format!(
            "reads below: ({} more layers), big/l{}",
            n - 9,
            n - 9
        )),
        "{}",
        &text[text.len() - 400..]
    );
}

#[test]
fn a_layer_waits_for_the_layers_between_it_and_the_nearest_reader_below() {
    let tmp = tempfile::tempdir().unwrap();
    // l0 and l1 and l2 write new top-level paths (they read nothing below);
    // l3 deletes (reads every layer below); l4 and l5 are new paths again;
    // l6 deletes.
    let text = "image app {\n\
        layer l0 { file \"/a\" \"a\" }\n\
        layer l1 { file \"/b\" \"b\" }\n\
        layer l2 { file \"/c\" \"c\" }\n\
        layer l3 { delete \"/a\" }\n\
        layer l4 { file \"/d\" \"d\" }\n\
        layer l5 { file \"/e\" \"e\" }\n\
        layer l6 { delete \"/b\" }\n\
    }\n";
    let p = plan(tmp.path(), text);
    let deps = |i: usize| p.layers[i].deps().iter().map(|d| d.0).collect::<Vec<_>>();
    assert!(!p.layers[1].reads_below && deps(1).is_empty());
    assert_eq!(deps(3), [0, 1, 2]);
    assert_eq!(deps(6), [3, 4, 5]);
    assert_eq!(p.below(p.layers[6].id).len(), 6);
}
