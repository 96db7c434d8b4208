//! The seed's tomcat the Dockerfile way, for real: a debootstrap minbase
//! bookworm rootfs (made by the test from the host's configured Debian
//! sources), `run "apt-get install openjdk-17-jre-headless"` and then
//! `tomcat10`, a JSP; the image must serve the JSP under podman and docker.
//!
//! This is `RUN apt-get install`, the most common line of every Dockerfile:
//! fontconfig-config's postinst chowns to `root:staff` and apt drops to its
//! `_apt` user, which need every id of the image mapped in the run.
//!
//! Needs the network to the Debian mirror: SKIPPED without it, failing in CI.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{have, remove_container, repo, run_ok, strata_ok};

/// The host's Debian mirror (see [`strata::packages::host_debian_mirror`]).
pub(crate) fn host_mirror() -> Option<String> {
    strata::packages::host_debian_mirror()
}

/// Whether the mirror answers on its port within a few seconds.
fn reachable(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host = rest.split('/').next().unwrap_or(rest);
    let addr = if host.contains(':') {
        host.to_owned()
    } else if url.starts_with("https") {
        format!("{host}:443")
    } else {
        format!("{host}:80")
    };
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(5)).is_ok())
}

/// The mirror, or why the test cannot run (a panic in CI).
pub(crate) fn mirror_or_skip(test: &str) -> Option<String> {
    let why = match host_mirror() {
        Some(m) if reachable(&m) => return Some(m),
        Some(_) => "the host's Debian mirror is unreachable",
        None => "the host's apt sources name no Debian mirror",
    };
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {why}, and CI must reach it");
    }
    eprintln!("SKIPPED {test}: {why}");
    None
}

/// A debootstrap `--variant=minbase` bookworm rootfs tar, made once under
/// `target/test-inputs/` (about two minutes) and reused.
pub(crate) fn minbase_tar(mirror: &str) -> PathBuf {
    let dir = repo().join("target/test-inputs");
    fs::create_dir_all(&dir).unwrap();
    let tar = dir.join("bookworm-minbase.tar");
    if tar.exists() {
        return tar;
    }
    let root = dir.join(format!("bookworm-minbase-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    run_ok(
        Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&root)
            .arg(mirror),
    );
    let part = dir.join(format!("bookworm-minbase.tar.{}", std::process::id()));
    run_ok(
        Command::new("tar")
            .args(["--numeric-owner", "--sort=name", "-C"])
            .arg(&root)
            .args(["-cf"])
            .arg(&part)
            .arg("."),
    );
    fs::rename(&part, &tar).unwrap();
    let _ = fs::remove_dir_all(&root);
    tar
}

/// A free loopback port.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on the loopback port until it answers 200 (up to `secs`).
pub(crate) fn http_get(port: u16, path: &str, secs: u64) -> Option<String> {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
            let mut body = String::new();
            if s.write_all(req.as_bytes()).is_ok()
                && s.read_to_string(&mut body).is_ok()
                && (body.starts_with("HTTP/1.1 200") || body.starts_with("HTTP/1.0 200"))
            {
                return Some(body);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    None
}

const SPEC: &str = r#"
image debian {
    rootfs "base.tar"
    env PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

image tomcat {
    from debian
    layer jdk {
        run "apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless" network=#true
    }
    layer tomcat { run "apt-get install -y --no-install-recommends tomcat10 && rm -rf /var/lib/apt/lists/*" network=#true }
    layer webapp {
        file "/var/lib/tomcat10/webapps/ROOT/index.jsp" "<%= \"strata-jsp-\" + (6 * 7) %>" mode=0o644
        delete "/var/lib/tomcat10/webapps/ROOT/index.html"
    }
    env CATALINA_HOME="/usr/share/tomcat10" CATALINA_BASE="/var/lib/tomcat10"
    expose 8080
    cmd "/usr/share/tomcat10/bin/catalina.sh" "run"
}
"#;

#[test]
fn tomcat_the_dockerfile_way_composes_and_serves_its_jsp() {
    let test = "tomcat_the_dockerfile_way_composes_and_serves_its_jsp";
    if !have("debootstrap", test) || !have("podman", test) {
        return;
    }
    let Some(mirror) = mirror_or_skip(test) else {
        return;
    };
    let base = minbase_tar(&mirror);
    // podman names an oci: image after its directory and refuses capitals.
    let work = repo().join(format!(
        "target/test-work/dockerfile-way-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    fs::hard_link(&base, work.join("base.tar"))
        .or_else(|_| fs::copy(&base, work.join("base.tar")).map(|_| ()))
        .unwrap();
    fs::write(work.join("s.kdl"), SPEC).unwrap();
    let cache = work.join("cache");
    strata_ok(
        &work,
        &cache,
        &[
            "compose",
            "s.kdl",
            "--out",
            "out",
            "--docker-archive",
            "tomcat.tar",
            "--quiet",
        ],
    );
    // fontconfig-config's postinst chowned this to root:staff, which only
    // a run with every id mapped can do.
    let inspect = strata_ok(&work, &cache, &["inspect", "out:tomcat", "--files"]);
    assert!(
        inspect
            .lines()
            .any(|l| l.contains("/usr/local/share/fonts/ dir") && l.contains(" 0:50")),
        "no root:staff fonts directory in:\n{}",
        inspect
            .lines()
            .filter(|l| l.contains("fonts/ dir"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // podman publishes a free port; docker here has no bridge (dockerd runs
    // with --bridge=none), so it shares the host's network and 8080.
    let serve = |runner: &str, args: &[&str]| {
        let docker = runner.ends_with("docker");
        let port = if docker { 8080 } else { free_port() };
        let name = format!(
            "strata-dfw-{}-{}",
            if docker { "docker" } else { "podman" },
            std::process::id()
        );
        let mut run = Command::new(runner);
        run.args(["run", "-d", "--name", &name]);
        if docker {
            run.args(["--network", "host"]);
        } else {
            run.arg("-p").arg(format!("127.0.0.1:{port}:8080"));
        }
        run.args(args);
        run_ok(&mut run);
        let body = http_get(port, "/", 180);
        let logs = Command::new(runner).args(["logs", &name]).output();
        remove_container(runner, &name, !docker);
        let body = body.unwrap_or_else(|| {
            panic!(
                "{runner}: tomcat never served /:\n{}",
                logs.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default()
            )
        });
        assert!(body.contains("strata-jsp-42"), "{runner} served:\n{body}");
    };
    serve(
        "podman",
        &[
            "--runtime",
            "runc",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            &format!("oci:{}:tomcat", work.join("out").display()),
        ],
    );
    if docker_ready(test) {
        run_ok(
            Command::new("/usr/bin/docker")
                .arg("load")
                .arg("-i")
                .arg(work.join("tomcat.tar")),
        );
        serve("/usr/bin/docker", &["tomcat:latest"]);
        let _ = Command::new("/usr/bin/docker")
            .args(["rmi", "-f", "tomcat:latest"])
            .output();
    }
    let _ = fs::remove_dir_all(&work);
}

/// Whether Debian's docker answers (`.ci/run` starts dockerd); a panic in CI
/// when it does not.
pub(crate) fn docker_ready(test: &str) -> bool {
    let ok = Path::new("/usr/bin/docker").exists()
        && Command::new("/usr/bin/docker")
            .arg("info")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: no docker daemon, and CI starts one (see .ci/run)");
        }
        eprintln!("SKIPPED {test} (docker part): no docker daemon at /usr/bin/docker");
    }
    ok
}
