//! Fuzz target: `strata_spec::parse` never panics on any text, and neither
//! does anything a caller does with its result (dump, render diagnostics).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match strata_spec::parse("fuzz.kdl", text) {
        Ok(spec) => {
            let _ = spec.dump();
        }
        Err(d) => {
            assert!(!d.items.is_empty(), "an error without items");
            let _ = d.to_string();
            let _ = d.render_plain();
        }
    }
});
