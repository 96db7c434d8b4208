//! The inside of a `run` step's sandbox: the two stages the strata binary
//! runs as when started with [`ARG`], which make the container and start the
//! command in it. `run.rs` is the outside: it starts stage 1, writes its id
//! maps, and reads the result.
//!
//! Stage 1 (started by strata, in the run's temporary directory):
//! 1. dies with strata (`PR_SET_PDEATHSIG`, and a thread that waits for
//!    strata's end of its stdin to close);
//! 2. `unshare`s new user, mount, UTS, IPC, pid and (unless the step asks
//!    for the network) network namespaces, says `ready`, and waits for strata
//!    to write the id maps (see `idmap`) and say `go`;
//! 3. becomes the namespace's root (`setresgid`/`setgroups`/`setresuid` to
//!    0, which is a private host range, never the host's root), makes every
//!    mount private, mounts overlayfs (`lowerdir=lower:scaffold`, or the
//!    unpacked layers it bound to `l/N` before entering the namespace, so
//!    that the namespace's root need not reach them through the cache's
//!    directories; the upper
//!    directory that becomes the layer, option `userxattr`) on `merged`, names
//!    the UTS namespace `strata`, and starts stage 2 in `merged`.
//!
//! Stage 2 is pid 1 of the new pid namespace: when it ends, the kernel kills
//! every process the command left. It mounts `/proc` (with `/proc/sys`,
//! `/proc/sysrq-trigger` and the rest of runc's read-only paths read-only,
//! and runc's masked paths masked), a minimal `/dev` on tmpfs, the host's
//! `/etc/resolv.conf` when the step has the network, then `pivot_root`s into
//! `merged` and detaches the old root, so that nothing of the host's tree is
//! left to reach (the double-chroot escape has nowhere to go). It sets
//! `no_new_privs`, marks itself non-dumpable, and runs `/bin/sh -c COMMAND`
//! with the image's environment, waiting for it.
//!
//! `/proc` and `/dev` are mounted even when the image lacks the directories:
//! `scaffold` is a layer holding just those two (the lowest below an applied
//! `lower`, the topmost above stacked layers, whose whiteouts would hide
//! it), so they exist in the view but never in the upper directory, and
//! never in the layer.
//!
//! Everything here is safe Rust over `rustix` (and `nix` for `unshare`).

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use rustix::mount::{
    MountFlags, MountPropagationFlags, UnmountFlags, mount, mount_bind, mount_change, mount_remount,
};

/// The binary that is running, whatever became of the path it was started
/// from: the kernel keeps it reachable here for as long as it runs.
pub(crate) const SELF_EXE: &str = "/proc/self/exe";

/// The first argument that makes the strata binary a sandbox stage.
pub const ARG: &str = "__strata-sandbox";

/// Exit statuses by which the stages say what failed before the command.
pub mod status {
    /// The overlay mount was refused.
    pub const OVERLAY_REFUSED: i32 = 190;
    /// Setting up the namespaces or mounts failed.
    pub const SETUP: i32 = 191;
    /// The image has no `/bin/sh`.
    pub const NO_SHELL: i32 = 192;
}

/// runc's default masked paths: hidden under `/dev/null` or an empty tmpfs.
const MASKED: &[&str] = &[
    "proc/asound",
    "proc/acpi",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/scsi",
];

/// runc's default read-only paths.
const READ_ONLY: &[&str] = &[
    "proc/bus",
    "proc/fs",
    "proc/irq",
    "proc/sys",
    "proc/sysrq-trigger",
];

/// Host devices bound into the container's `/dev`.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// What both stages are told, in argument order after the stage's name.
struct Args {
    /// Stage 1: strata's pid, to notice having lost it before `PDEATHSIG`
    /// was set.
    parent: u32,
    network: bool,
    workdir: OsString,
    /// The image's `user`, empty for root.
    user: OsString,
    /// The unpacked layers to stack, top first, one path a line; empty for
    /// the run directory's `lower`.
    lowers: OsString,
    /// The step's mounts, one a line: `cache\tTARGET\tHOST-DIR`,
    /// `bind\tTARGET\tPATH` (relative to the run directory) or
    /// `secret\tTARGET\tN` (the Nth secret strata writes after `go`).
    mounts: OsString,
    /// The shell's words, one a line (`shell` of the image); empty for
    /// `/bin/sh -c`.
    shell: OsString,
    command: OsString,
    env: Vec<OsString>,
}

