//! Differential tests against BuildKit (issue 19): for each Dockerfile here,
//! `strata import` + `strata compose` and `DOCKER_BUILDKIT=1 docker build`
//! must give images whose file systems are the same (paths, kinds, modes,
//! owners, contents, link targets; mtimes aside), both unpacked by `strata
//! rootfs` (docker's image through `skopeo copy docker-daemon:`), and whose
//! configs agree on Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts,
//! Healthcheck, Shell, Labels, Volumes and StopSignal.
//!
//! The cases with `RUN` steps build on a root file system of the host's
//! static busybox (SKIPPED without it, a failure in CI).
//!
//! Also `strata import` refusing what it cannot translate, line and column.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::docker::{docker, docker_ready};
use crate::support::{have, run_ok, strata, strata_ok};

/// A build context: files (path, content, mode), symlinks, and a Dockerfile.
struct Case {
    name: &'static str,
    dockerfile: &'static str,
    /// The final stage's name (the image compared).
    image: &'static str,
    /// The `.dockerignore` beside the Dockerfile, if not empty.
    ignore: &'static str,
}

/// The files every context holds, whatever its Dockerfile uses.
fn context(dir: &Path) {
    let put = |p: &str, content: &[u8], mode: u32| {
        let path = dir.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    };
    put("a.txt", b"alpha\n", 0o644);
    put("b.txt", b"bravo\n", 0o644);
    put("run.sh", b"#!/bin/sh\necho run\n", 0o755);
    put("site/index.html", b"<h1>hi</h1>\n", 0o644);
    put("site/css/main.css", b"body {}\n", 0o644);
    put("site/bin/tool", b"tool\n", 0o755);
    std::os::unix::fs::symlink("index.html", dir.join("site/home.html")).unwrap();
    for d in ["site", "site/css", "site/bin"] {
        fs::set_permissions(dir.join(d), fs::Permissions::from_mode(0o755)).unwrap();
    }
    // A root file system with special directories, and an archive to unpack.
    let mut b = tar::Builder::new(fs::File::create(dir.join("rootfs.tar")).unwrap());
    let entries: [(&str, tar::EntryType, u32, u64, &[u8]); 8] = [
        ("tmp/", tar::EntryType::Directory, 0o1777, 0, b""),
        ("srv/", tar::EntryType::Directory, 0o750, 33, b""),
        ("etc/", tar::EntryType::Directory, 0o755, 0, b""),
        (
            "etc/passwd",
            tar::EntryType::Regular,
            0o644,
            0,
            b"root:x:0:0::/root:/bin/sh\napp:x:1234:1240::/home/app:/bin/sh\n",
        ),
        (
            "etc/group",
            tar::EntryType::Regular,
            0o644,
            0,
            b"root:x:0:\napp:x:1234:\nstaff:x:50:\n",
        ),
        ("usr/", tar::EntryType::Directory, 0o755, 0, b""),
        ("usr/bin/", tar::EntryType::Directory, 0o755, 0, b""),
        ("usr/bin/su", tar::EntryType::Regular, 0o4755, 0, b"su\n"),
    ];
    for (path, kind, mode, owner, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(owner);
        h.set_gid(owner);
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        b.append_data(&mut h, path, data).unwrap();
    }
    b.into_inner().unwrap();
}

/// `busybox.tar`: a root file system of the host's static busybox, for
/// the cases with `RUN` steps; `None` (the cases are skipped) without it.
fn busybox_context(dir: &Path) -> Option<()> {
    let found = Command::new("sh")
        .args(["-c", "command -v busybox"])
        .output()
        .ok()?;
    let busybox = fs::canonicalize(String::from_utf8_lossy(&found.stdout).trim()).ok()?;
    let bytes = fs::read(busybox).ok()?;
    let mut b = tar::Builder::new(fs::File::create(dir.join("busybox.tar")).unwrap());
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_600_000_000);
        h
    };
    for (d, mode) in [
        ("bin/", 0o755),
        ("etc/", 0o755),
        ("home/", 0o755),
        ("root/", 0o700),
        ("tmp/", 0o1777),
    ] {
        b.append_data(&mut header(tar::EntryType::Directory, mode, 0), d, &[][..])
            .unwrap();
    }
    b.append_data(
        &mut header(tar::EntryType::Regular, 0o755, bytes.len() as u64),
        "bin/busybox",
        &bytes[..],
    )
    .unwrap();
    for tool in [
        "sh", "mkdir", "echo", "chmod", "chown", "rm", "ln", "touch", "cat",
    ] {
        b.append_link(
            &mut header(tar::EntryType::Symlink, 0o777, 0),
            format!("bin/{tool}"),
            "busybox",
        )
        .unwrap();
    }
    for (path, content) in [
        (
            "etc/passwd",
            "root:x:0:0::/root:/bin/sh\napp:x:1234:1234::/home/app:/bin/sh\n",
        ),
        ("etc/group", "root:x:0:\napp:x:1234:\n"),
        ("etc/motd", "hello\n"),
        ("etc/profile", "export PS1='$ '\n"),
    ] {
        b.append_data(
            &mut header(tar::EntryType::Regular, 0o644, content.len() as u64),
            path,
            content.as_bytes(),
        )
        .unwrap();
    }
    b.into_inner().unwrap();
    Some(())
}

