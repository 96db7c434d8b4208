//! End-to-end tests of strata: the demo specs composed for real, their plans
//! and layer listings snapshotted, the CLI's contract, reproducibility across
//! machines-in-miniature, and conformance checked with real OCI tools.

mod big_layer;
mod build_args;
mod cache;
mod cli;
mod commit_exact;
mod completions;
mod demo;
mod diff;
mod docker;
mod docker_parity;
mod docker_settings;
mod dockerfile_way;
mod exit_codes;
mod hostile;
mod json_output;
mod layout_up_to_date;
mod lock;
mod multi_member;
mod multi_platform;
mod multi_stage;
mod nothing_escapes;
mod outputs;
mod owner_names;
mod package_reports;
mod packages;
mod progress_eta;
mod push_index;
mod real_tools;
mod registry;
mod remote_api;
mod repro;
mod run_mounts;
mod sandbox;
mod sbom;
mod snapshot;
mod support;
mod tidy;
mod tomcat_debian;
mod union;
mod url_errors;