impl Args {
    fn parse(mut it: impl Iterator<Item = OsString>) -> Option<Args> {
        let parent = it.next()?.to_str()?.parse().ok()?;
        let network = it.next()? == "1";
        let workdir = it.next()?;
        let user = it.next()?;
        let lowers = it.next()?;
        let mounts = it.next()?;
        let shell = it.next()?;
        let command = it.next()?;
        Some(Args {
            parent,
            network,
            workdir,
            user,
            lowers,
            mounts,
            shell,
            command,
            env: it.collect(),
        })
    }

    fn to_args(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![
            self.parent.to_string().into(),
            if self.network { "1" } else { "0" }.into(),
            self.workdir.clone(),
            self.user.clone(),
            self.lowers.clone(),
            self.mounts.clone(),
            self.shell.clone(),
            self.command.clone(),
        ];
        v.extend(self.env.iter().cloned());
        v
    }
}

/// The arguments strata starts stage 1 with.
#[allow(clippy::too_many_arguments)] // one per field of the stages' argument list
pub fn stage1_args(
    lowers: &[std::path::PathBuf],
    mounts: &[String],
    network: bool,
    workdir: &str,
    user: Option<&str>,
    shell: Option<&[String]>,
    command: &str,
    env: &[String],
) -> Vec<OsString> {
    let a = Args {
        parent: std::process::id(),
        network,
        workdir: workdir.into(),
        user: user.unwrap_or("").into(),
        lowers: {
            let mut l = OsString::new();
            for (i, p) in lowers.iter().enumerate() {
                if i > 0 {
                    l.push("\n");
                }
                l.push(p);
            }
            l
        },
        mounts: mounts.join("\n").into(),
        shell: shell.map(|s| s.join("\n")).unwrap_or_default().into(),
        command: command.into(),
        env: env.iter().map(OsString::from).collect(),
    };
    let mut v: Vec<OsString> = vec![ARG.into(), "1".into()];
    v.extend(a.to_args());
    v
}

/// Call first thing in `main` of every binary that composes (the `strata`
/// CLI, xtask): when this process was started as a sandbox stage, runs it
/// and exits; otherwise returns at once.
pub fn dispatch() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(ARG.as_ref()) {
        return;
    }
    let stage = args.next();
    let code = match (stage.as_ref().and_then(|s| s.to_str()), Args::parse(args)) {
        (Some("1"), Some(a)) => stage1(&a),
        (Some("2"), Some(a)) => stage2(&a),
        _ => {
            eprintln!("strata: {ARG} is strata's own sandbox, not a command");
            2
        }
    };
    std::process::exit(code);
}

/// Prints why a setup step failed and gives the status to exit with.
fn fail(what: &str, e: impl std::fmt::Display) -> i32 {
    eprintln!("strata sandbox: {what}: {e}");
    status::SETUP
}