const CASES: &[Case] = &[
    Case {
        name: "copy_files",
        dockerfile: "FROM scratch\nCOPY a.txt /etc/\nCOPY b.txt /opt/b\nCOPY run.sh /usr/local/bin/\n",
        image: "stage-0",
        ignore: "",
    },
    Case {
        name: "copy_a_directory",
        dockerfile: "FROM scratch\nCOPY site /srv/www\nCOPY site/ /srv/again/\n",
        image: "stage-0",
        ignore: "",
    },
    Case {
        name: "add_a_tarball",
        dockerfile: "FROM scratch\nADD rootfs.tar /\nADD rootfs.tar /opt/copy/\n",
        image: "stage-0",
        ignore: "",
    },
    Case {
        name: "copy_over_existing_directories",
        dockerfile: "FROM scratch\nADD rootfs.tar /\nCOPY a.txt /tmp/a\nCOPY site /srv/www\nCOPY b.txt /usr/bin/\n",
        image: "stage-0",
        ignore: "",
    },
    Case {
        name: "chmod_and_chown",
        dockerfile: "FROM scratch\nCOPY --chmod=600 a.txt /secret\nCOPY --chown=1000:1000 b.txt /home/app/b\n",
        image: "stage-0",
        ignore: "",
    },
    Case {
        name: "multi_stage",
        dockerfile: "FROM scratch AS base\nADD rootfs.tar /\nCMD [\"/bin/sh\"]\n\nFROM base AS app\nCOPY site /srv/www\nENV MODE=app\n",
        image: "app",
        ignore: "",
    },
    Case {
        name: "copy_from_a_stage",
        dockerfile: "FROM scratch AS build\nADD rootfs.tar /\nCOPY site /out/site\nCOPY --chmod=700 run.sh /out/bin/run\n\nFROM scratch\nADD rootfs.tar /\nCOPY --from=build /out/site /srv/www\nCOPY --from=build /usr/bin/su /out/site/home.html /usr/local/bin/\nCOPY --from=0 --chown=1000:1000 /out/bin /opt/bin\nCOPY --from=build /out /tmp/\n",
        image: "stage-1",
        ignore: "",
    },
    Case {
        name: "several_sources",
        dockerfile: "FROM scratch\nCOPY a.txt b.txt run.sh /multi/\nADD a.txt site /both/\n",
        image: "stage-0",
        ignore: "",
    },
    Case {
        name: "workdir_and_relative_paths",
        dockerfile: "FROM scratch\nWORKDIR /app\nWORKDIR sub\nCOPY a.txt .\nCOPY b.txt data/\nCOPY run.sh ./bin/run\n",
        image: "stage-0",
        ignore: "",
    },
    Case {
        name: "config",
        dockerfile: "FROM scratch\nARG VERSION=1.2\nENV APP_VERSION=$VERSION MODE=\"prod run\"\nENV LEGACY some value\nLABEL org.example.name=\"demo app\" version=$VERSION\nUSER 1000:1000\nEXPOSE 8080 53/udp\nVOLUME [\"/data\"]\nSTOPSIGNAL SIGINT\nWORKDIR /app\nENTRYPOINT [\"/app/run\"]\nCMD [\"--help\"]\n",
        image: "stage-0",
        ignore: "",
    },
    Case {
        name: "shell_form_cmd",
        dockerfile: "FROM scratch\nCOPY run.sh /\nENTRYPOINT /run.sh\nCMD echo \"hello world\"\n",
        image: "stage-0",
        ignore: "",
    },
    Case {
        name: "healthcheck_and_shell",
        dockerfile: "FROM scratch\nCOPY a.txt /\nSHELL [\"/bin/ash\", \"-eo\", \"pipefail\", \"-c\"]\nHEALTHCHECK --interval=5s --timeout=2s --start-period=1m30s --retries=4 CMD wget -q -O- http://localhost/ || exit 1\nCMD echo hello\n",
        image: "stage-0",
        ignore: "",
    },
    Case {
        name: "healthcheck_exec_form_and_none",
        dockerfile: "FROM scratch AS base\nHEALTHCHECK CMD [\"/bin/check\", \"-q\"]\nCOPY a.txt /\n\nFROM base AS checked\nCOPY b.txt /\n\nFROM checked AS app\nHEALTHCHECK NONE\n",
        image: "app",
        ignore: "",
    },
    Case {
        name: "dockerignore",
        dockerfile: "FROM scratch\nCOPY . /ctx/\nCOPY site /srv/www\nCOPY site/ /srv/again/\n",
        image: "stage-0",
        ignore: "# comments and blank lines are skipped\n\nours*\ntheirs\ns.kdl\nsite/css\n**/*.sh\n*.txt\n!b.txt\nsite/bin/*\n!site/bin/tool\nrootfs.tar\n",
    },
    Case {
        name: "arg_in_paths",
        dockerfile: "FROM scratch\nARG DEST=/opt/app\nCOPY site ${DEST}/site\nCOPY a.txt $DEST/a.txt\nWORKDIR $DEST\n",
        image: "stage-0",
        ignore: "",
    },
    Case {
        name: "chown_by_name",
        dockerfile: "FROM scratch\nADD rootfs.tar /\nCOPY --chown=app:app a.txt /srv/a\nCOPY --chown=app b.txt /srv/b\nCOPY --chown=1000:staff site /srv/site\n",
        image: "stage-0",
        ignore: "",
    },
    Case {
        name: "run_steps",
        dockerfile: "FROM scratch\nADD busybox.tar /\nRUN mkdir -p /app/data && echo hello > /app/data/greeting && chmod 600 /app/data/greeting\nRUN rm /etc/motd && chmod 1777 /app && echo more >> /etc/profile\nRUN chown 1234:1234 /app/data && ln -s data /app/current\n",
        image: "stage-0",
        ignore: "",
    },
    Case {
        name: "run_in_workdirs",
        dockerfile: "FROM scratch\nADD busybox.tar /\nWORKDIR /srv\nRUN echo x > here.txt\nWORKDIR /opt/tool\nRUN touch made && ln -s made link\n",
        image: "stage-0",
        ignore: "",
    },
    Case {
        name: "workdir_over_an_existing_directory",
        dockerfile: "FROM scratch\nADD busybox.tar /\nWORKDIR /tmp\nRUN echo t > t.txt\n",
        image: "stage-0",
        ignore: "",
    },
    Case {
        name: "run_as_a_user_by_name",
        dockerfile: "FROM scratch\nADD busybox.tar /\nRUN mkdir /home/app && chown app:app /home/app\nUSER app\nRUN echo mine > /home/app/f\nUSER root\nCOPY --chown=app a.txt /home/app/\n",
        image: "stage-0",
        ignore: "",
    },
];

