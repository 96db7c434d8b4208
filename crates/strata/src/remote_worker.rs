//! `strata worker --server URL`: a bot of the Remote Workers API that runs
//! strata's layer jobs for a Remote Execution API server (BuildGrid's Bots
//! service): it opens a bot session, leases actions (`--jobs` at once, each
//! on a thread of its own), fetches each action's input root from the CAS
//! into a temporary directory, runs `strata __layer-job job.json` there
//! (this binary, as a child process), uploads the outputs and its stderr,
//! and reports the `ActionResult` on the lease.
//!
//! Why a bot of its own: BuildGrid 0.4 ships no bot (its `buildbox-worker`
//! and `buildbox-run-hosttools` are C++ programs outside PyPI), and a bot
//! that runs only strata's own job needs none of a general runner's
//! sandboxing of arbitrary commands: it refuses every command but
//! `strata __layer-job job.json`.
//!
//! Invariants: an action's input root is untrusted: every name is one plain
//! path component, written into a fresh directory with `create_new`, so
//! nothing lands outside it; the directory is removed after the job; a
//! server that is down is waited for, never a crash.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use strata_reapi::{
    Action, ActionResult, BlobDigest, BotSession, BotStatus, Client, Command, Device,
    DeviceProperty, Directory, Lease, LeaseState, Message as _, OutputFile, Source, Worker,
    WorkerConfig,
};

use crate::Error;

/// How long one `UpdateBotSession` may wait on the server for work.
const POLL: Duration = Duration::from_secs(20);
/// The largest `Directory` or `Command` read.
const MAX_MESSAGE: u64 = 64 << 20;
/// The deepest input root materialised.
const MAX_DEPTH: usize = 256;

/// How to run a worker.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub server: strata_reapi::Options,
    /// The bot's id, unique among the server's bots.
    pub name: String,
    /// How many jobs run at once (at least 1): the bot's capacity, which
    /// it tells the server (BuildGrid's `capacity` config) and never
    /// exceeds.
    pub jobs: usize,
}

/// How long an `UpdateBotSession` may wait for work while jobs run and
/// there is room for more: short, so that a job that ends is reported
/// soon. BuildGrid waits 80% of the deadline for new work, and assigns
/// none under its 3 s network timeout.
const POLL_BUSY: Duration = Duration::from_secs(4);

/// How long a bot at capacity waits for a job to end before it tells the
/// server it is alive.
const KEEPALIVE: Duration = Duration::from_secs(30);

/// What came of one lease's job: its status and `ActionResult`.
type Outcome = (strata_reapi::RpcStatus, Option<strata_reapi::Any>);