fn stage1(a: &Args) -> i32 {
    if let Err(e) =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
    {
        return fail("cannot tie the sandbox to strata (PR_SET_PDEATHSIG)", e);
    }
    if rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32) != Some(a.parent) {
        return fail(
            "strata is gone",
            "its process ended before the sandbox started",
        );
    }
    // The unpacked layers are bound to `l/N` in the run directory before
    // the user namespace exists: its root is not strata's user and may not
    // search the directories that lead to the cache, and overlayfs takes
    // only lower directories of its own mount namespace, which the user
    // namespace's copies of these mounts are. The binds live in a private
    // mount namespace that goes with this process.
    let lowers: Vec<&Path> = a
        .lowers
        .as_bytes()
        .split(|&b| b == b'\n')
        .filter(|p| !p.is_empty())
        .map(|p| Path::new(std::ffi::OsStr::from_bytes(p)))
        .collect();
    let mounts: Vec<Mount<'_>> = a
        .mounts
        .as_bytes()
        .split(|&b| b == b'\n')
        .filter_map(Mount::parse)
        .collect();
    // Cache directories are in strata's cache too: as root, bound to
    // `c/N` the same way; otherwise the namespace's root is strata's user,
    // who reaches them.
    let as_root = rustix::process::geteuid().is_root();
    let caches: Vec<&Path> = mounts
        .iter()
        .filter(|m| m.kind == b"cache")
        .map(|m| m.source_path())
        .collect();
    if !lowers.is_empty() || (as_root && !caches.is_empty()) {
        if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS) {
            return fail("cannot make a mount namespace for the layers", e);
        }
        if let Err(e) = mount_change(
            "/",
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
        ) {
            return fail("cannot make the mounts private", e);
        }
        for (i, p) in lowers.iter().enumerate() {
            // A layer's later steps find the mount points its first made.
            let at = format!("l/{i}");
            if let Err(e) = fs::create_dir_all(&at) {
                return fail(&format!("cannot make {at}"), e);
            }
            if let Err(e) = mount_bind(*p, at.as_str()) {
                return fail(&format!("cannot bind {}", p.display()), e);
            }
        }
        for (i, p) in caches.iter().enumerate() {
            let at = format!("c/{i}");
            if let Err(e) = fs::create_dir_all(&at) {
                return fail(&format!("cannot make {at}"), e);
            }
            if let Err(e) = mount_bind(*p, at.as_str()) {
                return fail(&format!("cannot bind {}", p.display()), e);
            }
        }
    }
    use nix::sched::CloneFlags as F;
    let mut flags = F::CLONE_NEWUSER | F::CLONE_NEWNS | F::CLONE_NEWUTS | F::CLONE_NEWIPC;
    flags |= F::CLONE_NEWPID;
    if !a.network {
        flags |= F::CLONE_NEWNET;
    }
    if let Err(e) = nix::sched::unshare(flags) {
        return fail("cannot make the namespaces (unshare)", e);
    }
    // The handshake: strata writes the id maps between these two lines.
    let mut out = std::io::stdout().lock();
    if writeln!(out, "ready").and_then(|_| out.flush()).is_err() {
        return status::SETUP;
    }
    drop(out);
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    if stdin.read_line(&mut line).is_err() || line.trim() != "go" {
        return fail("strata did not map the ids", "no `go`");
    }
    let mut secrets = Vec::new();
    for _ in mounts.iter().filter(|m| m.kind == b"secret") {
        match read_secret(&mut stdin) {
            Some(s) => secrets.push(s),
            None => return fail("strata did not send the secrets", "short read"),
        }
    }
    drop(stdin);

    use rustix::thread::{Gid, Uid, set_thread_groups, set_thread_res_gid, set_thread_res_uid};
    if let Err(e) = set_thread_res_gid(Gid::ROOT, Gid::ROOT, Gid::ROOT) {
        return fail("cannot become the namespace's root group", e);
    }
    // Denied where only one id is mapped; nothing to drop then.
    let _ = set_thread_groups(&[]);
    if let Err(e) = set_thread_res_uid(Uid::ROOT, Uid::ROOT, Uid::ROOT) {
        return fail("cannot become the namespace's root", e);
    }
    if let Err(e) = mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    ) {
        return fail("cannot make the mounts private", e);
    }
    // With the layers stacked, the scaffold goes on top: a layer's
    // whiteout of `/proc` or `/dev` would hide it from below (an applied
    // `lower` simply lacks them). Mounts cover its two directories, and
    // nothing copies them up.
    // `mnt`, the mounts' points, is the lowest: it adds what the image
    // lacks and changes nothing it has.
    let lowerdir = if lowers.is_empty() {
        "lower:scaffold:mnt".to_owned()
    } else {
        let mut l = "scaffold".to_owned();
        for i in 0..lowers.len() {
            l.push_str(&format!(":l/{i}"));
        }
        l.push_str(":mnt");
        l
    };
    let options = format!("lowerdir={lowerdir},upperdir=upper,workdir=work,userxattr");
    let Ok(options) = std::ffi::CString::new(options) else {
        return fail("overlay options", "a NUL byte");
    };
    if let Err(e) = mount(
        "overlay",
        "merged",
        "overlay",
        MountFlags::empty(),
        options.as_c_str(),
    ) {
        eprintln!("strata sandbox: mount overlay: {e}");
        return status::OVERLAY_REFUSED;
    }
    if let Err(code) = mount_all(&mounts, as_root, &mut secrets) {
        return code;
    }
    if let Err(e) = rustix::system::sethostname(b"strata") {
        return fail("cannot name the UTS namespace", e);
    }

    // The running binary itself, through the kernel's link: the path it was
    // started from may have been replaced or removed since (an upgrade, a
    // rebuild), and a path would then start another binary or none.
    let exe = SELF_EXE;
    let err = match std::io::stderr().as_fd_dup() {
        Ok(f) => f,
        Err(e) => return fail("cannot duplicate stderr", e),
    };
    let mut child = match Command::new(exe)
        .arg(ARG)
        .arg("2")
        .args(a.to_args())
        .current_dir("merged")
        .stdin(Stdio::null())
        .stdout(err)
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return fail("cannot start the sandbox's init", e),
    };
    // strata holds the other end of stdin: when strata ends, however it
    // ends, stdin reads its end and the container goes with it. No thread
    // can watch it (a process that made a pid namespace for its children
    // cannot make threads), so one `poll` waits for either.
    match wait_or_orphaned(&mut child) {
        Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9)),
        Err(e) => fail("cannot wait for the sandbox's init", e),
    }
}

