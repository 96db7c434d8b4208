//! `run` steps: a command run rootless on an overlay of the layers below,
//! whose upper directory becomes the layer.
//!
//! How: the layers below are applied into a temporary `lower` directory (the
//! union view), then, for each step, `unshare` makes a user namespace (the
//! current user as root inside, nobody else mapped), a mount namespace, a pid
//! namespace and, unless the step asks for the network, a network namespace.
//! Inside, a small host shell script mounts overlayfs (`lowerdir=lower`,
//! `upperdir=upper`, option `userxattr`, the only form an unprivileged user
//! may mount), `/proc` and a minimal `/dev` over it, and `chroot`s into it to
//! run `/bin/sh -c COMMAND` with the image's environment only. What the
//! command wrote lands in `upper`: new and changed files, whiteout devices
//! (0/0) for what it deleted, `user.overlay.opaque` on directories it
//! replaced; `upper` turns those into the layer's entries.
//!
//! Why a materialised lower rather than a stack of per-layer directories:
//! one directory is the same view whatever the number of layers, and the
//! applier that makes it is the one `strata rootfs` uses and the tests hold
//! to the model.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use strata_layer::RunStep;

use crate::Error;
use crate::apply::{self, io_err};

/// The directories of a run: the union below, the overlay's upper and work
/// directories and its mount point, all removed when dropped.
pub struct RunDirs {
    _tmp: tempfile::TempDir,
    pub lower: PathBuf,
    pub upper: PathBuf,
    work: PathBuf,
    merged: PathBuf,
}

impl RunDirs {
    /// Materialises the layer blobs `blobs` (bottom first) as the lower
    /// directory of a run, and makes its empty upper directory.
    pub fn new(blobs: &[PathBuf]) -> Result<RunDirs, Error> {
        let tmp = tempfile::Builder::new()
            .prefix("strata-run-")
            .tempdir()
            .map_err(|e| io_err(&std::env::temp_dir(), e))?;
        let dirs = RunDirs {
            lower: tmp.path().join("lower"),
            upper: tmp.path().join("upper"),
            work: tmp.path().join("work"),
            merged: tmp.path().join("merged"),
            _tmp: tmp,
        };
        apply::apply_blobs(blobs, &dirs.lower)?;
        for d in [&dirs.upper, &dirs.work, &dirs.merged] {
            fs::create_dir(d).map_err(|e| io_err(d, e))?;
        }
        Ok(dirs)
    }

    /// Runs one step on the overlay; its changes accumulate in `upper`.
    pub fn run(&self, step: &RunStep) -> Result<(), Error> {
        check_user_namespaces()?;
        let chroot = find_tool("chroot")?;
        let log_path = self._tmp.path().join("output.log");
        let log = fs::File::create(&log_path).map_err(|e| io_err(&log_path, e))?;
        let log2 = log.try_clone().map_err(|e| io_err(&log_path, e))?;
        let mut cmd = Command::new(find_tool("unshare")?);
        cmd.args([
            "--user",
            "--map-root-user",
            "--mount",
            "--propagation",
            "private",
            "--pid",
            "--fork",
            "--kill-child",
        ]);
        if !step.network {
            cmd.arg("--net");
        }
        cmd.arg("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("strata-run")
            .arg(&self.lower)
            .arg(&self.upper)
            .arg(&self.work)
            .arg(&self.merged)
            .arg(step.workdir.as_deref().unwrap_or("/"))
            .arg(&step.command)
            .arg(if step.network { "1" } else { "0" })
            .arg(&chroot)
            .args(&step.env)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let status = cmd
            .status()
            .map_err(|e| Error::Sandbox(format!("cannot start unshare: {e}")))?;
        if status.success() {
            return Ok(());
        }
        let output = tail(&log_path, 8 << 10);
        match status.code() {
            Some(OVERLAY_REFUSED) => Err(Error::Sandbox(format!(
                "overlayfs cannot be mounted in a user namespace here (it needs Linux 5.11 or later, \
                 and no sandbox forbidding it): {}",
                output.trim()
            ))),
            Some(127) if output.contains("failed to run command '/bin/sh'") => {
                Err(Error::Sandbox(format!(
                    "the layers below have no /bin/sh to run {:?} with",
                    step.command
                )))
            }
            code => Err(Error::RunFailed {
                command: step.command.clone(),
                status: code.map_or_else(
                    || "killed by a signal".to_owned(),
                    |c| format!("exit status {c}"),
                ),
                output,
            }),
        }
    }
}

impl Drop for RunDirs {
    /// Overlayfs leaves `work/work` with mode 000, and a command may leave
    /// directories without write permission: as an unprivileged user the
    /// temporary directory could not be removed without opening them first.
    fn drop(&mut self) {
        let mut stack = vec![self._tmp.path().to_path_buf()];
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
}

/// The exit status by which the script says the overlay mount was refused.
const OVERLAY_REFUSED: i32 = 190;

/// Runs inside the namespaces, as root of the user namespace, with the host's
/// tools. Arguments: lower upper work merged workdir command network chroot
/// then the image's `KEY=VALUE` environment.
const SCRIPT: &str = r#"
L=$1 U=$2 W=$3 M=$4 WD=$5 CMD=$6 NET=$7 CHROOT=$8
shift 8
mount -t overlay overlay -o "lowerdir=$L,upperdir=$U,workdir=$W,userxattr" "$M" || exit 190
if [ -d "$M/proc" ] && [ ! -L "$M/proc" ]; then
    mount -t proc -o nosuid,nodev,noexec proc "$M/proc" || exit 1
fi
if [ -d "$M/dev" ] && [ ! -L "$M/dev" ]; then
    mount -t tmpfs -o nosuid,noexec,mode=0755 tmpfs "$M/dev" || exit 1
    for d in null zero full random urandom tty; do
        if [ -e "/dev/$d" ]; then
            : > "$M/dev/$d" && mount --bind "/dev/$d" "$M/dev/$d" || exit 1
        fi
    done
    ln -s /proc/self/fd "$M/dev/fd"
    mkdir "$M/dev/shm" "$M/dev/pts"
fi
if [ "$NET" = 1 ] && [ -f /etc/resolv.conf ] && [ -f "$M/etc/resolv.conf" ] && [ ! -L "$M/etc/resolv.conf" ]; then
    mount --bind /etc/resolv.conf "$M/etc/resolv.conf" || exit 1
fi
# Modes of what the command creates must not depend on the builder's umask.
umask 022
exec env -i "$@" "$CHROOT" "$M" /bin/sh -c '[ -d "$1" ] || mkdir -p -- "$1"; cd -- "$1" && exec /bin/sh -c "$2"' strata-run "$WD" "$CMD"
"#;

/// A host tool the run needs, by absolute path.
fn find_tool(name: &str) -> Result<PathBuf, Error> {
    for dir in ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::Sandbox(format!(
        "`{name}` is not installed (util-linux and coreutils provide the tools run steps need)"
    )))
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
    let out = Command::new(find_tool("unshare")?)
        .args(["--user", "--map-root-user", "--mount", "true"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Sandbox(format!("cannot start unshare: {e}")))?;
    if !out.status.success() {
        return Err(Error::Sandbox(format!(
            "user namespaces are not available here (a container or seccomp profile may forbid them): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
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
