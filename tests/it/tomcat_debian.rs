//! The second demo, `specs/tomcat-debian.kdl`, for real (issue 18): the
//! seed's tomcat made from Debian packages only, composed without running
//! anything, must serve its JSP under podman and docker, with the tomcat
//! user, ucf's configuration files and the java alternative written
//! declaratively; `dpkg -l` in the image lists the JRE and tomcat10.
//!
//! When the mirror still serves the locked versions, the fresh compose must
//! give exactly the committed lock's digests (`specs/tomcat-debian.lock`).
//!
//! Needs the network to the host's Debian mirror: SKIPPED without it,
//! failing in CI.

use std::fs;
use std::path::Path;
use std::process::Command;

use strata::lock::{Lock, lock_path};

use crate::dockerfile_way::{docker_ready, free_port, http_get, mirror_or_skip};
use crate::support::{have, remove_container, repo, run_ok, strata_ok};

/// What the page says once tomcat compiled and ran the JSP.
const SERVED: &str = "Hello from strata on Tomcat";

#[test]
fn tomcat_from_debian_packages_serves_its_jsp() {
    let test = "tomcat_from_debian_packages_serves_its_jsp";
    if !have("podman", test) {
        return;
    }
    if mirror_or_skip(test).is_none() {
        return;
    }
    // podman names an oci: image after its directory and refuses capitals.
    let work = repo().join(format!(
        "target/test-work/tomcat-debian-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let cache = work.join("cache");
    // The spec with its inputs, so that its lock is written beside this
    // copy, not over the committed one.
    let dir = work.join("spec");
    for f in [
        "tomcat-debian.kdl",
        "inputs/index.jsp",
        "keys/debian-archive-keyring.gpg",
    ] {
        fs::create_dir_all(dir.join(f).parent().unwrap()).unwrap();
        fs::copy(repo().join("specs").join(f), dir.join(f)).unwrap();
    }
    let (out, archive) = (work.join("out"), work.join("tomcat-debian.tar"));
    strata_ok(
        &dir,
        &cache,
        &[
            "compose",
            "tomcat-debian.kdl",
            "--out",
            out.to_str().unwrap(),
            "--docker-archive",
            archive.to_str().unwrap(),
            "--update-lock",
            "--quiet",
        ],
    );

    // Nothing ran, yet the maintainer scripts' effects are there.
    let files = strata_ok(
        &repo(),
        &cache,
        &[
            "inspect",
            &format!("{}:tomcat-debian", out.display()),
            "--files",
        ],
    );
    for want in [
        // tomcat10's postinst: `chown root:tomcat`, `chmod 640` (uid and
        // gid 997 are tomcat's; see INSIDE for the names).
        "/etc/tomcat10/server.xml file 0640 0:997",
        "/var/lib/ucf/hashfile file",
        "/usr/bin/java symlink 0777 0:0 -> /etc/alternatives/java",
        "/usr/bin/awk symlink 0777 0:0 -> /etc/alternatives/awk",
        "/etc/shadow file 0640 0:42",
    ] {
        assert!(
            files.lines().any(|l| l.trim_start().starts_with(want)),
            "no `{want}` in the image"
        );
    }

    check_against_the_lock(&dir.join("tomcat-debian.lock"));

    // podman publishes a free port.
    let name = format!("strata-tcdeb-podman-{}", std::process::id());
    let port = free_port();
    run_ok(
        Command::new("podman")
            .args(["run", "-d", "--name", &name, "--runtime", "runc"])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ])
            .arg("-p")
            .arg(format!("127.0.0.1:{port}:8080"))
            .arg(format!("oci:{}:tomcat-debian", out.display())),
    );
    let body = http_get(port, "/", 180);
    let inside = Command::new("podman")
        .args(["exec", &name, "sh", "-c", INSIDE])
        .output();
    let logs = Command::new("podman").args(["logs", &name]).output();
    remove_container("podman", &name, true);
    let body = body.unwrap_or_else(|| {
        panic!(
            "podman: tomcat never served /:\n{}",
            logs.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default()
        )
    });
    assert!(body.contains(SERVED), "podman served:\n{body}");
    check_inside(&String::from_utf8_lossy(&inside.unwrap().stdout));

    if docker_ready(test) {
        let docker = "/usr/bin/docker";
        run_ok(Command::new(docker).arg("load").arg("-i").arg(&archive));
        // No network of its own and no published port (dockerd here has no
        // bridge): the page is fetched inside, through bash's /dev/tcp.
        let name = format!("strata-tcdeb-docker-{}", std::process::id());
        run_ok(Command::new(docker).args([
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "tomcat-debian:latest",
        ]));
        let mut body = String::new();
        for _ in 0..180 {
            let o = Command::new(docker)
                .args(["exec", &name, "bash", "-c", FETCH])
                .output()
                .unwrap();
            body = String::from_utf8_lossy(&o.stdout).into_owned();
            if body.contains(SERVED) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        let inside = Command::new(docker)
            .args(["exec", &name, "sh", "-c", INSIDE])
            .output();
        let logs = Command::new(docker).args(["logs", &name]).output();
        let _ = Command::new(docker).args(["rm", "-f", &name]).output();
        let _ = Command::new(docker)
            .args(["rmi", "tomcat-debian:latest"])
            .output();
        assert!(
            body.contains(SERVED),
            "docker: tomcat never served /:\n{body}\n{}",
            logs.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default()
        );
        check_inside(&String::from_utf8_lossy(&inside.unwrap().stdout));
    }
    let _ = fs::remove_dir_all(&work);
}

/// `GET /` on the container's own loopback.
const FETCH: &str =
    "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3";

/// What is asked inside the running image.
const INSIDE: &str = "id tomcat; getent group tomcat; stat -c 'STAT %n %a %U:%G' /etc/tomcat10/server.xml /etc/tomcat10/policy.d /etc/tomcat10/Catalina /var/lib/tomcat10/webapps /var/lib/tomcat10/lib /var/log/tomcat10 /var/cache/tomcat10 /var/log/journal /etc/.java/.systemPrefs /var/lib/tomcat10/webapps/ROOT /var/lib/tomcat10/webapps/ROOT/META-INF/context.xml /etc/.java/.systemPrefs/.system.lock /etc/subuid /var/log/faillog /etc/security/opasswd /var/lib/ucf/registry; dpkg -l; echo AUDIT; dpkg --audit; echo END";

/// Owners and modes as `apt-get install --no-install-recommends tomcat10`
/// leaves them in Docker's debian:bookworm (checked by hand: the postinsts'
/// `chown`/`chmod`/`mkdir`, tmpfiles' `z` lines, and the files the
/// postinsts make).
const APT_STATS: &[&str] = &[
    "STAT /etc/tomcat10/server.xml 640 root:tomcat",
    "STAT /etc/tomcat10/policy.d 755 root:tomcat",
    "STAT /etc/tomcat10/Catalina 775 root:tomcat",
    "STAT /var/lib/tomcat10/webapps 775 tomcat:tomcat",
    "STAT /var/lib/tomcat10/lib 755 tomcat:tomcat",
    "STAT /var/log/tomcat10 2770 tomcat:adm",
    "STAT /var/cache/tomcat10 750 tomcat:tomcat",
    "STAT /var/log/journal 2755 root:systemd-journal",
    "STAT /etc/.java/.systemPrefs 755 root:root",
    // Files the postinsts make (`cp -r`, `touch` under `umask 066`), as
    // apt-get install leaves them in a container on Debian 12's minbase.
    "STAT /var/lib/tomcat10/webapps/ROOT 755 root:root",
    "STAT /var/lib/tomcat10/webapps/ROOT/META-INF/context.xml 644 root:root",
    "STAT /etc/.java/.systemPrefs/.system.lock 644 root:root",
    "STAT /etc/subuid 644 root:root",
    "STAT /var/log/faillog 644 root:root",
    "STAT /etc/security/opasswd 600 root:root",
    "STAT /var/lib/ucf/registry 644 root:root",
];

fn check_inside(out: &str) {
    assert!(
        out.lines()
            .any(|l| l.starts_with("uid=") && l.contains("(tomcat) gid=")),
        "no tomcat user:\n{out}"
    );
    for want in APT_STATS {
        assert!(out.lines().any(|l| l == *want), "no `{want}`:\n{out}");
    }
    for pkg in ["openjdk-17-jre-headless", "tomcat10", "libc6", "base-files"] {
        assert!(
            out.lines().any(|l| l.starts_with("ii ")
                && l.split_whitespace()
                    .nth(1)
                    .is_some_and(|n| n.split(':').next() == Some(pkg))),
            "{pkg} missing from dpkg -l:\n{out}"
        );
    }
    assert!(
        out.contains("AUDIT\nEND"),
        "dpkg --audit finds something:\n{out}"
    );
}

/// When this compose installed exactly the locked packages, its digests are
/// the lock's: the same packages give the same image anywhere. When the
/// mirror has moved on, says so (`strata lock` brings the lock up to date).
fn check_against_the_lock(fresh: &Path) {
    let spec = repo().join("specs/tomcat-debian.kdl");
    let committed = Lock::read(&lock_path(&spec), &spec).expect("specs/tomcat-debian.lock");
    let fresh = Lock::read(fresh, &spec).unwrap();
    if committed.packages() != fresh.packages() {
        eprintln!(
            "NOTE tomcat_from_debian_packages_serves_its_jsp: the mirror no longer serves the \
             locked package set; `strata lock specs/tomcat-debian.kdl` updates the lock"
        );
        return;
    }
    let digests = |l: &Lock| {
        l.images
            .iter()
            .map(|i| (i.name.clone(), i.manifest))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        digests(&committed),
        digests(&fresh),
        "the locked packages gave other images than specs/tomcat-debian.lock records"
    );
}
