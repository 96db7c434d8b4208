//! The `run` sandbox tried as an attacker would, and checked from outside:
//! a busybox base built by the test, hostile commands, and the host's files,
//! kernel settings, processes and temporary directories before and after.
//! Also the users of a run (every id mapped: chown, su, setgroups and the
//! owners that reach the layer) and the directories it must have.
//!
//! These matter most as root, which is how CI and most build hosts run
//! strata; as another user they check what they can.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{have, run_ok, strata, strata_bin, strata_ok};
use crate::union::{busybox_dir, layer_files};

const BASE: &str = r#"
image base {
    rootfs "base.tar"
    env PATH="/bin"
}
"#;

fn root() -> bool {
    strata::union::running_as_root()
}

/// A spec `s.kdl` in `dir`: the busybox base, then `layers` in image `app`.
pub(crate) fn write_spec(dir: &Path, layers: &str) {
    fs::write(
        dir.join("s.kdl"),
        format!("{BASE}\nimage app {{\n    from base\n{layers}\n}}\n"),
    )
    .unwrap();
}

/// `strata rootfs` of image `app` of `dir/out` into `dir/root`.
pub(crate) fn unpack(dir: &Path, cache: &Path) -> PathBuf {
    let root = dir.join("root");
    let _ = fs::remove_dir_all(&root);
    strata_ok(dir, cache, &["rootfs", "out:app", "root"]);
    root
}

/// Whether busybox is there to build the base (SKIPPED, or a panic in CI).
pub(crate) fn ready(test: &str) -> bool {
    have("busybox", test)
}

/// A random token no file of the image can hold by chance.
fn token() -> String {
    format!(
        "strata-secret-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ 0x5eed
    )
}

#[test]
fn a_double_chroot_escape_reaches_nothing_of_the_host() {
    let test = "a_double_chroot_escape_reaches_nothing_of_the_host";
    if !ready(test) || !have("cc", test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    // The classic escape: chroot into a subdirectory while holding the old
    // root open, climb out with `..`, chroot there; then read a host secret
    // and write a host file, by absolute host paths.
    let src = dir.join("escape.c");
    fs::write(
        &src,
        r#"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
    mkdir("/esc", 0755);
    int fd = open("/", O_RDONLY | O_DIRECTORY);
    if (chroot("/esc") == 0 && fchdir(fd) == 0) {
        for (int i = 0; i < 64; i++) chdir("..");
        if (chroot(".") == 0) printf("CHROOTED\n");
    }
    char buf[256] = {0};
    int s = open(argv[1], O_RDONLY);
    if (s >= 0 && read(s, buf, sizeof buf - 1) > 0) printf("READ %s\n", buf);
    int w = open(argv[2], O_WRONLY | O_CREAT, 0644);
    if (w >= 0 && write(w, "pwned\n", 6) == 6) printf("WROTE\n");
    int p = open("/proc/1/root/../../../../etc/hostname", O_RDONLY);
    if (p >= 0) printf("PROC1 open\n");
    return 0;
}
"#,
    )
    .unwrap();
    run_ok(
        Command::new("cc")
            .args(["-static", "-O1", "-o"])
            .arg(dir.join("escape"))
            .arg(&src),
    );
    let secret = tmp.path().join("host-secret");
    let secret_text = token();
    fs::write(&secret, &secret_text).unwrap();
    let sentinel = tmp.path().join("host-sentinel");
    write_spec(
        &dir,
        &format!(
            "    layer tool {{ copy \"escape\" to=\"/escape\" mode=0o755 }}\n    layer attack {{ run \"/escape {} {} > /result 2>&1; true\" }}",
            secret.display(),
            sentinel.display()
        ),
    );
    let cache = tmp.path().join("cache");
    strata_ok(
        &dir,
        &cache,
        &["compose", "s.kdl", "--out", "out", "--quiet"],
    );
    let result = fs::read_to_string(unpack(&dir, &cache).join("result")).unwrap();
    // The escape ran (a test that can fail): inside a container its chroots
    // are allowed, they just lead nowhere.
    assert!(result.contains("CHROOTED"), "{result}");
    assert!(
        !result.contains(&secret_text),
        "read the host's file: {result}"
    );
    assert!(!result.contains("WROTE"), "{result}");
    assert!(!sentinel.exists(), "the run wrote a file on the host");
}

