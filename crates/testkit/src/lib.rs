//! Helpers the test suites share (a dev-dependency only): what several test
//! binaries used to write each for itself. Reading is done with independent
//! code (the `tar` crate, plain JSON), never with strata's own readers, so a
//! test that checks strata's output does not trust strata to read it.
//!
//! Invariant: nothing here is used by a product crate; every helper panics
//! with what it was reading when the bytes are not what a test expects.

use std::io::Read;
use std::path::Path;

/// (path, header, content) of every entry of the tar at `path`, in order.
pub fn tar_entries(path: &Path) -> Vec<(String, tar::Header, Vec<u8>)> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut archive = tar::Archive::new(file);
    archive
        .entries()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| {
            let mut e = e.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut content = Vec::new();
            e.read_to_end(&mut content)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = String::from_utf8(e.path_bytes().to_vec())
                .unwrap_or_else(|_| panic!("{}: a name that is not UTF-8", path.display()));
            (name, e.header().clone(), content)
        })
        .collect()
}

/// (tag, manifest digest) of each manifest in a layout's `index.json`, in
/// the index's order; an untagged manifest has an empty tag.
pub fn index_digests(layout: &Path) -> Vec<(String, String)> {
    let path = layout.join("index.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let index: serde_json::Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no manifests array", path.display()))
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                m["digest"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// A Debian repository made by the test, as the real tools make one:
/// packages built with `dpkg-deb`, indexes with `apt-ftparchive`, and an
/// `InRelease` signed by a key `gpg` makes in a home of the test's own.
pub mod debrepo {
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// What the package tests share, all under one directory: `repo/`,
    /// the repository (`.deb`s built into its pool with [`build_deb`]),
    /// `gnupg/`, the home of the key that signs it, `spec/`, where specs
    /// are written beside the public key (`test.gpg`), and `cache/`.
    pub struct SignedRepo {
        pub root: PathBuf,
        pub gnupg: PathBuf,
        pub dir: PathBuf,
        pub cache: PathBuf,
    }

    impl SignedRepo {
        /// The layout under `base` (a test's temporary directory); the
        /// spec directory is made, the rest when it is first written.
        pub fn at(base: &Path) -> SignedRepo {
            let repo = SignedRepo {
                root: base.join("repo"),
                gnupg: base.join("gnupg"),
                dir: base.join("spec"),
                cache: base.join("cache"),
            };
            fs::create_dir_all(&repo.dir).unwrap();
            repo
        }

        /// Indexes and signs the pool ([`index_and_sign`]) and puts the
        /// public key beside the specs as `test.gpg`; returns the key.
        pub fn publish(&self) -> Vec<u8> {
            let key = index_and_sign(&self.root, &self.gnupg);
            fs::write(self.dir.join("test.gpg"), &key).unwrap();
            key
        }

        /// The spec line naming the repository, `test`, with `extra`
        /// options after its own, and a newline.
        pub fn repository(&self, extra: &str) -> String {
            format!(
                "repository test url=\"file://{}\" suite=\"stable\" keyring=\"test.gpg\"{extra}\n",
                self.root.display()
            )
        }

        /// Writes `spec/NAME`: the repository line, then `images`.
        pub fn write_spec(&self, name: &str, images: &str) -> PathBuf {
            let path = self.dir.join(name);
            fs::write(&path, format!("{}{images}", self.repository(""))).unwrap();
            path
        }
    }

    /// Whether the tools that make a signed repository are installed;
    /// says SKIPPED for `test` when one is not, and panics under `CI`,
    /// which must have them.
    pub fn have_tools(test: &str) -> bool {
        for tool in ["gpg", "dpkg-deb", "apt-ftparchive", "xz"] {
            let ok = Command::new(tool)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success());
            if !ok {
                if std::env::var_os("CI").is_some() {
                    panic!("{test}: {tool} is missing, and CI must have it");
                }
                eprintln!("SKIPPED {test}: {tool} is not installed");
                return false;
            }
        }
        true
    }

    /// The command's stdout; a panic naming it and its stderr when it fails.
    pub fn run(cmd: &mut Command) -> Vec<u8> {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Builds `NAME_VERSION_ARCH.deb` into `root/pool/main`, holding
    /// `/usr/share/NAME/VERSION` and its md5sums (as `dh_md5sums` writes
    /// them: `dpkg --audit` wants them); `extra` are more control lines.
    pub fn build_deb(root: &Path, name: &str, version: &str, arch: &str, extra: &[&str]) {
        build_deb_with(root, name, version, arch, extra, &[]);
    }

    /// [`build_deb`], with more entries in its data: `(PATH, CONTENT)`, a
    /// file, or a symlink to `TARGET` when `CONTENT` is `-> TARGET`; a
    /// `DEBIAN/NAME` path is a control member (a script, made executable).
    pub fn build_deb_with(
        root: &Path,
        name: &str,
        version: &str,
        arch: &str,
        extra: &[&str],
        files: &[(&str, &str)],
    ) {
        let dir = root.join("build").join(format!("{name}_{version}"));
        for (path, content) in files {
            let at = dir.join(path.trim_start_matches('/'));
            fs::create_dir_all(at.parent().unwrap()).unwrap();
            match content.strip_prefix("-> ") {
                Some(target) => std::os::unix::fs::symlink(target, &at).unwrap(),
                None => fs::write(&at, content).unwrap(),
            }
            // Maintainer scripts must be executable for dpkg-deb.
            if path.starts_with("DEBIAN/") {
                let mut perms = fs::metadata(&at).unwrap().permissions();
                std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
                fs::set_permissions(&at, perms).unwrap();
            }
        }
        fs::create_dir_all(dir.join("DEBIAN")).unwrap();
        fs::create_dir_all(dir.join("usr/share").join(name)).unwrap();
        fs::write(
            dir.join("usr/share").join(name).join(version),
            format!("{name} {version}\n"),
        )
        .unwrap();
        let mut control = format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: t <t@example.invalid>\nPriority: optional\nDescription: test package {name}\n"
        );
        for l in extra {
            control.push_str(l);
            control.push('\n');
        }
        fs::write(dir.join("DEBIAN/control"), control).unwrap();
        let sums = run(Command::new("sh")
            .args(["-c", "find usr -type f | sort | xargs md5sum"])
            .current_dir(&dir));
        fs::write(dir.join("DEBIAN/md5sums"), sums).unwrap();
        fs::create_dir_all(root.join("pool/main")).unwrap();
        run(Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&dir)
            .arg(root.join(format!("pool/main/{name}_{version}_{arch}.deb"))));
    }

    /// `gpg --batch --quiet ARGS` in the home `gnupg`.
    fn gpg(gnupg: &Path, args: &[&std::ffi::OsStr]) -> Vec<u8> {
        run(Command::new("gpg")
            .env("GNUPGHOME", gnupg)
            .args(["--batch", "--quiet"])
            .args(args))
    }

    /// (Re)signs `dists/stable/Release` into `InRelease`.
    pub fn sign(root: &Path, gnupg: &Path) {
        let inrelease = root.join("dists/stable/InRelease");
        let _ = fs::remove_file(&inrelease);
        let release = root.join("dists/stable/Release");
        gpg(
            gnupg,
            &[
                "--clearsign".as_ref(),
                "-o".as_ref(),
                inrelease.as_os_str(),
                release.as_os_str(),
            ],
        );
    }

    /// Writes the indexes of suite `stable` (component `main`, amd64) for
    /// the pool, makes a signing key in `gnupg` if it has none, signs the
    /// `InRelease`, and returns the exported public key.
    pub fn index_and_sign(root: &Path, gnupg: &Path) -> Vec<u8> {
        let bin = root.join("dists/stable/main/binary-amd64");
        fs::create_dir_all(&bin).unwrap();
        let packages = run(Command::new("apt-ftparchive")
            .args(["packages", "pool"])
            .current_dir(root));
        fs::write(bin.join("Packages"), packages).unwrap();
        let _ = fs::remove_file(bin.join("Packages.xz"));
        run(Command::new("xz").arg(bin.join("Packages")));
        let release = run(Command::new("apt-ftparchive")
            .args([
                "-o",
                "APT::FTPArchive::Release::Suite=stable",
                "-o",
                "APT::FTPArchive::Release::Codename=test",
                "-o",
                "APT::FTPArchive::Release::Architectures=amd64",
                "-o",
                "APT::FTPArchive::Release::Components=main",
                "release",
                ".",
            ])
            .current_dir(root.join("dists/stable")));
        fs::write(root.join("dists/stable/Release"), release).unwrap();
        if !gnupg.join("pubring.kbx").exists() {
            fs::create_dir_all(gnupg).unwrap();
            let mut perms = fs::metadata(gnupg).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
            fs::set_permissions(gnupg, perms).unwrap();
            let args = [
                "--passphrase",
                "",
                "--quick-gen-key",
                "strata test <t@example.invalid>",
                "ed25519",
                "sign",
                "never",
            ];
            gpg(gnupg, &args.map(std::ffi::OsStr::new));
        }
        sign(root, gnupg);
        gpg(gnupg, &["--export".as_ref()])
    }
}