/// Every entry under `root` as a sorted line: path, kind, mode, owner,
/// content digest or link target. Mtimes are left out.
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let what = if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                "dir".to_owned()
            } else {
                let bytes = fs::read(&p).unwrap();
                format!("file {} {:?}", bytes.len(), String::from_utf8_lossy(&bytes))
            };
            let mode = if m.file_type().is_symlink() {
                0
            } else {
                m.mode() & 0o7777
            };
            out.push(format!("/{rel} {mode:04o} {}:{} {what}", m.uid(), m.gid()));
            if m.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// The config fields compared, with "absent", null and empty made one.
fn config_fields(c: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    [
        "Env",
        "Cmd",
        "Entrypoint",
        "WorkingDir",
        "User",
        "ExposedPorts",
        "Healthcheck",
        "Shell",
        "Labels",
        "Volumes",
        "StopSignal",
    ]
    .iter()
    .map(|k| {
        let v = match &c[k] {
            serde_json::Value::String(s) if s.is_empty() => serde_json::Value::Null,
            // BuildKit writes the runtimes' default working directory.
            serde_json::Value::String(s) if *k == "WorkingDir" && s == "/" => {
                serde_json::Value::Null
            }
            serde_json::Value::Array(a) if a.is_empty() => serde_json::Value::Null,
            serde_json::Value::Object(o) if o.is_empty() => serde_json::Value::Null,
            v => v.clone(),
        };
        ((*k).to_owned(), v)
    })
    .collect()
}