/// One line of [`Args::mounts`].
struct Mount<'a> {
    kind: &'a [u8],
    target: &'a [u8],
    source: &'a [u8],
}

impl<'a> Mount<'a> {
    fn parse(line: &'a [u8]) -> Option<Mount<'a>> {
        let mut f = line.splitn(3, |&b| b == b'\t');
        Some(Mount {
            kind: f.next()?,
            target: f.next()?,
            source: f.next()?,
        })
    }

    fn source_path(&self) -> &'a Path {
        Path::new(std::ffi::OsStr::from_bytes(self.source))
    }
}

/// One secret of what strata writes after `go`: `LEN\n` and the bytes.
fn read_secret(input: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut len = String::new();
    input.read_line(&mut len).ok()?;
    let len: usize = len.trim().parse().ok()?;
    let mut bytes = vec![0; len];
    std::io::Read::read_exact(input, &mut bytes).ok()?;
    Some(bytes)
}

/// The step's mounts on `merged`. Each mount point is opened beneath
/// `merged` with `RESOLVE_IN_ROOT`, so that a symlink in the image resolves
/// inside it, never to the host's tree, and mounted on through its
/// descriptor. Cache directories are bound read-write, other images of the
/// spec (`bind`, applied in the run directory) read-only; secrets are written
/// 0400 to a tmpfs of this mount namespace and bound read-only, and the
/// tmpfs detached: their bytes are nowhere on disk, nor anywhere but at
/// their path in the container.
fn mount_all(mounts: &[Mount<'_>], as_root: bool, secrets: &mut [Vec<u8>]) -> Result<(), i32> {
    if mounts.is_empty() {
        return Ok(());
    }
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let merged = rustix::fs::open(
        "merged",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail("cannot open the container's root", e))?;
    if !secrets.is_empty() {
        fs::create_dir_all("secrets").map_err(|e| fail("cannot make secrets", e))?;
        mount("tmpfs", "secrets", "tmpfs", LOCKED, c"mode=0700,size=16m")
            .map_err(|e| fail("cannot mount the secrets' tmpfs", e))?;
    }
    let (mut cache, mut secret) = (0, 0);
    for m in mounts {
        let target = String::from_utf8_lossy(m.target).into_owned();
        let rel = std::ffi::OsStr::from_bytes(m.target.strip_prefix(b"/").unwrap_or(m.target));
        let at = rustix::fs::openat2(
            &merged,
            rel,
            OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| fail(&format!("mount point {target}"), e))?;
        let is_dir = rustix::fs::fstat(&at)
            .map(|st| {
                rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
            })
            .unwrap_or(false);
        use std::os::fd::AsRawFd;
        let at_path = format!("/proc/self/fd/{}", at.as_raw_fd());
        if m.kind == b"cache" {
            if !is_dir {
                eprintln!(
                    "strata sandbox: the cache mount at {target}: the image has something other than a directory there"
                );
                return Err(status::SETUP);
            }
            let source = if as_root {
                format!("c/{cache}")
            } else {
                m.source_path().display().to_string()
            };
            cache += 1;
            mount_bind(source.as_str(), at_path.as_str())
                .map_err(|e| fail(&format!("cannot mount the cache at {target}"), e))?;
        } else if m.kind == b"bind" {
            // Another image of the spec, applied in the run directory: bound
            // read-only, so the command reads it and never changes it.
            mount_bind(m.source_path(), at_path.as_str())
                .map_err(|e| fail(&format!("cannot mount the bind at {target}"), e))?;
            read_only(&merged, rel, &target)?;
        } else {
            if is_dir {
                eprintln!(
                    "strata sandbox: the secret mount at {target}: the image has a directory there"
                );
                return Err(status::SETUP);
            }
            let file = format!("secrets/{secret}");
            let bytes = std::mem::take(&mut secrets[secret]);
            secret += 1;
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o400)
                .open(&file)
                .and_then(|mut f| f.write_all(&bytes))
                .map_err(|e| fail("cannot write a secret", e))?;
            mount_bind(file.as_str(), at_path.as_str())
                .map_err(|e| fail(&format!("cannot mount the secret at {target}"), e))?;
            read_only(&merged, rel, &target)?;
        }
    }
    if secret > 0 {
        rustix::mount::unmount("secrets", UnmountFlags::DETACH)
            .map_err(|e| fail("cannot detach the secrets' tmpfs", e))?;
    }
    Ok(())
}