/// Run jobs for the server until the process is stopped, up to
/// `opts.jobs` at once, each on a thread of its own while this one keeps
/// the bot session: it reports a job as soon as it ends (or, while there is
/// room for more, within [`POLL_BUSY`]). `log` gets one line per job and
/// per trouble with the server.
pub fn run_worker(opts: &WorkerOptions, log: &(dyn Fn(String) + Sync)) -> Result<(), Error> {
    let client = Client::connect(&opts.server)?;
    let jobs = opts.jobs.max(1);
    let fresh = || BotSession {
        bot_id: opts.name.clone(),
        status: BotStatus::Ok as i32,
        worker: Some(Worker {
            devices: vec![Device {
                handle: opts.name.clone(),
                properties: vec![DeviceProperty {
                    key: "OSFamily".into(),
                    value: "linux".into(),
                }],
            }],
            configs: vec![WorkerConfig {
                key: "capacity".into(),
                value: jobs.to_string(),
            }],
        }),
        ..Default::default()
    };
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<(String, Outcome)>();
        // Leases whose job runs, and jobs that ended and are not reported yet.
        let mut running: BTreeSet<String> = BTreeSet::new();
        let mut ended: BTreeMap<String, Outcome> = BTreeMap::new();
        let mut session: Option<BotSession> = None;
        loop {
            // At capacity the server has nothing to give: wait for a job
            // to end (or to say the bot is alive).
            if running.len() >= jobs
                && ended.is_empty()
                && let Ok((id, outcome)) = done_rx.recv_timeout(KEEPALIVE)
            {
                running.remove(&id);
                ended.insert(id, outcome);
            }
            while let Ok((id, outcome)) = done_rx.try_recv() {
                running.remove(&id);
                ended.insert(id, outcome);
            }
            if let Some(s) = &mut session {
                for lease in &mut s.leases {
                    if let Some((status, result)) = ended.remove(&lease.id) {
                        lease.state = LeaseState::Completed as i32;
                        lease.status = Some(status);
                        lease.result = result;
                    }
                }
            }
            // Jobs of leases the server no longer holds are not reported.
            ended.clear();
            let poll = if running.is_empty() { POLL } else { POLL_BUSY };
            let got = match session.take() {
                None => client.create_bot_session(fresh(), poll),
                Some(s) => client.update_bot_session(s, poll),
            };
            let mut s = match got {
                Ok(s) => s,
                Err(e) => {
                    log(format!("worker {}: {e}; trying again", opts.name));
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            // A lease the server holds as ACTIVE (accepted in an earlier
            // round) starts now; one offered (PENDING) is accepted while
            // there is room, and the server starts the job when it hears so.
            let mut taken = running.len();
            for lease in &mut s.leases {
                if lease.state == LeaseState::Active as i32 && !running.contains(&lease.id) {
                    if taken >= jobs {
                        continue;
                    }
                    taken += 1;
                    running.insert(lease.id.clone());
                    log(format!(
                        "worker {}: job {} started ({} running)",
                        opts.name,
                        lease.id,
                        running.len()
                    ));
                    let (lease, tx, client) = (lease.clone(), done_tx.clone(), &client);
                    let name = opts.name.as_str();
                    scope.spawn(move || {
                        let outcome = run_lease(client, &lease, name, log);
                        // The receiver lives as long as the scope.
                        let _ = tx.send((lease.id, outcome));
                    });
                }
            }
            for lease in &mut s.leases {
                if lease.state == LeaseState::Pending as i32 && taken < jobs {
                    lease.state = LeaseState::Active as i32;
                    taken += 1;
                }
            }
            // Leases the server cancelled are dropped (a job of one that
            // runs ends unreported).
            s.leases.retain(|l| l.state != LeaseState::Cancelled as i32);
            session = Some(s);
        }
    })
}

/// Run one lease's action: its result, or why it could not run.
fn run_lease(client: &Client, lease: &Lease, name: &str, log: &(dyn Fn(String) + Sync)) -> Outcome {
    let started = Instant::now();
    match run_action(client, lease) {
        Ok(result) => {
            log(format!(
                "worker {name}: job {} done (exit code {}) in {:.1}s",
                lease.id,
                result.exit_code,
                started.elapsed().as_secs_f64()
            ));
            (
                strata_reapi::RpcStatus::default(),
                Some(strata_reapi::pack("ActionResult", &result)),
            )
        }
        Err(e) => {
            let message = crate::error_chain(&e);
            log(format!(
                "worker {name}: job {} not run: {message}",
                lease.id
            ));
            (
                strata_reapi::RpcStatus {
                    // INTERNAL: the job did not run, which is not the job's failure.
                    code: 13,
                    message,
                    ..Default::default()
                },
                None,
            )
        }
    }
}

fn bad(lease: &Lease, reason: impl Into<String>) -> Error {
    Error::BadSource {
        source_ref: format!("lease {}", lease.id),
        reason: reason.into(),
    }
}

