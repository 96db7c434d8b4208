//! `run` steps: a command run in a container on an overlay of the layers
//! below, whose upper directory becomes the layer. This is the outside of
//! the sandbox; `sandbox` is the inside and says what the container holds.
//!
//! How: the layers below are applied into a temporary `lower` directory (the
//! union view), owned as the image says, shifted into the run's private id
//! range (`idmap`) so that the container's users are the image's users and
//! none of them is a host user. For each step, strata starts itself as
//! sandbox stage 1 in the temporary directory, waits for it to make its
//! namespaces, writes its id maps, and lets it go on; the step's output goes
//! to a log whose end is kept for the error. What the command wrote lands in
//! `upper`: new and changed files with the owners they have inside the
//! namespace, whiteout devices (0/0) for what it deleted,
//! `user.overlay.opaque` on directories it replaced; `upper` turns those into
//! the layer's entries.
//!
//! The temporary directory is 0700 and owned by the range's root, so no
//! other host user can reach a setuid file the command makes, and what is in
//! it is owned by ids no host user has. It records its owner's pid and start
//! time: a compose removes those whose strata is gone (killed, say).
//!
//! The lower view is, when strata runs as root and is given a store, the
//! layers below unpacked once each by diff_id (`snapshot`) and stacked as
//! overlayfs lower directories, so five `run` layers in a row unpack the
//! base once (and later composes not at all). Otherwise, or when a layer
//! cannot be a lower directory by itself or the stack is deeper than
//! [`MAX_LOWERS`], the layers are applied into `lower`, one directory that
//! is the same view whatever the number of layers, by the applier that
//! `strata rootfs` uses and the tests hold to the model.

use std::fs;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use strata_layer::{Digest, ImagePath, RunMount, RunStep, SecretSource};

use crate::Error;
use crate::apply::{self, io_err};
use crate::idmap::{IdMap, Writer};
use crate::job::Below;
use crate::sandbox::{self, status};
use crate::snapshot::{MAX_LOWERS, Snapshots};

/// The prefix of every run's temporary directory in `$TMPDIR`.
const PREFIX: &str = "strata-run-";

/// The directories of a run: the union below, the overlay's upper and work
/// directories and its mount point, all removed when dropped.
pub struct RunDirs {
    _tmp: tempfile::TempDir,
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub ids: IdMap,
    /// The layers below as unpacked lower directories, top first; when
    /// empty, `lower` holds them applied.
    pub lowers: Vec<PathBuf>,
}