/// The host's value of a `/proc/sys` setting.
fn sysctl(name: &str) -> String {
    fs::read_to_string(Path::new("/proc/sys").join(name))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn kernel_settings_hostname_and_ipc_of_the_host_are_out_of_reach() {
    let test = "kernel_settings_hostname_and_ipc_of_the_host_are_out_of_reach";
    if !ready(test) || !have("ipcmk", test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    let swappiness = sysctl("vm/swappiness");
    let hostname = sysctl("kernel/hostname");
    let other = (swappiness.parse::<u32>().unwrap_or(60) + 1) % 100;
    // A SysV shared memory segment of the host that the run must not see.
    let made = run_ok(Command::new("ipcmk").args(["-M", "4096"]));
    let shm_id = made
        .split_whitespace()
        .last()
        .expect("ipcmk prints the id")
        .to_owned();
    write_spec(
        &dir,
        &format!(
            "    layer attack {{ run \"(echo {other} > /proc/sys/vm/swappiness) 2>/dev/null; echo swap=$? > /r; \
             (echo pwned > /proc/sys/kernel/hostname) 2>/dev/null; echo hn=$? >> /r; \
             hostname pwned2 2>/dev/null; echo uts=$(hostname) >> /r; \
             (echo h > /proc/sysrq-trigger) 2>/dev/null; echo sysrq=$? >> /r; \
             cat /proc/sysvipc/shm > /ipc 2>&1; \
             cat /proc/self/mountinfo > /mounts; true\" }}"
        ),
    );
    let cache = tmp.path().join("cache");
    let out = strata(
        &dir,
        &cache,
        &["compose", "s.kdl", "--out", "out", "--quiet"],
    );
    let _ = Command::new("ipcrm").args(["-m", &shm_id]).status();
    let after_swap = sysctl("vm/swappiness");
    let after_host = sysctl("kernel/hostname");
    if after_swap != swappiness {
        let _ = fs::write("/proc/sys/vm/swappiness", &swappiness);
    }
    if after_host != hostname {
        let _ = fs::write("/proc/sys/kernel/hostname", &hostname);
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        after_swap, swappiness,
        "a run changed the host's swappiness"
    );
    assert_eq!(after_host, hostname, "a run renamed the host");
    let root = unpack(&dir, &cache);
    let r = fs::read_to_string(root.join("r")).unwrap();
    assert!(!r.contains("swap=0"), "{r}");
    assert!(!r.contains("hn=0"), "{r}");
    assert!(!r.contains("sysrq=0"), "{r}");
    // Its own UTS namespace: the name it set is its own.
    assert!(r.contains("uts=pwned2"), "{r}");
    let ipc = fs::read_to_string(root.join("ipc")).unwrap();
    assert!(
        !ipc.split_whitespace().any(|w| w == shm_id),
        "the host's segment {shm_id} is visible: {ipc}"
    );
    // runc's read-only and masked paths, as the container's mount table
    // shows them (field 5 is the mount point, 6 its options).
    let mounts = fs::read_to_string(root.join("mounts")).unwrap();
    let options = |point: &str| {
        mounts
            .lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .find(|f| f.get(4) == Some(&point))
            .map(|f| f[5].to_owned())
    };
    for ro in [
        "/proc/sys",
        "/proc/sysrq-trigger",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
    ] {
        if Path::new(ro).exists() {
            let o = options(ro).unwrap_or_else(|| panic!("{ro} is not mounted: {mounts}"));
            assert!(o.split(',').any(|x| x == "ro"), "{ro}: {o}");
        }
    }
    for masked in [
        "/proc/keys",
        "/proc/timer_list",
        "/proc/kcore",
        "/proc/acpi",
        "/proc/scsi",
    ] {
        if Path::new(masked).exists() {
            assert!(
                options(masked).is_some(),
                "{masked} is not masked: {mounts}"
            );
        }
    }
    assert!(options("/").is_some(), "{mounts}");
    assert!(
        !mounts
            .lines()
            .any(|l| l.split(' ').nth(4) == Some("/oldroot")),
        "{mounts}"
    );
}

/// The run directories strata made under `tmp`.
fn run_dirs(tmp: &Path) -> Vec<PathBuf> {
    fs::read_dir(tmp)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("strata-run-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `strata compose` of `dir/s.kdl`, in the background, with its own TMPDIR.
fn compose_in_background(dir: &Path, cache: &Path, tmpdir: &Path) -> Child {
    Command::new(strata_bin())
        .args(["compose", "s.kdl", "--out", "out", "--quiet"])
        .current_dir(dir)
        .env("STRATA_CACHE_DIR", cache)
        .env("TMPDIR", tmpdir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits up to `secs` for `f` to hold.
fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Pids of processes whose command line is exactly `args`.
fn processes(args: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = args
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

#[test]
fn a_setuid_file_a_run_makes_is_out_of_other_users_reach() {
    let test = "a_setuid_file_a_run_makes_is_out_of_other_users_reach";
    if !ready(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    // A TMPDIR others may enter, as /tmp is: only the run's own directory
    // may keep them out.
    let tmpdir = tmp.path().join("tmpdir");
    fs::create_dir(&tmpdir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&tmpdir, fs::Permissions::from_mode(0o1777)).unwrap();
    write_spec(
        &dir,
        "    layer suid { run \"cp /bin/busybox /suid && chmod 4755 /suid && sleep 31336\" }",
    );
    let cache = tmp.path().join("cache");
    let mut child = compose_in_background(&dir, &cache, &tmpdir);
    let found = wait_for(60, || {
        run_dirs(&tmpdir)
            .iter()
            .any(|d| d.join("upper/suid").exists())
    });
    let dirs = run_dirs(&tmpdir);
    // The compose is killed whatever the checks find.
    let checks = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert!(found, "the run never made its setuid file");
        let run = dirs.iter().find(|d| d.join("upper/suid").exists()).unwrap();
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(run).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700, "{}", run.display());
        if root() {
            let suid = fs::metadata(run.join("upper/suid")).unwrap();
            assert_ne!(suid.uid(), 0, "the container's root is the host's root");
            assert_ne!(meta.uid(), 0);
            if have("setpriv", test) {
                let out = Command::new("setpriv")
                    .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                    .arg(run.join("upper/suid"))
                    .args(["id", "-u"])
                    .output()
                    .unwrap();
                assert!(!out.status.success(), "nobody ran the setuid file: {out:?}");
            }
        }
    }));
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = checks {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn a_killed_compose_leaves_no_process_and_its_directory_goes_next_time() {
    let test = "a_killed_compose_leaves_no_process_and_its_directory_goes_next_time";
    if !ready(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    let tmpdir = tmp.path().join("tmpdir");
    fs::create_dir(&tmpdir).unwrap();
    write_spec(
        &dir,
        "    layer stuck { run \"sleep 31337 & sleep 31338; true\" }",
    );
    let cache = tmp.path().join("cache");
    let mut child = compose_in_background(&dir, &cache, &tmpdir);
    let started = wait_for(60, || {
        !processes(&["sleep", "31337"]).is_empty() && !processes(&["sleep", "31338"]).is_empty()
    });
    // kill -9: strata has no chance to clean up.
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "the step never started");
    let gone = wait_for(10, || {
        processes(&["sleep", "31337"]).is_empty() && processes(&["sleep", "31338"]).is_empty()
    });
    for pid in processes(&["sleep", "31337"])
        .into_iter()
        .chain(processes(&["sleep", "31338"]))
    {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    assert!(gone, "the step's processes outlived strata");
    assert_eq!(
        run_dirs(&tmpdir).len(),
        1,
        "the killed run left its directory"
    );
    // The next compose with a run step removes it.
    write_spec(&dir, "    layer quick { run \"echo ok > /ok\" }");
    let out = Command::new(strata_bin())
        .args(["compose", "s.kdl", "--out", "out", "--quiet"])
        .current_dir(&dir)
        .env("STRATA_CACHE_DIR", &cache)
        .env("TMPDIR", &tmpdir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(run_dirs(&tmpdir), Vec::<PathBuf>::new());
}

const USERS: &str = r#"    layer users {
        file "/etc/passwd" "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
        file "/etc/group" "root:x:0:\nstaff:x:50:app\nnogroup:x:65534:\napp:x:1000:\n"
    }
"#;

#[test]
fn every_user_of_the_image_is_a_user_in_the_run() {
    let test = "every_user_of_the_image_is_a_user_in_the_run";
    if !ready(test) || !root() {
        // Without root this needs subordinate ids; the fallback to one id
        // is covered by the warning test below.
        if !root() {
            eprintln!("SKIPPED {test}: needs root (or /etc/subuid ranges)");
        }
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    write_spec(
        &dir,
        &format!(
            "{USERS}    layer owners {{
        run \"echo x > /owned && chown 1000:50 /owned && mkdir /d && chown nobody:nogroup /d\"
        run \"mkdir -p /home/app && chown app:app /home/app && su -s /bin/sh app -c 'id -u > ~/su-uid; id -G > ~/su-groups; echo mine > ~/by-app'\"
        run \"cat /proc/self/uid_map > /tmp/uid_map\"
        run \"id -u > ~/as-user; id -G >> ~/as-user\" user=\"app\"
    }}"
        ),
    );
    let cache = tmp.path().join("cache");
    strata_ok(
        &dir,
        &cache,
        &["compose", "s.kdl", "--out", "out", "--quiet"],
    );
    let inspect = strata_ok(&dir, &cache, &["inspect", "out:app", "--files"]);
    let files = layer_files(&inspect, 3);
    assert!(files.contains("/owned file 0644 1000:50 "), "{files}");
    assert!(files.contains("/d/ dir 0755 65534:65534"), "{files}");
    assert!(
        files.contains("/home/app/by-app file 0644 1000:1000 "),
        "{files}"
    );
    let root = unpack(&dir, &cache);
    let read = |p: &str| fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(read("home/app/su-uid").trim(), "1000");
    // su set the supplementary groups from /etc/group (setgroups works).
    let groups = read("home/app/su-groups");
    assert!(groups.split_whitespace().any(|g| g == "50"), "{groups}");
    // `user=` runs the step as that user, with its groups, in its home.
    assert_eq!(
        read("home/app/as-user")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1000", "1000", "50"]
    );
    assert!(
        files.contains("/home/app/as-user file 0644 1000:1000 "),
        "{files}"
    );
    // The container's root is a private range, never the host's root.
    let map = read("tmp/uid_map");
    let fields: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "{map}");
    assert_eq!(fields[0], "0");
    assert_ne!(fields[1], "0", "root inside is root outside: {map}");
    assert_eq!(fields[2], "65536");
}

#[test]
fn proc_and_dev_are_there_even_when_the_image_lacks_them() {
    let test = "proc_and_dev_are_there_even_when_the_image_lacks_them";
    if !ready(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    write_spec(
        &dir,
        "    layer gone { delete \"/proc\"\n delete \"/dev\" }\n    layer check { run \"test -r /proc/self/status && test -c /dev/null && echo ok > /ok\" }",
    );
    let cache = tmp.path().join("cache");
    strata_ok(
        &dir,
        &cache,
        &["compose", "s.kdl", "--out", "out", "--quiet"],
    );
    let inspect = strata_ok(&dir, &cache, &["inspect", "out:app", "--files"]);
    let files = layer_files(&inspect, 3);
    assert_eq!(
        files
            .lines()
            .map(|l| l.split(' ').next().unwrap())
            .collect::<Vec<_>>(),
        ["/ok"],
        "{files}"
    );
}

#[test]
fn a_run_layer_is_byte_identical_across_cache_dirs() {
    let test = "a_run_layer_is_byte_identical_across_cache_dirs";
    if !ready(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    write_spec(
        &dir,
        &format!(
            "{USERS}    layer build {{ run \"mkdir -p /opt/app && echo built > /opt/app/out && ln -s out /opt/app/link && chmod 0750 /opt/app && rm /etc/old\" }}"
        ),
    );
    let digest = |cache: &str| {
        let json = strata_ok(
            &dir,
            &tmp.path().join(cache),
            &["compose", "s.kdl", "--out", cache, "--json"],
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["images"][1]["manifest"].as_str().unwrap().to_owned()
    };
    let a = digest("a");
    std::thread::sleep(Duration::from_millis(1100));
    let b = digest("b");
    assert_eq!(
        a, b,
        "the same command on the same layers gave different images"
    );
}

#[test]
fn a_run_in_a_foreign_platform_image_is_refused_without_a_binfmt_handler() {
    let test = "a_run_in_a_foreign_platform_image_is_refused_without_a_binfmt_handler";
    if !ready(test) {
        return;
    }
    let foreign = if std::env::consts::ARCH == "x86_64" {
        "arm64"
    } else {
        "amd64"
    };
    let qemu = if foreign == "arm64" {
        "aarch64"
    } else {
        "x86_64"
    };
    if Path::new("/proc/sys/fs/binfmt_misc")
        .join(format!("qemu-{qemu}"))
        .exists()
    {
        eprintln!("SKIPPED {test}: this host has a binfmt handler for {foreign}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    fs::write(
        dir.join("s.kdl"),
        format!(
            "image base {{\n    rootfs \"base.tar\"\n    platform \"linux/{foreign}\"\n}}\nimage app {{\n    from base\n    layer r {{ run \"echo ran > /ran\" }}\n}}\n"
        ),
    )
    .unwrap();
    let out = strata(
        &dir,
        &tmp.path().join("cache"),
        &["compose", "s.kdl", "--out", "out"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("the image's platform is linux/{foreign}"))
            && stderr.contains("no binfmt handler"),
        "{stderr}"
    );
}

#[test]
fn run_steps_start_the_running_binary_even_when_its_path_is_gone() {
    let test = "run_steps_start_the_running_binary_even_when_its_path_is_gone";
    if !ready(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    // The second step starts after the binary's path was removed, as when
    // a rebuild or an upgrade replaces strata under a long compose.
    write_spec(
        &dir,
        "    layer one { run \"sleep 3; echo one > /one\" }\n    layer two { run \"echo two > /two\" }",
    );
    let copy = tmp.path().join("strata-copy");
    fs::copy(strata_bin(), &copy).unwrap();
    let child = Command::new(&copy)
        .current_dir(&dir)
        .args(["compose", "s.kdl", "--out", "out", "--quiet", "--cache-dir"])
        .arg(tmp.path().join("cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    fs::remove_file(&copy).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = unpack(&dir, &tmp.path().join("cache"));
    assert_eq!(fs::read_to_string(root.join("two")).unwrap(), "two\n");
}

/// The unpacked layers of `cache` (`unpacked-v1/<range>/<diff_id hex>`).
fn unpacked(cache: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for range in fs::read_dir(cache.join("unpacked-v1"))
        .into_iter()
        .flatten()
    {
        for e in fs::read_dir(range.unwrap().path()).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            }
        }
    }
    dirs.sort();
    dirs
}

#[test]
fn consecutive_run_layers_unpack_each_layer_below_once_and_see_the_union() {
    let test = "consecutive_run_layers_unpack_each_layer_below_once_and_see_the_union";
    if !ready(test) || !root() {
        if !root() {
            eprintln!("SKIPPED {test}: unpacked layers are kept only as root");
        }
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = busybox_dir(tmp.path());
    // A cache dir relative to the spec's (the sandbox starts elsewhere).
    let cache = Path::new("../cache");
    let cache_abs = tmp.path().join("cache");
    // Each step sees what the one before wrote, with its owner and mode,
    // and not what it deleted; the directory it made opaque hides the base.
    let layers = |last: &str| {
        format!(
            "    layer one {{ run \"mkdir -p /d && echo a > /d/a && chown 1000:50 /d/a && chmod 0640 /d/a && rm /etc/old\" }}\n\
             \x20   layer two {{ run \"test ! -e /etc/old && stat -c '%u:%g %a' /d/a > /seen && rm -rf /etc && mkdir /etc && echo new > /etc/only\" }}\n\
             \x20   layer three {{ run \"{last}\" }}"
        )
    };
    write_spec(
        &dir,
        &layers("ls /etc > /etc-now && cat /seen > /seen-again"),
    );
    strata_ok(
        &dir,
        cache,
        &["compose", "s.kdl", "--out", "out", "--quiet"],
    );
    let root = unpack(&dir, cache);
    assert_eq!(
        fs::read_to_string(root.join("seen")).unwrap(),
        "1000:50 640\n"
    );
    assert_eq!(fs::read_to_string(root.join("etc-now")).unwrap(), "only\n");
    // The base and the layers one and two, once each.
    let first = unpacked(&cache_abs);
    assert_eq!(first.len(), 3, "{first:?}");
    use std::os::unix::fs::MetadataExt;
    let inode = |p: &Path| fs::metadata(p).unwrap().ino();
    let inodes: Vec<u64> = first.iter().map(|p| inode(p)).collect();
    // A changed last step reuses them: nothing is unpacked again.
    write_spec(&dir, &layers("cat /d/a > /again"));
    strata_ok(
        &dir,
        cache,
        &["compose", "s.kdl", "--out", "out", "--quiet"],
    );
    assert_eq!(unpacked(&cache_abs), first);
    assert_eq!(first.iter().map(|p| inode(p)).collect::<Vec<_>>(), inodes);
    // They are the cache's: gc removes those no layer record names.
    strata_ok(&dir, cache, &["cache", "gc", "--max-size", "0"]);
    assert_eq!(unpacked(&cache_abs), Vec::<PathBuf>::new());
}
