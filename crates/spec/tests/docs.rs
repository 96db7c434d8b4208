//! `docs/spec.md` stays true: every ```kdl example in it parses, except those
//! introduced by a line starting with "Invalid", which must be rejected.

use std::path::Path;

#[test]
fn examples_in_the_language_doc() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/spec.md");
    let doc = std::fs::read_to_string(&path).expect("docs/spec.md is readable");
    let mut examples = 0;
    let mut last_text = "";
    let mut lines = doc.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if line != "```kdl" {
            if !line.trim().is_empty() {
                last_text = line;
            }
            continue;
        }
        let body: Vec<&str> = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| *l != "```")
            .collect();
        let text = body.join("\n");
        let name = format!("docs/spec.md:{}", n + 1);
        let result = strata_spec::parse(&name, &text);
        if last_text.starts_with("Invalid") {
            assert!(result.is_err(), "{name}: example marked invalid parses");
        } else if let Err(d) = result {
            panic!("{name}: example does not parse:\n{}", d.render_plain());
        }
        examples += 1;
    }
    assert!(examples >= 25, "only {examples} examples found");
}
