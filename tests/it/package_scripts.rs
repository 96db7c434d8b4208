//! What maintainer scripts' `chown`, `chmod`, `mkdir` and
//! `dpkg-statoverride --add` do, done without running them (issue 18): the
//! image has the owners and modes `apt-get install` would leave, by the
//! names of the users the packages' `sysusers.d` files and base-passwd
//! give. Offline, from a repository the test makes and signs itself. The
//! same effects on the real tomcat10 are checked against `apt-get install`
//! in Docker by `tomcat_debian.rs`.

use std::fs;

use strata_testkit::debrepo::{build_deb_with, have_tools, index_and_sign};

use crate::support::strata_ok;

const POSTINST: &str = r#"#!/bin/sh
set -e
SVC_USER=svc
case "$1" in
    configure)
        systemd-sysusers svc.conf
        chown -Rh $SVC_USER:adm /var/lib/svc/
        chmod 750 /var/lib/svc
        for f in secret.conf other.conf; do
            if [ -f /etc/svc/$f ]; then
                chown root:$SVC_USER /etc/svc/$f
                chmod 640 /etc/svc/$f 2>/dev/null || true
            fi
        done
        [ -d /etc/svc/local ] || mkdir -m 2775 /etc/svc/local
        dpkg-statoverride --update --add root svc 4750 /usr/bin/svc-helper
        # Not recognized, so not done: a symbolic mode, an unknown word.
        chmod g+w /etc/svc/untouched
        chown "$2" /etc/svc/untouched
    ;;
esac
"#;

#[test]
fn chown_chmod_mkdir_and_statoverride_of_postinsts_are_in_the_image() {
    let test = "chown_chmod_mkdir_and_statoverride_of_postinsts_are_in_the_image";
    if !have_tools(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (root, gnupg, cache) = (
        tmp.path().join("repo"),
        tmp.path().join("gnupg"),
        tmp.path().join("cache"),
    );
    build_deb_with(
        &root,
        "base-passwd",
        "3.6",
        "amd64",
        &[],
        &[
            (
                "usr/share/base-passwd/passwd.master",
                "root:*:0:0:root:/root:/bin/bash\n",
            ),
            (
                "usr/share/base-passwd/group.master",
                "root:*:0:\nadm:*:4:\n",
            ),
        ],
    );
    build_deb_with(
        &root,
        "svc",
        "1.0",
        "amd64",
        &["Depends: base-passwd"],
        &[
            ("DEBIAN/postinst", POSTINST),
            (
                "usr/lib/sysusers.d/svc.conf",
                "u svc - \"Service\" /var/lib/svc\n",
            ),
            ("var/lib/svc/data/state", "s\n"),
            ("etc/svc/secret.conf", "password\n"),
            ("etc/svc/untouched", "u\n"),
            ("usr/bin/svc-helper", "#!/bin/sh\n"),
        ],
    );
    let key = index_and_sign(&root, &gnupg);
    let dir = tmp.path().join("spec");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("test.gpg"), &key).unwrap();
    fs::write(
        dir.join("app.kdl"),
        format!(
            "repository test url=\"file://{}\" suite=\"stable\" keyring=\"test.gpg\"\nimage app {{\n    layer base {{ packages \"base-passwd\" }}\n    layer svc {{ packages \"svc\" }}\n}}\n",
            root.display()
        ),
    )
    .unwrap();
    strata_ok(&dir, &cache, &["compose", "app.kdl", "-o", "out", "-q"]);
    let files = strata_ok(&dir, &cache, &["inspect", "out:app", "--files"]);
    let entry = |path: &str| -> String {
        files
            .lines()
            .map(str::trim)
            .rfind(|l| l.starts_with(&format!("{path} ")))
            .unwrap_or_else(|| panic!("{path} is not in the image:\n{files}"))
            .to_owned()
    };
    // svc gets 999 (the highest free system id), as systemd-sysusers allocates.
    let passwd = entry("/etc/passwd");
    assert!(passwd.contains("file 0644 0:0"), "{passwd}");
    for (path, meta) in [
        ("/var/lib/svc/", "dir 0750 999:4"),
        ("/var/lib/svc/data/", "dir 0755 999:4"),
        ("/var/lib/svc/data/state", "file 0644 999:4"),
        ("/etc/svc/secret.conf", "file 0640 0:999"),
        ("/etc/svc/local/", "dir 2775 0:0"),
        ("/usr/bin/svc-helper", "file 4750 0:999"),
        ("/etc/svc/untouched", "file 0644 0:0"),
    ] {
        let line = entry(path);
        assert!(line.contains(meta), "{path}: want {meta}, got {line}");
    }
    let statoverride = entry("/var/lib/dpkg/statoverride");
    assert!(statoverride.contains("file 0644 0:0"), "{statoverride}");
    // dpkg's own reader of the database agrees with what was written.
    let layout = dir.join("out");
    let rootfs = tmp.path().join("rootfs");
    let unpacked = std::process::Command::new("umoci")
        .args(["raw", "unpack", "--rootless", "--image"])
        .arg(format!("{}:app", layout.display()))
        .arg(&rootfs)
        .output();
    if let Ok(out) = &unpacked
        && out.status.success()
    {
        let list = std::process::Command::new("dpkg-statoverride")
            .arg("--root")
            .arg(&rootfs)
            .arg("--list")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&list.stdout),
            "root svc 4750 /usr/bin/svc-helper\n",
            "{}",
            String::from_utf8_lossy(&list.stderr)
        );
    } else if std::env::var_os("CI").is_some() {
        panic!("{test}: umoci cannot unpack the image: {unpacked:?}");
    } else {
        eprintln!("SKIPPED {test} (the dpkg-statoverride part): umoci cannot unpack the image");
    }
}
