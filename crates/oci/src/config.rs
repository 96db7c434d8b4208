//! The image configuration as strata resolves it (inheritance from `from`
//! applied, `env` expanded): what the planner computes and the exporter
//! writes as OCI config JSON (`strata_export::image_configuration`).

use std::collections::{BTreeMap, BTreeSet};

/// A fully resolved image config (inheritance from `from` applied, `env`
/// expanded). Ordered types only: this reaches the output bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `K=V`, in order (a later value of the same key replaced the earlier one in place).
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// `8080/tcp`
    pub exposed_ports: BTreeSet<String>,
    pub volumes: BTreeSet<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub author: Option<String>,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    /// `created` of the config and of each history entry, seconds since 1970.
    pub created: u64,
    /// Docker's `Healthcheck` (not in the OCI image spec; Docker and
    /// BuildKit write it into the config, and `docker run` reads it there).
    pub healthcheck: Option<Healthcheck>,
    /// Docker's `Shell`: the argv `run` steps (and a Dockerfile's shell
    /// forms) start commands with; `None` is `/bin/sh -c`.
    pub shell: Option<Vec<String>>,
}

/// Docker's `Healthcheck` of an image config: its `Test` array (`CMD ...`,
/// `CMD-SHELL COMMAND` or `NONE`) and durations in nanoseconds (a field
/// left out means Docker's default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: Option<u64>,
    pub timeout: Option<u64>,
    pub start_period: Option<u64>,
    pub retries: Option<u32>,
}

impl ImageConfig {
    /// `os/architecture[/variant]`, as `platform` in a spec is written.
    pub fn platform(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}
