//! What maintainer scripts' `chown`, `chmod`, `mkdir` and
//! `dpkg-statoverride --add` do, done without running them (issue 18): the
//! image has the owners and modes `apt-get install` would leave, by the
//! names of the users the packages' `sysusers.d` files and base-passwd
//! give. Offline, from a repository the test makes and signs itself. The
//! same effects on the real tomcat10 are checked against `apt-get install`
//! in Docker by `tomcat_debian.rs`.

use std::fs;

use strata_testkit::debrepo::{SignedRepo, build_deb_with, have_tools};

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
        # A symbolic mode, from the file's own; an unknown word is not
        # recognized, so not done.
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
    let repo = SignedRepo::at(tmp.path());
    let (root, cache, dir) = (repo.root.clone(), repo.cache.clone(), repo.dir.clone());
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
    repo.publish();
    fs::write(
        dir.join("app.kdl"),
        format!(
            "{}image app {{\n    layer base {{ packages \"base-passwd\" }}\n    layer svc {{ packages \"svc\" }}\n}}\n",
            repo.repository("")
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
        ("/etc/svc/untouched", "file 0664 0:0"),
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

const WEB_POSTINST: &str = r#"#!/bin/sh
set -e
case "$1" in
    configure)
        touch /var/log/web/access.log /var/log/web/error.log
        : > /var/lib/web/state
        echo "ready" > /etc/web/status
        if [ ! -d /var/www/html ]; then
            cp -r /usr/share/web/default /var/www/html
        fi
        chmod -R g+w,o-rwx /var/lib/web
        chmod u+x /usr/share/web/tool
        umask 077
        touch /var/lib/web/secret
        if dpkg --compare-versions "$2" lt-nl 2.0; then
            touch /var/lib/web/upgraded
        fi
    ;;
    triggered)
        touch /var/lib/web/triggered
    ;;
esac
"#;

#[test]
fn touch_redirections_cp_and_symbolic_chmod_of_postinsts_are_in_the_image() {
    let test = "touch_redirections_cp_and_symbolic_chmod_of_postinsts_are_in_the_image";
    if !have_tools(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = SignedRepo::at(tmp.path());
    build_deb_with(
        &repo.root,
        "web",
        "1.0",
        "amd64",
        &[],
        &[
            ("DEBIAN/postinst", WEB_POSTINST),
            ("var/log/web/.keep", ""),
            ("var/lib/web/data", "d\n"),
            ("etc/web/web.conf", "c\n"),
            ("usr/share/web/default/index.html", "<p>hi</p>\n"),
            ("usr/share/web/default/sub/a.txt", "a\n"),
            ("usr/share/web/tool", "#!/bin/sh\n"),
        ],
    );
    repo.publish();
    repo.write_spec(
        "web.kdl",
        "image web {\n    layer web { packages \"web\" }\n}\n",
    );
    strata_ok(
        &repo.dir,
        &repo.cache,
        &["compose", "web.kdl", "-o", "out", "-q"],
    );
    let files = strata_ok(&repo.dir, &repo.cache, &["inspect", "out:web", "--files"]);
    let entry = |path: &str| -> Option<String> {
        files
            .lines()
            .map(str::trim)
            .rfind(|l| l.starts_with(&format!("{path} ")))
            .map(str::to_owned)
    };
    for (path, meta) in [
        ("/var/log/web/access.log", "file 0644 0:0 0 "),
        ("/var/log/web/error.log", "file 0644 0:0 0 "),
        // Made, then `chmod -R g+w,o-rwx` of its directory.
        ("/var/lib/web/state", "file 0660 0:0 0 "),
        ("/var/lib/web/", "dir 0770 0:0"),
        ("/var/lib/web/data", "file 0660 0:0"),
        ("/etc/web/status", "file 0644 0:0 6 "),
        ("/var/www/html/", "dir 0755 0:0"),
        ("/var/www/html/index.html", "file 0644 0:0 10 "),
        ("/var/www/html/sub/a.txt", "file 0644 0:0 2 "),
        ("/usr/share/web/tool", "file 0744 0:0"),
        // After `umask 077`.
        ("/var/lib/web/secret", "file 0600 0:0 0 "),
    ] {
        let line = entry(path).unwrap_or_else(|| panic!("{path} is not in the image:\n{files}"));
        assert!(line.contains(meta), "{path}: want {meta}, got {line}");
    }
    // An upgrade's and a trigger's commands are not a fresh install's.
    for path in ["/var/lib/web/upgraded", "/var/lib/web/triggered"] {
        assert!(entry(path).is_none(), "{path} is in the image:\n{files}");
    }
}
