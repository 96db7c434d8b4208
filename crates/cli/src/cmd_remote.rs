//! `strata worker` and the hidden `strata __layer-job`: the worker side of
//! remote layer builds (`compose --remote-exec`, docs/remote-cache.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum RemoteCommand {
    /// Build layers for a Remote Execution API server (BuildGrid...): lease
    /// the layer jobs that `compose --remote-exec` sends to the server's
    /// scheduler through its Bots service, --jobs at a time, until stopped.
    /// Runs only strata's own layer jobs. Credentials as for
    /// --remote-cache (STRATA_REMOTE_* variables). Logs one line per job
    /// on stderr.
    Worker {
        /// The server: grpc://HOST:PORT or grpcs://HOST:PORT.
        #[arg(long, value_name = "grpc://HOST:PORT")]
        server: String,
        /// The bot's id, unique among the server's bots. Default:
        /// strata-HOSTNAME-PID.
        #[arg(long)]
        name: Option<String>,
        /// How many jobs to run at once (1 to 64): the bot asks the server
        /// for up to this many leases (BuildGrid's `capacity`).
        #[arg(long, short = 'j', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        jobs: u32,
    },
    /// Run one layer job in an action's input root: read JOB, write
    /// layer.blob and layer.record.json beside it. What a worker runs.
    #[command(name = "__layer-job", hide = true)]
    LayerJob {
        /// The job file (job.json).
        job: PathBuf,
    },
}

pub fn run(cmd: RemoteCommand) -> Result<ExitCode, strata::Error> {
    match cmd {
        RemoteCommand::Worker { server, name, jobs } => {
            let name = name.unwrap_or_else(|| {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_owned())
                    .unwrap_or_else(|_| "host".into());
                format!("strata-{host}-{}", std::process::id())
            });
            let opts = strata::remote_worker::WorkerOptions {
                server: strata::reapi::Options::from_env(&server, |k| std::env::var(k).ok())?,
                name,
                jobs: jobs as usize,
            };
            strata::remote_worker::run_worker(&opts, &|line| eprintln!("{line}"))?;
            Ok(ExitCode::SUCCESS)
        }
        RemoteCommand::LayerJob { job } => {
            strata::remote_exec::run_layer_job(&job)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
