//! The mounts of a `run` step, from the spec to the job: a cache id
//! defaults to the path, a secret's file is found relative to the spec.
//! Neither a cache's content nor a secret's bytes reach the plan: they are
//! read when the step runs, and the key covers only what is declared.

use strata_layer::{RunMount as JobMount, SecretSource as JobSecret};
use strata_spec::{RunMount, SecretSource, SpecDiagnostic};

use crate::Planner;

impl Planner<'_> {
    pub(crate) fn run_mount(&self, m: &RunMount) -> Result<JobMount, SpecDiagnostic> {
        Ok(match m {
            RunMount::Cache { target, id } => JobMount::Cache {
                target: target.value.clone(),
                id: id.as_ref().unwrap_or(target).value.clone(),
            },
            RunMount::Secret { target, source } => JobMount::Secret {
                target: target.value.clone(),
                source: match source {
                    SecretSource::File(f) => {
                        // Not an input: never hashed nor locked, and it may
                        // live outside the inputs root (a token in $HOME).
                        let path = self.base_dir.join(&f.value);
                        if !path.is_file() {
                            return Err(SpecDiagnostic::new(
                                format!("secret file {}: not a file", path.display()),
                                f.span,
                                "no such file",
                            )
                            .with_help(
                                "a secret's `file=` is a host file, relative to the spec file",
                            ));
                        }
                        JobSecret::File(path)
                    }
                    SecretSource::Env(v) => JobSecret::Env(v.value.clone()),
                },
            },
            // The image's layers are filled in by `layer_node`, which
            // knows them (see `Planner::bind_sources`).
            RunMount::Bind {
                target,
                from,
                source,
            } => JobMount::Bind {
                target: target.value.clone(),
                image: from.value.clone(),
                source: match source {
                    Some(s) => crate::image_path(s)?,
                    None => strata_layer::ImagePath::root(),
                },
                stack: [0; 32],
                index: 0,
            },
        })
    }
}