/// Makes the mount just bound at `rel` beneath `merged` read-only. The
/// descriptor of the mount point is the directory beneath the mount: the
/// bound mount is what the path opens now.
fn read_only(merged: &rustix::fd::OwnedFd, rel: &std::ffi::OsStr, target: &str) -> Result<(), i32> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use std::os::fd::AsRawFd;
    let bound = rustix::fs::openat2(
        merged,
        rel,
        OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| fail(&format!("mount point {target}"), e))?;
    let bound_path = format!("/proc/self/fd/{}", bound.as_raw_fd());
    mount_remount(
        bound_path.as_str(),
        LOCKED | MountFlags::BIND | MountFlags::RDONLY,
        c"",
    )
    .map_err(|e| fail(&format!("cannot make the mount at {target} read-only"), e))
}

/// Waits for `child`, killing it if stdin closes first (strata ended).
fn wait_or_orphaned(child: &mut std::process::Child) -> std::io::Result<std::process::ExitStatus> {
    use rustix::event::{PollFd, PollFlags, poll};
    use std::os::fd::AsFd;
    let pid = rustix::process::Pid::from_child(child);
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
    let stdin = std::io::stdin();
    let stdin = stdin.as_fd();
    loop {
        let mut fds = [
            PollFd::new(&pidfd, PollFlags::IN),
            PollFd::new(&stdin, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        if !fds[0].revents().is_empty() {
            return child.wait();
        }
        if !fds[1].revents().is_empty() {
            let mut byte = [0u8; 64];
            if rustix::io::read(stdin, &mut byte).unwrap_or(0) == 0 {
                let _ = child.kill();
                let _ = child.wait();
                std::process::exit(137);
            }
        }
    }
}

trait DupFd {
    fn as_fd_dup(&self) -> std::io::Result<fs::File>;
}

impl DupFd for std::io::Stderr {
    fn as_fd_dup(&self) -> std::io::Result<fs::File> {
        use std::os::fd::AsFd;
        Ok(fs::File::from(self.as_fd().try_clone_to_owned()?))
    }
}

fn stage2(a: &Args) -> i32 {
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if let Err(code) = mount_proc().and_then(|()| mount_dev()) {
        return code;
    }
    if a.network
        && is_file("etc/resolv.conf")
        && is_file("/etc/resolv.conf")
        && let Err(e) = mount_bind("/etc/resolv.conf", "etc/resolv.conf")
    {
        return fail("cannot bind /etc/resolv.conf", e);
    }
    // The old root is stacked on `.` and then detached: after this no path
    // reaches the host's tree.
    if let Err(e) = rustix::process::pivot_root(".", ".") {
        return fail("pivot_root", e);
    }
    if let Err(e) = rustix::mount::unmount(".", UnmountFlags::DETACH) {
        return fail("cannot detach the old root", e);
    }
    if let Err(e) = std::env::set_current_dir("/") {
        return fail("chdir /", e);
    }
    if let Err(e) = rustix::thread::set_no_new_privs(true) {
        return fail("cannot set no_new_privs", e);
    }
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    // Modes of what the command creates must not depend on the builder's umask.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let wd = Path::new(&a.workdir);
    if !wd.is_dir()
        && let Err(e) = fs::create_dir_all(wd)
    {
        return fail(
            &format!("cannot make the working directory {}", wd.display()),
            e,
        );
    }
    // The image's `shell` (Docker's `SHELL`), or `/bin/sh -c`.
    let shell: Vec<&[u8]> = if a.shell.is_empty() {
        vec![b"/bin/sh", b"-c"]
    } else {
        a.shell.as_bytes().split(|&c| c == b'\n').collect()
    };
    let exe = std::ffi::OsStr::from_bytes(shell[0]);
    let mut cmd = Command::new(exe);
    cmd.args(shell[1..].iter().map(|w| std::ffi::OsStr::from_bytes(w)))
        .arg(&a.command)
        .env_clear()
        .current_dir(wd)
        .stdin(Stdio::null());
    let user = match resolve_user(&a.user.to_string_lossy()) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("strata sandbox: {e}");
            return status::SETUP;
        }
    };
    if !a.env.iter().any(|kv| kv.as_bytes().starts_with(b"HOME=")) {
        cmd.env("HOME", &user.home);
    }
    for kv in &a.env {
        let b = kv.as_bytes();
        if let Some(i) = b.iter().position(|&c| c == b'=') {
            cmd.env(
                std::ffi::OsStr::from_bytes(&b[..i]),
                std::ffi::OsStr::from_bytes(&b[i + 1..]),
            );
        }
    }
    // The image's user, as a Dockerfile's USER: this process becomes it
    // (it is alone in its thread group, so the per-thread calls suffice),
    // and the command inherits it.
    if user.uid != 0 || user.gid != 0 {
        use rustix::thread::{Gid, Uid, set_thread_groups, set_thread_res_gid, set_thread_res_uid};
        let groups: Vec<Gid> = user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        let g = Gid::from_raw(user.gid);
        let u = Uid::from_raw(user.uid);
        if let Err(e) = set_thread_groups(&groups)
            .and_then(|()| set_thread_res_gid(g, g, g))
            .and_then(|()| set_thread_res_uid(u, u, u))
        {
            return fail(&format!("cannot become the user {:?}", a.user), e);
        }
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("strata sandbox: the image has no {}", exe.to_string_lossy());
            return status::NO_SHELL;
        }
        Err(e) => return fail(&format!("cannot start {}", exe.to_string_lossy()), e),
    };
    match child.wait() {
        Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9)),
        Err(e) => fail("cannot wait for the command", e),
    }
}