impl RunDirs {
    /// Makes the lower view of a run on the layers `below` (bottom first),
    /// from the unpacked layers in `store` where it can, and its empty
    /// upper directory.
    pub fn new(below: &[Below<'_>], store: Option<&Path>) -> Result<RunDirs, Error> {
        remove_abandoned(&std::env::temp_dir());
        let tmp = tempfile::Builder::new()
            .prefix(PREFIX)
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir()
            .map_err(|e| io_err(&std::env::temp_dir(), e))?;
        let owner = tmp.path().join("owner");
        fs::write(&owner, owner_stamp(std::process::id()).unwrap_or_default())
            .map_err(|e| io_err(&owner, e))?;
        let ids = IdMap::for_this_process();
        // Physical paths ($TMPDIR may pass through a symlink): the upper
        // directory's files are opened without following symlinks.
        let root = fs::canonicalize(tmp.path()).map_err(|e| io_err(tmp.path(), e))?;
        let mut dirs = RunDirs {
            lower: root.join("lower"),
            upper: root.join("upper"),
            _tmp: tmp,
            ids,
            lowers: Vec::new(),
        };
        let root = dirs._tmp.path();
        for d in [
            "lower",
            "upper",
            "work",
            "merged",
            "scaffold",
            "scaffold/proc",
            "scaffold/dev",
            "mnt",
        ] {
            let p = root.join(d);
            fs::create_dir(&p).map_err(|e| io_err(&p, e))?;
        }
        // The namespace's root must own what it mounts and writes; where the
        // maps are written by root, that is the range's first id.
        if crate::running_as_root() {
            let (uid, gid) = (
                dirs.ids.host_uid(0).unwrap_or(0),
                dirs.ids.host_gid(0).unwrap_or(0),
            );
            for d in [
                "",
                "lower",
                "upper",
                "work",
                "merged",
                "scaffold",
                "scaffold/proc",
                "scaffold/dev",
                "mnt",
            ] {
                let p = root.join(d);
                std::os::unix::fs::lchown(&p, Some(uid), Some(gid)).map_err(|e| io_err(&p, e))?;
            }
        }
        if let Some(store) = store
            && let Some(lowers) = stack(store, &dirs.ids, below)?
        {
            dirs.lowers = lowers;
            return Ok(dirs);
        }
        // The root directory's owner is then the image's own, if it says.
        let shift = dirs.ids.is_full().then_some(&dirs.ids);
        let blobs: Vec<PathBuf> = below.iter().map(|b| b.blob.to_path_buf()).collect();
        apply::apply_blobs_shifted(&blobs, &dirs.lower, shift)?;
        Ok(dirs)
    }

    /// Why only one id is mapped, when it is: for a warning.
    pub fn single_id_warning(&self) -> Option<String> {
        self.ids.why_single.as_ref().map(|why| {
            format!(
                "run steps map only the current user (as root) into their namespace: {why}; \
                 a command that changes a file's owner or switches user will fail"
            )
        })
    }

    /// Runs one step in the sandbox; its changes accumulate in `upper`.
    /// Its cache mounts are directories of `cache_mounts` (of the run
    /// directory, so empty, without one); its bind mounts show the images
    /// of `sources` (see [`RunMount::Bind`]).
    pub fn run(
        &self,
        step: &RunStep,
        cache_mounts: Option<&Path>,
        sources: &[Vec<Below<'_>>],
    ) -> Result<(), Error> {
        check_user_namespaces()?;
        check_platform(&step.platform)?;
        let mounts = self.prepare_mounts(step, cache_mounts, sources)?;
        let root = self._tmp.path();
        let log_path = root.join("output.log");
        let log = fs::File::create(&log_path).map_err(|e| io_err(&log_path, e))?;
        // Not `current_exe()`: a rebuild or upgrade of strata while a long
        // compose runs would leave that path naming another binary, or none.
        let mut child = Command::new(sandbox::SELF_EXE)
            .args(sandbox::stage1_args(
                &self.lowers,
                &mounts.lines,
                step.network,
                step.workdir.as_deref().unwrap_or("/"),
                step.user.as_deref(),
                step.shell.as_deref(),
                &step.command,
                &step.env,
            ))
            .current_dir(root)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| Error::Sandbox(format!("cannot start the strata binary again: {e}")))?;
        // Killing stage 1 on an early return also closes its stdin, which
        // ends the container.
        let result = self.drive(&mut child, &log_path, &mounts.secrets);
        if result.is_err() {
            let _ = child.kill();
        }
        // `wait` would close stdin first, which stage 1 takes for strata's
        // end: hold it until the container has ended.
        let lifeline = child.stdin.take();
        let status = child.wait();
        drop(lifeline);
        // The cache mounts' locks are held until the container has ended.
        drop(mounts);
        result?;
        let status =
            status.map_err(|e| Error::Sandbox(format!("cannot wait for the sandbox: {e}")))?;
        if status.success() {
            return Ok(());
        }
        let output = tail(&log_path, 8 << 10);
        use std::os::unix::process::ExitStatusExt;
        match status.code() {
            Some(status::OVERLAY_REFUSED) => Err(Error::Sandbox(format!(
                "overlayfs cannot be mounted in a user namespace here (it needs Linux 5.11 or later, \
                 and no sandbox forbidding it): {}",
                output.trim()
            ))),
            Some(status::SETUP) => Err(Error::Sandbox(output.trim().to_owned())),
            Some(status::NO_SHELL) => Err(Error::NoShell {
                command: step.command.clone(),
            }),
            code => Err(Error::RunFailed {
                command: step.command.clone(),
                status: code.map_or_else(
                    || format!("killed by signal {}", status.signal().unwrap_or(0)),
                    |c| format!("exit status {c}"),
                ),
                output,
            }),
        }
    }

    /// The handshake with stage 1: wait for its namespaces, map the ids,
    /// say go; then hold its stdin open until it ends.
    fn drive(
        &self,
        child: &mut std::process::Child,
        log: &Path,
        secrets: &[Vec<u8>],
    ) -> Result<(), Error> {
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        let _ = out.read_line(&mut line);
        if line.trim() != "ready" {
            // Stage 1 ended before its namespaces were made: its log says why.
            let _ = child.wait();
            let why = tail(log, 8 << 10);
            return Err(Error::Sandbox(if why.trim().is_empty() {
                format!(
                    "the sandbox did not start (is {} the strata binary?)",
                    std::env::current_exe().unwrap_or_default().display()
                )
            } else {
                why.trim().to_owned()
            }));
        }
        self.ids.write(child.id())?;
        let stdin = child.stdin.as_mut().expect("piped");
        // The secrets follow `go`, each as its length and its bytes: they
        // reach the sandbox's tmpfs through this pipe, never a file.
        let mut message = b"go\n".to_vec();
        for s in secrets {
            message.extend_from_slice(format!("{}\n", s.len()).as_bytes());
            message.extend_from_slice(s);
        }
        stdin
            .write_all(&message)
            .and_then(|_| stdin.flush())
            .map_err(|e| Error::Sandbox(format!("the sandbox ended at its start: {e}")))?;
        Ok(())
    }
}

/// A step's mounts made ready: the lines stage 1 takes (`KIND\tTARGET\tSOURCE`),
/// the secrets' bytes, and the locks of its cache directories.
struct Mounts {
    lines: Vec<String>,
    secrets: Vec<Vec<u8>>,
    _locks: Vec<fs::File>,
}

impl RunDirs {
    /// Makes each mount's point in `mnt` (the lowest layer of the view, so
    /// it exists whatever the image has, and never reaches the layer), each
    /// cache mount's directory (locked for this run: two composes sharing
    /// an id take turns, as BuildKit's `sharing=locked`), and reads each
    /// secret.
    fn prepare_mounts(
        &self,
        step: &RunStep,
        cache_mounts: Option<&Path>,
        sources: &[Vec<Below<'_>>],
    ) -> Result<Mounts, Error> {
        let root = self._tmp.path();
        let as_root = crate::running_as_root();
        let own = |p: &Path| -> Result<(), Error> {
            if as_root {
                let (uid, gid) = (self.ids.host_uid(0), self.ids.host_gid(0));
                std::os::unix::fs::lchown(p, uid, gid).map_err(|e| io_err(p, e))?;
            }
            Ok(())
        };
        let mut out = Mounts {
            lines: Vec::new(),
            secrets: Vec::new(),
            _locks: Vec::new(),
        };
        for (i, m) in step.mounts.iter().enumerate() {
            // A bind's image is applied first: whether its mount point is a
            // directory is what the image has at its source.
            let bound = match m {
                RunMount::Bind {
                    target,
                    image,
                    source,
                    index,
                    ..
                } => Some(self.bind_source(target, image, source, sources.get(*index))?),
                _ => None,
            };
            let (kind, target, is_dir) = match m {
                RunMount::Cache { target, .. } => ("cache", target, true),
                RunMount::Secret { target, .. } => ("secret", target, false),
                RunMount::Bind { target, .. } => {
                    ("bind", target, bound.as_ref().is_some_and(|b| b.1))
                }
            };
            let bad = |reason: String| Error::MountPoint {
                kind,
                target: target.clone(),
                reason,
            };
            let path = ImagePath::parse_abs(target)
                .filter(|p| !p.is_root() && !target.contains(['\t', '\n']))
                .ok_or_else(|| bad("not a path a mount can be at".to_owned()))?;
            let comps: Vec<&[u8]> = path.components().collect();
            let mut stub = root.join("mnt");
            for (k, c) in comps.iter().enumerate() {
                stub.push(std::ffi::OsStr::from_bytes(c));
                let made = if k + 1 == comps.len() && !is_dir {
                    fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o400)
                        .open(&stub)
                        .map(drop)
                } else {
                    fs::create_dir(&stub)
                };
                match made {
                    Ok(()) => own(&stub)?,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let meta = fs::symlink_metadata(&stub).map_err(|e| io_err(&stub, e))?;
                        if meta.is_dir() != (is_dir || k + 1 < comps.len()) {
                            return Err(bad(
                                "another mount of this layer's steps needs a file where this one needs a directory, or the other way round"
                                    .to_owned(),
                            ));
                        }
                    }
                    Err(e) => return Err(io_err(&stub, e)),
                }
            }
            match m {
                RunMount::Cache { id, .. } => {
                    let (dir, lock) = match cache_mounts {
                        Some(base) => {
                            // Stage 1 binds it from the run's directory.
                            let base = &std::path::absolute(base).map_err(|e| io_err(base, e))?;
                            make_private_dir(base)?;
                            // By a digest of the id: any id is a safe name.
                            let name = Digest::of(id.as_bytes()).hex();
                            let name = &name[..32];
                            (base.join(name), Some(base.join(format!("{name}.lock"))))
                        }
                        None => (root.join(format!("cache-{i}")), None),
                    };
                    if let Some(lock) = lock {
                        let f = fs::File::create(&lock).map_err(|e| io_err(&lock, e))?;
                        f.lock().map_err(|e| io_err(&lock, e))?;
                        out._locks.push(f);
                    }
                    match fs::create_dir(&dir) {
                        Ok(()) => own(&dir)?,
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(io_err(&dir, e)),
                    }
                    if dir.as_os_str().as_encoded_bytes().contains(&b'\n') {
                        return Err(bad(format!(
                            "{}: a newline in the cache's path",
                            dir.display()
                        )));
                    }
                    out.lines
                        .push(format!("cache\t{target}\t{}", dir.display()));
                }
                RunMount::Secret { source, .. } => {
                    let (name, bytes) = match source {
                        SecretSource::File(p) => (
                            p.display().to_string(),
                            fs::read(p).map_err(|e| e.to_string()),
                        ),
                        SecretSource::Env(v) => (
                            format!("environment variable {v}"),
                            std::env::var_os(v)
                                .map(|b| b.into_encoded_bytes())
                                .ok_or_else(|| "not set".to_owned()),
                        ),
                    };
                    let bytes = bytes.map_err(|reason| Error::Secret {
                        target: target.clone(),
                        from: name,
                        reason,
                    })?;
                    out.lines
                        .push(format!("secret\t{target}\t{}", out.secrets.len()));
                    out.secrets.push(bytes);
                }
                RunMount::Bind { .. } => {
                    if let Some((rel, _)) = bound {
                        out.lines.push(format!("bind\t{target}\t{rel}"));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The image of a `bind` mount applied once per run into `bind-N` of
    /// the run directory (owned as the image says, shifted into the run's
    /// range), and `source` resolved inside it as the image resolves it,
    /// symlinks followed within the image: the path stage 1 binds, relative
    /// to the run directory, and whether it is a directory.
    fn bind_source(
        &self,
        target: &str,
        image: &str,
        source: &ImagePath,
        layers: Option<&Vec<Below<'_>>>,
    ) -> Result<(String, bool), Error> {
        let bad = |reason: String| Error::MountPoint {
            kind: "bind",
            target: target.to_owned(),
            reason,
        };
        let layers =
            layers.ok_or_else(|| bad(format!("the layers of image `{image}` were not given")))?;
        let model = crate::Model::of(layers.iter().map(|b| b.listing))?;
        let at = crate::copy_from::resolve(&model, source)
            .map_err(|why| bad(format!("image `{image}` at {}: {why}", source.display())))?;
        let is_dir = model.is_dir(&at);
        if !is_dir
            && !matches!(
                model.get(&at).map(|n| &n.kind),
                Some(crate::model::Kind::File { .. })
            )
        {
            return Err(bad(format!(
                "image `{image}` has neither a directory nor a file at {}",
                source.display()
            )));
        }
        let dir = format!(
            "bind-{}",
            Digest::of(image.as_bytes()).hex().get(..16).unwrap_or("")
        );
        let applied = self._tmp.path().join(&dir);
        if !applied.exists() {
            let shift = self.ids.is_full().then_some(&self.ids);
            let blobs: Vec<PathBuf> = layers.iter().map(|b| b.blob.to_path_buf()).collect();
            fs::create_dir(&applied).map_err(|e| io_err(&applied, e))?;
            apply::apply_blobs_shifted(&blobs, &applied, shift)?;
        }
        let rel = match std::str::from_utf8(&at.0) {
            _ if at.is_root() => dir,
            Ok(path) if !path.contains(['\n', '\t']) => format!("{dir}/{path}"),
            _ => {
                return Err(bad(format!(
                    "{}: a source path must be UTF-8, without newlines or tabs",
                    at.display()
                )));
            }
        };
        Ok((rel, is_dir))
    }
}

/// Makes `dir` (0700: what the namespace's users own there is out of other
/// host users' reach) if it is missing.
fn make_private_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(io_err(dir, e)),
    }
}

impl Drop for RunDirs {
    /// Overlayfs leaves `work/work` with mode 000, and a command may leave
    /// directories without write permission: as an unprivileged user the
    /// temporary directory could not be removed without opening them first.
    fn drop(&mut self) {
        open_up(self._tmp.path());
    }
}

/// The layers `below` as unpacked lower directories of `store`, top
/// first; `None` where the run must apply them instead (see the module doc).
fn stack(store: &Path, ids: &IdMap, below: &[Below<'_>]) -> Result<Option<Vec<PathBuf>>, Error> {
    if !crate::running_as_root()
        || ids.writer != Writer::Direct
        || below.is_empty()
        || below.len() > MAX_LOWERS
    {
        return Ok(None);
    }
    let snapshots = Snapshots::open(store, ids)?;
    let mut lowers = Vec::with_capacity(below.len());
    for b in below.iter().rev() {
        match snapshots.get(&b.diff_id.hex(), b.blob)? {
            // Stage 1 takes the list one path a line.
            Some(dir) if !dir.as_os_str().as_encoded_bytes().contains(&b'\n') => lowers.push(dir),
            _ => return Ok(None),
        }
    }
    Ok(Some(lowers))
}

/// Makes every directory below `root` removable by its owner.
fn open_up(root: &Path) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
}

/// `PID START` of a live process: its start time tells a reused pid apart.
fn owner_stamp(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields count from
    // the last `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    let start = rest.split(' ').nth(19)?;
    Some(format!("{pid} {start}"))
}

/// Removes the run directories in `tmp` whose strata is gone (killed, so
/// its `Drop` never ran). The container went with it: its processes were
/// in a pid namespace whose init died, its mounts in a mount namespace no
/// process holds.
pub(crate) fn remove_abandoned(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    let me = rustix::process::geteuid().as_raw();
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.as_encoded_bytes().starts_with(PREFIX.as_bytes()) {
            continue;
        }
        let dir = e.path();
        let Ok(meta) = fs::symlink_metadata(&dir) else {
            continue;
        };
        use std::os::unix::fs::MetadataExt;
        let ours = meta.uid() == me
            || (me == 0 && meta.uid() == IdMap::for_this_process().host_uid(0).unwrap_or(0));
        if !meta.is_dir() || !ours {
            continue;
        }
        let Ok(stamp) = fs::read_to_string(dir.join("owner")) else {
            continue;
        };
        let alive = stamp
            .split(' ')
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .and_then(owner_stamp)
            .is_some_and(|now| now == stamp);
        if !alive {
            open_up(&dir);
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

/// The OCI name of the host's architecture.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The binfmt_misc handler name (qemu-user's) for an OCI architecture.
fn qemu_name(arch: &str) -> &str {
    match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "i386",
        "arm" => "arm",
        other => other,
    }
}

/// Refuses a step whose image is of another platform than the host's,
/// unless a binfmt_misc handler (qemu-user, `qemu-user-binfmt`) is
/// registered and enabled for it: host code never runs in a foreign image.
fn check_platform(platform: &str) -> Result<(), Error> {
    let mut parts = platform.split('/');
    let (os, arch) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let host = host_arch();
    if os != "linux" {
        return Err(Error::Sandbox(format!(
            "the image's platform is {platform}: a run step runs only Linux images"
        )));
    }
    // amd64 runs 386 code natively.
    if arch == host || (host == "amd64" && arch == "386") {
        return Ok(());
    }
    let handler = Path::new("/proc/sys/fs/binfmt_misc").join(format!("qemu-{}", qemu_name(arch)));
    match fs::read_to_string(&handler) {
        Ok(text) if text.lines().next() == Some("enabled") => Ok(()),
        Ok(_) => Err(Error::Sandbox(format!(
            "the image's platform is {platform}, this host is linux/{host}, and its binfmt handler {} is disabled",
            handler.display()
        ))),
        Err(_) => Err(Error::Sandbox(format!(
            "the image's platform is {platform}, this host is linux/{host}, and no binfmt handler runs {arch} code (install qemu-user-binfmt, or build this image on a {arch} host)"
        ))),
    }
}

/// Fails with a clear reason when this process cannot make a user namespace.
fn check_user_namespaces() -> Result<(), Error> {
    let read = |p: &str| fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Err(Error::Sandbox(
            "user namespaces are disabled: /proc/sys/user/max_user_namespaces is 0".to_owned(),
        ));
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0")
        && !crate::running_as_root()
    {
        return Err(Error::Sandbox(
            "user namespaces are disabled for unprivileged users: /proc/sys/kernel/unprivileged_userns_clone is 0"
                .to_owned(),
        ));
    }
    Ok(())
}

/// The last `max` bytes of a file, as text.
fn tail(path: &Path, max: u64) -> String {
    let Ok(mut f) = fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut bytes = Vec::new();
    let _ = f.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}
