//! End-to-end tests of strata: the demo specs composed for real, their plans
//! and layer listings snapshotted, the CLI's contract, reproducibility across
//! machines-in-miniature, and conformance checked with real OCI tools.

mod cli;
mod demo;
mod real_tools;
mod repro;
mod support;
mod tidy;