/// Who the command runs as.
#[derive(Debug, PartialEq, Eq)]
struct User {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    home: String,
}

/// The image's `user` (`name`, `uid`, `name:group`, `uid:gid`, or empty for
/// root) resolved against the image's own `/etc/passwd` and `/etc/group`,
/// as Docker does: a name must exist; a bare uid without an entry gets gid
/// 0; supplementary groups come from `/etc/group` unless a group is given.
fn resolve_user(spec: &str) -> Result<User, String> {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = fs::read_to_string("/etc/group").unwrap_or_default();
    resolve_user_in(spec, &passwd, &group)
}

fn resolve_user_in(spec: &str, passwd: &str, group: &str) -> Result<User, String> {
    let (who, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let who = if who.is_empty() { "0" } else { who };
    let entries = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| l.split(':').map(str::to_owned).collect())
            .collect()
    };
    let (passwd, group) = (entries(passwd), entries(group));
    let entry = passwd
        .iter()
        .find(|f| f.len() >= 6 && (f[0] == who || (who.parse::<u32>().is_ok() && f[2] == who)));
    let (uid, primary, name, home) = match (entry, who.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse::<u32>()
                .map_err(|_| format!("/etc/passwd: bad uid for {}", f[0]))?,
            f[3].parse::<u32>().unwrap_or(0),
            Some(f[0].clone()),
            f[5].clone(),
        ),
        (None, Ok(uid)) => (uid, 0, None, "/".to_owned()),
        (None, Err(_)) => {
            return Err(format!(
                "the image's user {who:?} is not in its /etc/passwd"
            ));
        }
    };
    let find_group = |g: &str| -> Result<u32, String> {
        if let Ok(n) = g.parse::<u32>() {
            return Ok(n);
        }
        group
            .iter()
            .find(|f| f.len() >= 3 && f[0] == g)
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| format!("the image's group {g:?} is not in its /etc/group"))
    };
    let (gid, groups) = match grp {
        Some(g) => {
            let gid = find_group(g)?;
            (gid, vec![gid])
        }
        None => {
            let mut groups = vec![primary];
            if let Some(name) = &name {
                for f in &group {
                    if f.len() >= 4
                        && f[3].split(',').any(|m| m == name)
                        && let Ok(g) = f[2].parse::<u32>()
                        && !groups.contains(&g)
                    {
                        groups.push(g);
                    }
                }
            }
            (primary, groups)
        }
    };
    Ok(User {
        uid,
        gid,
        groups,
        home: if home.is_empty() {
            "/".to_owned()
        } else {
            home
        },
    })
}