fn run_action(client: &Client, lease: &Lease) -> Result<ActionResult, Error> {
    let payload = lease
        .payload
        .as_ref()
        .ok_or_else(|| bad(lease, "no payload"))?;
    let action = if payload.type_url == strata_reapi::type_url("Action") {
        Action::decode(&*payload.value).map_err(|e| bad(lease, format!("bad Action: {e}")))?
    } else if payload.type_url == strata_reapi::type_url("Digest") {
        let d = strata_reapi::Digest::decode(&*payload.value)
            .map_err(|e| bad(lease, format!("bad Digest: {e}")))?;
        let bytes = client.read_bytes(&BlobDigest::from_proto(&d)?, MAX_MESSAGE)?;
        Action::decode(&*bytes).map_err(|e| bad(lease, format!("bad Action: {e}")))?
    } else {
        return Err(bad(
            lease,
            format!("a payload of type {}", payload.type_url),
        ));
    };
    let digest = |d: &Option<strata_reapi::Digest>, what: &str| -> Result<BlobDigest, Error> {
        let d = d
            .as_ref()
            .ok_or_else(|| bad(lease, format!("the action has no {what}")))?;
        Ok(BlobDigest::from_proto(d)?)
    };
    let command_bytes =
        client.read_bytes(&digest(&action.command_digest, "command")?, MAX_MESSAGE)?;
    let command =
        Command::decode(&*command_bytes).map_err(|e| bad(lease, format!("bad Command: {e}")))?;
    let ours = crate::remote_exec::job_command();
    if command.arguments != ours.arguments {
        return Err(bad(
            lease,
            format!(
                "this worker runs only `{}`, not {:?}",
                ours.arguments.join(" "),
                command.arguments
            ),
        ));
    }
    let dir = tempfile::Builder::new()
        .prefix("strata-job-")
        .tempdir()
        .map_err(|source| Error::Io {
            path: std::env::temp_dir(),
            source,
        })?;
    materialise(
        client,
        &digest(&action.input_root_digest, "input root")?,
        dir.path(),
        0,
    )?;
    let exe = std::env::current_exe().map_err(|source| Error::Io {
        path: "/proc/self/exe".into(),
        source,
    })?;
    let out = std::process::Command::new(&exe)
        .arg(crate::remote_exec::JOB_SUBCOMMAND)
        .arg(crate::remote_exec::JOB_FILE)
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| Error::Io { path: exe, source })?;
    let mut uploads = Vec::new();
    let mut result = ActionResult {
        exit_code: out.status.code().unwrap_or(128),
        ..Default::default()
    };
    for path in &command.output_paths {
        let at = dir.path().join(path);
        let Ok(meta) = std::fs::symlink_metadata(&at) else {
            continue;
        };
        if !meta.is_file() || path.contains('/') {
            continue;
        }
        let f = std::fs::File::open(&at).map_err(|source| Error::Io {
            path: at.clone(),
            source,
        })?;
        let d = BlobDigest::of_reader(std::io::BufReader::new(f)).map_err(|source| Error::Io {
            path: at.clone(),
            source,
        })?;
        uploads.push((d.clone(), Source::File(at)));
        result.output_files.push(OutputFile {
            path: path.clone(),
            digest: Some(d.to_proto()),
            ..Default::default()
        });
    }
    let mut stderr = out.stderr;
    stderr.truncate(1 << 20);
    if !stderr.is_empty() {
        let d = BlobDigest::of(&stderr);
        result.stderr_digest = Some(d.to_proto());
        uploads.push((d, Source::Bytes(stderr)));
    }
    client.upload(&uploads)?;
    Ok(result)
}

/// One plain path component, or an error.
fn component<'a>(name: &'a str, at: &Path) -> Result<&'a str, Error> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(Error::BadSource {
            source_ref: at.display().to_string(),
            reason: format!("the input root names an entry {name:?}"),
        });
    }
    Ok(name)
}

/// Write the `Directory` `d` and everything below it into the empty
/// directory `dir`.
fn materialise(client: &Client, d: &BlobDigest, dir: &Path, depth: usize) -> Result<(), Error> {
    use std::os::unix::fs::{OpenOptionsExt as _, symlink};
    if depth > MAX_DEPTH {
        return Err(Error::BadSource {
            source_ref: dir.display().to_string(),
            reason: format!("the input root is deeper than {MAX_DEPTH} directories"),
        });
    }
    let bytes = client.read_bytes(d, MAX_MESSAGE)?;
    let listing = Directory::decode(&*bytes).map_err(|e| Error::BadSource {
        source_ref: format!("directory {d}"),
        reason: e.to_string(),
    })?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    for f in &listing.files {
        let at = dir.join(component(&f.name, dir)?);
        let fd = f.digest.as_ref().ok_or_else(|| Error::BadSource {
            source_ref: at.display().to_string(),
            reason: "a file without a digest".into(),
        })?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if f.is_executable { 0o755 } else { 0o644 })
            .open(&at)
            .map_err(io(&at))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        client.read(&BlobDigest::from_proto(fd)?, &mut w)?;
        std::io::Write::flush(&mut w).map_err(io(&at))?;
    }
    for s in &listing.symlinks {
        let at = dir.join(component(&s.name, dir)?);
        symlink(&s.target, &at).map_err(io(&at))?;
    }
    for sub in &listing.directories {
        let at = dir.join(component(&sub.name, dir)?);
        std::fs::create_dir(&at).map_err(io(&at))?;
        let sd = sub.digest.as_ref().ok_or_else(|| Error::BadSource {
            source_ref: at.display().to_string(),
            reason: "a directory without a digest".into(),
        })?;
        materialise(client, &BlobDigest::from_proto(sd)?, &at, depth + 1)?;
    }
    Ok(())
}
