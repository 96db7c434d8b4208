//! `strata diff A B`: why two images differ (the logic is `strata::diff`).
//!
//! Exit codes follow diff(1): 0 identical, 1 different, 2 trouble (a side
//! that cannot be read), so a script can tell "differs" from "broken".

use std::process::ExitCode;

pub fn run(a: &str, b: &str, json: bool) -> ExitCode {
    match strata::diff::diff(a, b) {
        Ok(d) if json => {
            crate::print_stdout(&strata::json::diff_json(a, b, &d));
            if d.identical() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Ok(d) if d.identical() => ExitCode::SUCCESS,
        Ok(d) => {
            crate::print_stdout(&d.text);
            ExitCode::FAILURE
        }
        Err(e) => {
            crate::report_error(&e);
            ExitCode::from(2)
        }
    }
}