fn is_dir(p: &str) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

fn is_file(p: &str) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.is_file())
}

const LOCKED: MountFlags = MountFlags::NOSUID
    .union(MountFlags::NODEV)
    .union(MountFlags::NOEXEC);

/// `/proc` of the new pid namespace, with runc's read-only and masked paths.
fn mount_proc() -> Result<(), i32> {
    if !is_dir("proc") {
        return Ok(());
    }
    mount("proc", "proc", "proc", LOCKED, c"").map_err(|e| fail("mount /proc", e))?;
    for p in READ_ONLY {
        if fs::symlink_metadata(p).is_err() {
            continue;
        }
        mount_bind(*p, *p).map_err(|e| fail(&format!("bind /{p}"), e))?;
        mount_remount(*p, LOCKED | MountFlags::BIND | MountFlags::RDONLY, c"")
            .map_err(|e| fail(&format!("make /{p} read-only"), e))?;
    }
    for p in MASKED {
        match fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => {
                mount("tmpfs", *p, "tmpfs", LOCKED | MountFlags::RDONLY, c"size=0")
                    .map_err(|e| fail(&format!("mask /{p}"), e))?
            }
            Ok(_) => mount_bind("/dev/null", *p).map_err(|e| fail(&format!("mask /{p}"), e))?,
            Err(_) => {}
        }
    }
    Ok(())
}

/// A minimal `/dev`: tmpfs with the host's harmless devices bound in.
fn mount_dev() -> Result<(), i32> {
    if !is_dir("dev") {
        return Ok(());
    }
    mount(
        "tmpfs",
        "dev",
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        c"mode=0755,size=65536k",
    )
    .map_err(|e| fail("mount /dev", e))?;
    for d in DEVICES {
        let host = format!("/dev/{d}");
        if fs::metadata(&host).is_err() {
            continue;
        }
        let inside = format!("dev/{d}");
        fs::File::create(&inside).map_err(|e| fail(&format!("make /{inside}"), e))?;
        mount_bind(host.as_str(), inside.as_str()).map_err(|e| fail(&format!("bind {host}"), e))?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, format!("dev/{name}"))
            .map_err(|e| fail(&format!("make /dev/{name}"), e))?;
    }
    for dir in ["dev/shm", "dev/pts"] {
        fs::create_dir(dir).map_err(|e| fail(&format!("make /{dir}"), e))?;
    }
    mount("shm", "dev/shm", "tmpfs", LOCKED, c"mode=1777,size=65536k")
        .map_err(|e| fail("mount /dev/shm", e))?;
    // A private pty instance where the kernel allows one; nothing a build
    // needs, so its absence is not an error.
    if mount(
        "devpts",
        "dev/pts",
        "devpts",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        c"newinstance,ptmxmode=0666,mode=0620",
    )
    .is_ok()
    {
        let _ = std::os::unix::fs::symlink("pts/ptmx", "dev/ptmx");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:app,bob\napp:x:1000:\n";

    #[test]
    fn users_resolve_as_docker_resolves_them() {
        let r = |s: &str| resolve_user_in(s, PASSWD, GROUP);
        let root = r("").unwrap();
        assert_eq!((root.uid, root.gid, root.home.as_str()), (0, 0, "/root"));
        let app = r("app").unwrap();
        assert_eq!((app.uid, app.gid), (1000, 1000));
        assert_eq!(app.groups, [1000, 50]);
        assert_eq!(r("1000").unwrap().groups, [1000, 50]);
        let g = r("app:staff").unwrap();
        assert_eq!((g.uid, g.gid, g.groups.clone()), (1000, 50, vec![50]));
        let bare = r("4242:7").unwrap();
        assert_eq!((bare.uid, bare.gid, bare.home.as_str()), (4242, 7, "/"));
        assert_eq!(r("4242").unwrap().gid, 0);
        assert!(
            r("ghost")
                .unwrap_err()
                .contains("\"ghost\" is not in its /etc/passwd")
        );
        assert!(r("app:ghosts").unwrap_err().contains("/etc/group"));
    }
}