#[test]
fn strata_import_and_buildkit_build_the_same_images() {
    let test = "strata_import_and_buildkit_build_the_same_images";
    if !docker_ready(test) || !have("skopeo", test) {
        return;
    }
    if !strata::union::running_as_root() {
        eprintln!("SKIPPED {test}: owners are compared, which needs root to unpack");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for case in CASES {
        let dir = tmp.path().join(case.name);
        fs::create_dir_all(&dir).unwrap();
        context(&dir);
        if case.dockerfile.contains("busybox.tar") && busybox_context(&dir).is_none() {
            if std::env::var_os("CI").is_some() {
                panic!("{}: busybox is missing, and CI must have it", case.name);
            }
            eprintln!("SKIPPED {}: no busybox to build its base with", case.name);
            continue;
        }
        fs::write(dir.join("Dockerfile"), case.dockerfile).unwrap();
        if !case.ignore.is_empty() {
            fs::write(dir.join(".dockerignore"), case.ignore).unwrap();
        }
        let cache = tmp.path().join("cache");

        // strata's side.
        strata_ok(&dir, &cache, &["import", "Dockerfile", "-o", "s.kdl"]);
        strata_ok(
            &dir,
            &cache,
            &["compose", "s.kdl", "--out", "ours", "--quiet"],
        );
        strata_ok(
            &dir,
            &cache,
            &["rootfs", &format!("ours:{}", case.image), "ours-root"],
        );
        let inspect = strata_ok(
            &dir,
            &cache,
            &["inspect", &format!("ours:{}", case.image), "--json"],
        );
        let ours: serde_json::Value = serde_json::from_str(&inspect).unwrap();
        let our_config = &ours["images"][0]["config"]["config"];

        // BuildKit's.
        let tag = format!(
            "strata-parity-{}-{}",
            std::process::id(),
            case.name.replace('_', "-")
        );
        run_ok(
            docker()
                .args(["build", "--network", "none", "-q", "-t", &tag, "."])
                .env("DOCKER_BUILDKIT", "1")
                .current_dir(&dir),
        );
        run_ok(
            Command::new("skopeo")
                .args(["copy", "-q"])
                .arg(format!("docker-daemon:{tag}:latest"))
                .arg(format!("oci:{}:img", dir.join("theirs").display())),
        );
        let their_config =
            run_ok(docker().args(["image", "inspect", "--format", "{{json .Config}}", &tag]));
        let _ = docker().args(["rmi", "-f", &tag]).output();
        let their_config: serde_json::Value = serde_json::from_str(&their_config).unwrap();
        strata_ok(&dir, &cache, &["rootfs", "theirs:img", "theirs-root"]);

        let (a, mut b) = (tree(&dir.join("ours-root")), tree(&dir.join("theirs-root")));
        // BuildKit's runc makes the mount points /dev, /proc and /sys in
        // the root of a RUN step's container, and they stay in its layer,
        // empty. strata's sandbox mounts them where the base has them and
        // records nothing it did not change (a file system the command
        // made is no content of the image), so empty ones that only
        // BuildKit's side has are left out of the comparison.
        b.retain(|l| {
            ![
                "/dev 0755 0:0 dir",
                "/proc 0755 0:0 dir",
                "/sys 0755 0:0 dir",
            ]
            .contains(&l.as_str())
                || a.contains(l)
        });
        if a != b {
            let diff = similar_lines(&b, &a);
            failures.push(format!(
                "{}: file systems differ (- docker, + strata):\n{diff}",
                case.name
            ));
        }
        let (a, b) = (config_fields(our_config), config_fields(&their_config));
        for ((k, ours), (_, theirs)) in a.iter().zip(&b) {
            if ours != theirs {
                failures.push(format!(
                    "{}: {k}: docker {theirs}, strata {ours}",
                    case.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The lines only one side has, marked.
fn similar_lines(theirs: &[String], ours: &[String]) -> String {
    let mut s = String::new();
    for l in theirs.iter().filter(|l| !ours.contains(l)) {
        s.push_str(&format!("- {l}\n"));
    }
    for l in ours.iter().filter(|l| !theirs.contains(l)) {
        s.push_str(&format!("+ {l}\n"));
    }
    s
}

#[test]
fn import_reports_every_untranslatable_line_with_its_column() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(
        dir.join("Dockerfile"),
        "FROM scratch AS base\nCOPY a.txt /\n\nFROM base\nCOPY --from=registry.test/img /a.txt /b\nHEALTHCHECK --start-interval=1s CMD true\n  RUN --mount=type=secret,id=x true\nADD https://example.org/x.tar /\nCOPY *.txt /t/\nFROBNICATE now\n",
    )
    .unwrap();
    let out = strata(
        dir,
        &dir.join("cache"),
        &["import", "Dockerfile", "-o", "s.kdl"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    for want in [
        "Dockerfile:5:6: COPY --from=registry.test/img is not translated: it names no earlier stage",
        "Dockerfile:6:13: HEALTHCHECK --start-interval is not translated",
        "Dockerfile:7:7: RUN --mount=type=secret,id=x is not translated",
        "Dockerfile:8:5: ADD of a URL",
        "Dockerfile:9:6: COPY of a glob",
        "Dockerfile:10:1: unknown instruction FROBNICATE",
    ] {
        assert!(err.contains(want), "{want} in:\n{err}");
    }
    assert!(!dir.join("s.kdl").exists(), "nothing written");
}
