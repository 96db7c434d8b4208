//! The parser never panics: not on arbitrary text, not on valid specs with
//! random edits, and neither does rendering what it reports.

use proptest::prelude::*;

/// A spec that uses every node, for mutation.
const SEED: &str = include_str!("../test_data/ok/0002_tomcat.kdl");
const SEED2: &str = include_str!("../test_data/ok/0004_every_setting.kdl");
const SEED3: &str = include_str!("../test_data/ok/0003_every_op.kdl");

/// Parse, and exercise everything a caller does with the result.
fn check(text: &str) {
    match strata_spec::parse("fuzz.kdl", text) {
        Ok(spec) => {
            let _ = spec.dump();
        }
        Err(d) => {
            assert!(!d.items.is_empty(), "an error without items for {text:?}");
            let _ = d.to_string();
            let _ = d.render_plain();
        }
    }
}

/// Apply edits to `seed`: (position, kind, text) with positions snapped to char boundaries.
fn mutate(seed: &str, edits: &[(usize, u8, String)]) -> String {
    let mut s = seed.to_owned();
    for (pos, kind, text) in edits {
        let mut at = pos % (s.len() + 1);
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        match kind % 3 {
            0 => s.insert_str(at, text),
            1 => {
                let mut to = (at + text.len().max(1)).min(s.len());
                while !s.is_char_boundary(to) {
                    to += 1;
                }
                s.replace_range(at..to, "");
            }
            _ => {
                let mut to = (at + 1).min(s.len());
                while !s.is_char_boundary(to) {
                    to += 1;
                }
                s.replace_range(at..to, text);
            }
        }
    }
    s
}

/// Fragments that matter to the grammar, so mutations reach deep paths.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("\"".to_owned()),
        Just("=".to_owned()),
        Just("/".to_owned()),
        Just("/-".to_owned()),
        Just("#".to_owned()),
        Just("\n".to_owned()),
        Just(";".to_owned()),
        Just("(t)".to_owned()),
        Just("0o".to_owned()),
        Just("é".to_owned()),
        Just("日".to_owned()),
        Just("\\".to_owned()),
        Just(" layer x { } ".to_owned()),
        Just(" mode=0o9 ".to_owned()),
        Just(" owner=\"a:b\" ".to_owned()),
        Just("\nlimits max-input-size=\"1GiB\" max-entries=9\n".to_owned()),
        Just("\ninputs-root \"..\"\n".to_owned()),
        Just("9999999999TiB".to_owned()),
        "[a-z=\"{}/ #.0-9-]{0,6}",
        any::<String>(),
    ]
}

proptest! {
    // No failure files: a failing input is printed, and belongs in `edge_cases`.
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_text(text in any::<String>()) {
        check(&text);
    }

    #[test]
    fn kdl_like_text(text in "[a-z \"{}=/#.0-9\n;()\\\\-]{0,80}") {
        check(&text);
    }

    #[test]
    fn mutated_specs(
        seed in prop_oneof![Just(SEED), Just(SEED2), Just(SEED3)],
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), fragment()), 1..6),
    ) {
        check(&mutate(seed, &edits));
    }
}

#[test]
fn edge_cases() {
    for text in [
        "",
        " ",
        "\n",
        "/",
        "}",
        "{",
        "image",
        "image \"\"",
        "image a { layer }",
        "image a { layer \"\" { } }",
        "image a { cmd /",
        "image a { cmd / }",
        "image a { cmd =/x }",
        "image a {\n cmd x=/y\n}",
        "image a { add \"x\" to=/y }",
        "image a { layer x { add \"\\u{10FFFF}\" to=\"/\u{10FFFF}\" } }",
        "image é { layer é { mkdir \"/é\" mode=0o77777777777777777777777777777777777 } }",
        "epoch 999999999999999999999999999999999999999",
        "epoch -99999999999999999999999999999999999999",
        "image a { expose 99999999999999999999999999999999999 \"99999999999999999999999999/tcp\" }",
        "image a { user 99999999999999999999999999 }",
        "image a { stop-signal 99999999999999999999999 }",
        "(\u{0})image a",
        "image a { (x",
        "\u{feff}image a",
    ] {
        check(text);
    }
}
