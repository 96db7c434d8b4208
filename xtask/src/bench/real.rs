//! `cargo xtask bench --only real` and `--only scale` (issue 20).
//!
//! `real`: the seed's tomcat made of real Debian bytes. A debootstrap
//! bookworm minbase rootfs tar (the one the tests make under
//! `target/test-inputs/`, else made here with debootstrap from the host's
//! apt sources), the JRE (`openjdk-17-jre-headless`) and tomcat10
//! (`tomcat10`, `tomcat10-common`, `libtomcat10-java`) as tarballs of their
//! packages' trees (fetched with `apt-get download`, so from the host's
//! configured sources, and unpacked with `dpkg-deb -x`), and one JSP; cached
//! under `target/bench-real/`. Where the sources are unreachable it says so
//! and skips. Side by side, every repetition interleaving them: strata cold
//! gzip, cold zstd, warm no-op and one-file change; BuildKit (`docker build`
//! with `DOCKER_BUILDKIT=1`, into Docker's store, uncompressed) cold, warm
//! and one-file change; `buildah bud --layers` plus a push to an OCI
//! directory, the same three; `umoci repack` of the unpacked tree; and the
//! compressor limits on the concatenated tars: `libdeflate-gzip -4` (one
//! core; the two-core limit is half of it), `pigz -4 -p2`, `zstd -3 -T2`,
//! and `sha256sum` alone (reading and hashing).
//!
//! `scale`: generated, no network. (1) Specs of 50 and 200 images that share
//! a base rootfs (a generated tar of 10,000 files) and, each, a library set
//! shared with a tenth of the images, an application tree of its own (100
//! files) and a config file: cold and warm composes, peak RSS and stored
//! bytes (the distinct layers' sizes), against the spec's input bytes.
//! (2) Rootfs tars of 250,000 and 1,000,000 small files: a cold compose
//! each, peak RSS and stored bytes. The growth shows in the MB/s column and
//! the ratios.

use super::*;

/// Debian packages whose trees make the JRE and tomcat tarballs.
const JRE_PKGS: &[&str] = &["openjdk-17-jre-headless"];
const TOMCAT_PKGS: &[&str] = &["tomcat10", "tomcat10-common", "libtomcat10-java"];

const JSP: &str = "<%@ page contentType=\"text/plain\" %>strata-jsp-<%= 6 * 7 %>\n";

const REAL_SPEC: &str = "// cargo xtask bench: the seed's tomcat, of real Debian bytes\n\
compression \"COMPRESSION\"\n\
image tomcat {\n\
\x20   rootfs \"minbase.tar\"\n\
\x20   layer jre { add \"jre.tar\" to=\"/\" }\n\
\x20   layer tomcat { add \"tomcat.tar\" to=\"/\" }\n\
\x20   layer webapp { copy \"index.jsp\" to=\"/var/lib/tomcat10/webapps/ROOT/\" mode=0o644 }\n\
\x20   cmd \"/usr/share/tomcat10/bin/catalina.sh\" \"run\"\n\
}\n";

const DOCKERFILE: &str = "FROM scratch\n\
ADD minbase.tar /\n\
ADD jre.tar /\n\
ADD tomcat.tar /\n\
COPY index.jsp /var/lib/tomcat10/webapps/ROOT/\n\
CMD [\"/usr/share/tomcat10/bin/catalina.sh\", \"run\"]\n";

/// Names of the images and containers this bench makes in Docker and
/// buildah, its own so that it never touches anybody else's.
const IMAGE: &str = "strata-bench-real";

/// Samples per repetition of the few-millisecond rows (warm no-op, one file
/// changed), for strata and BuildKit alike: one sample of a few
/// milliseconds on a shared machine is mostly scheduler noise, and the
/// median of five is not.
const QUICK_SAMPLES: usize = 5;

/// The host's Debian mirror (see [`strata::packages::host_debian_mirror`]).
fn host_mirror() -> Option<String> {
    strata::packages::host_debian_mirror()
}

fn sh(script: &str) -> Result<()> {
    let st = Command::new("bash")
        .args(["-o", "pipefail", "-c", script])
        .stdout(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("`{script}` failed ({st})");
    }
    Ok(())
}

/// The tar of the packages' trees, made once.
fn packages_tar(dir: &Path, name: &str, pkgs: &[&str]) -> Result<()> {
    let tar = dir.join(format!("{name}.tar"));
    if tar.exists() {
        return Ok(());
    }
    let work = dir.join(format!("{name}.work"));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(work.join("root"))?;
    // apt-get download of the host's sources; a short timeout, so that an
    // unreachable mirror is a skip and not a hang.
    sh(&format!(
        "cd '{}' && apt-get -q -o Acquire::http::Timeout=15 -o Acquire::Retries=0 download {} 2>&1",
        work.display(),
        pkgs.join(" ")
    ))?;
    sh(&format!(
        "cd '{0}' && for d in *.deb; do dpkg-deb -x \"$d\" root; done && {TAR} -C root -cf '{1}.part' . && mv '{1}.part' '{1}'",
        work.display(),
        tar.display()
    ))?;
    fs::remove_dir_all(&work)?;
    Ok(())
}

/// The corpus under `target/bench-real/ctx` (the build context of every
/// tool), or why it cannot be made.
fn real_corpus(root: &Path) -> Result<std::result::Result<PathBuf, String>> {
    let dir = root.join("target/bench-real");
    let ctx = dir.join("ctx");
    fs::create_dir_all(&ctx)?;
    let minbase = ctx.join("minbase.tar");
    if !minbase.exists() {
        let tested = root.join("target/test-inputs/bookworm-minbase.tar");
        if tested.is_file() {
            fs::hard_link(&tested, &minbase)
                .or_else(|_| fs::copy(&tested, &minbase).map(|_| ()))?;
        } else {
            let Some(mirror) = host_mirror() else {
                return Ok(Err("the host's apt sources name no Debian mirror".into()));
            };
            if !have("debootstrap") {
                return Ok(Err("debootstrap is not installed".into()));
            }
            let rootfs = dir.join("minbase.work");
            let _ = fs::remove_dir_all(&rootfs);
            let made = sh(&format!(
                "debootstrap --variant=minbase bookworm '{}' '{mirror}' >/dev/null && \
                 {TAR} -C '{0}' -cf '{1}.part' . && mv '{1}.part' '{1}'",
                rootfs.display(),
                minbase.display()
            ));
            let _ = fs::remove_dir_all(&rootfs);
            if made.is_err() {
                return Ok(Err(
                    "the host's Debian mirror is unreachable (debootstrap failed)".into(),
                ));
            }
        }
    }
    for (name, pkgs) in [("jre", JRE_PKGS), ("tomcat", TOMCAT_PKGS)] {
        if packages_tar(&ctx, name, pkgs).is_err() {
            return Ok(Err(format!(
                "the host's Debian sources are unreachable (apt-get download {} failed)",
                pkgs.join(" ")
            )));
        }
    }
    fs::write(ctx.join("index.jsp"), JSP)?;
    fs::write(ctx.join("Dockerfile"), DOCKERFILE)?;
    fs::write(ctx.join(".dockerignore"), "*.kdl\n")?;
    for c in ["gzip", "zstd"] {
        fs::write(
            ctx.join(format!("tomcat-{c}.kdl")),
            REAL_SPEC.replace("COMPRESSION", c),
        )?;
    }
    // The three tars as one stream, for the compressor limits.
    let all = dir.join("all.tar");
    if !all.exists() {
        sh(&format!(
            "cat '{0}/minbase.tar' '{0}/jre.tar' '{0}/tomcat.tar' > '{1}.part' && mv '{1}.part' '{1}'",
            ctx.display(),
            all.display()
        ))?;
    }
    // The image's tree unpacked, for umoci.
    let tree = dir.join("tree");
    if !tree.exists() {
        let part = dir.join("tree.part");
        let _ = fs::remove_dir_all(&part);
        fs::create_dir_all(&part)?;
        for t in ["minbase", "jre", "tomcat"] {
            sh(&format!(
                "tar --numeric-owner -xpf '{}/{t}.tar' -C '{}'",
                ctx.display(),
                part.display()
            ))?;
        }
        fs::rename(&part, &tree)?;
    }
    Ok(Ok(ctx))
}

impl Bench {
    pub(super) fn real(&mut self, root: &Path) -> Result<()> {
        let ctx = match real_corpus(root)? {
            Ok(ctx) => ctx,
            Err(why) => {
                self.note(&format!("real: skipped: {why}"));
                return Ok(());
            }
        };
        let dir = ctx.parent().expect("under target/bench-real").to_path_buf();
        let all = dir.join("all.tar");
        let bytes = fs::metadata(&all)?.len();
        self.corpora
            .push(json!({"name": "real", "bytes": bytes, "spec": ctx.join("tomcat-gzip.kdl")}));
        eprintln!(
            "bench: real: {:.0} MB of tar, {} repetitions",
            bytes as f64 / 1e6,
            self.reps
        );
        let docker = Path::new("/usr/bin/docker").exists()
            && Command::new("/usr/bin/docker")
                .args(["info", "--format", "{{.ID}}"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        if !docker {
            self.note("real: no Docker daemon answers: no BuildKit rows");
        }
        let buildah = have("buildah");
        if !buildah {
            self.note("real: buildah is not installed: no buildah rows");
        }
        // libdeflate-gzip answers -V, not --version.
        let libdeflate = Command::new("libdeflate-gzip")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !libdeflate {
            self.note("real: libdeflate-gzip is not installed (apt-get install libdeflate-tools)");
        }
        let jsp = ctx.join("index.jsp");
        let gz_spec = ctx.join("tomcat-gzip.kdl");
        let zst_spec = ctx.join("tomcat-zstd.kdl");
        // Warm the page cache.
        sh(&format!("cat '{}' > /dev/null", all.display()))?;
        let all_s = all.display().to_string();
        let limits: [(&str, &str, String); 4] = [
            (
                "libdeflate-gzip -4 (one core)",
                "libdeflate-gzip",
                format!("libdeflate-gzip -4 -c '{all_s}'"),
            ),
            ("pigz -4 -p2", "pigz", format!("pigz -4 -p2 -c '{all_s}'")),
            (
                "zstd -3 -T2",
                "zstd",
                format!("zstd -q -3 -T2 -c '{all_s}'"),
            ),
            ("cat (read alone)", "cat", format!("cat '{all_s}'")),
        ];
        let buildah_store = dir.join("buildah-store");
        let buildah_cmd = format!(
            "buildah --root '{0}/root' --runroot /tmp/{IMAGE}-run --storage-driver vfs",
            buildah_store.display()
        );
        let buildah_build = format!(
            "{buildah_cmd} bud --layers --quiet -t {IMAGE} -f '{0}/Dockerfile' '{0}' > /dev/null && \
             rm -rf '{1}/buildah-oci' && {buildah_cmd} push --quiet {IMAGE} 'oci:{1}/buildah-oci:latest'",
            ctx.display(),
            dir.display()
        );
        let docker_build = |no_cache: bool| {
            format!(
                "DOCKER_BUILDKIT=1 /usr/bin/docker build --quiet {} -t {IMAGE}:latest '{}' > /dev/null",
                if no_cache { "--no-cache" } else { "" },
                ctx.display()
            )
        };
        let original = fs::read(&jsp)?;
        for rep in 0..self.reps {
            eprintln!("bench: real: repetition {}", rep + 1);
            // strata: cold gzip, warm no-op, one-file change; cold zstd.
            let cache = self.fresh("cache")?;
            let cold = self.compose(&gz_spec, &cache, false)?;
            if cold.hits != 0 {
                bail!("a cold compose hit the cache");
            }
            self.add("real", "strata compose, cold, gzip", bytes, cold.sample);
            for _ in 0..QUICK_SAMPLES {
                let warm = self.compose(&gz_spec, &cache, true)?;
                if warm.hits != warm.layers {
                    bail!("the warm compose missed the cache");
                }
                self.add("real", "strata compose, warm no-op", bytes, warm.sample);
            }
            for i in 0..QUICK_SAMPLES {
                fs::write(&jsp, format!("{JSP}<!-- change {rep}.{i} -->\n"))?;
                let change = self.compose(&gz_spec, &cache, true);
                fs::write(&jsp, &original)?;
                let change = change?;
                if change.layers - change.hits != 1 {
                    bail!(
                        "a one-file change rebuilt {} layers",
                        change.layers - change.hits
                    );
                }
                self.add(
                    "real",
                    "strata compose, one file changed",
                    bytes,
                    change.sample,
                );
            }
            let zst = self.cold(&zst_spec)?;
            self.add("real", "strata compose, cold, zstd", bytes, zst.sample);
            // BuildKit, into Docker's store.
            if docker {
                let s = self.shell(&docker_build(true))?;
                self.add("real", "BuildKit docker build, cold (--no-cache)", bytes, s);
                for _ in 0..QUICK_SAMPLES {
                    let s = self.shell(&docker_build(false))?;
                    self.add("real", "BuildKit docker build, warm no-op", bytes, s);
                }
                for i in 0..QUICK_SAMPLES {
                    fs::write(&jsp, format!("{JSP}<!-- change {rep}.{i} -->\n"))?;
                    let s = self.shell(&docker_build(false));
                    fs::write(&jsp, &original)?;
                    self.add("real", "BuildKit docker build, one file changed", bytes, s?);
                }
                let _ = Command::new("/usr/bin/docker")
                    .args(["rmi", "-f", &format!("{IMAGE}:latest")])
                    .output();
            }
            // buildah bud + push to an OCI directory.
            if buildah {
                let _ = sh(&format!("{buildah_cmd} rmi -a -f > /dev/null 2>&1"));
                let _ = fs::remove_dir_all(&buildah_store);
                let mut s = self.shell(&buildah_build)?;
                s.out_bytes = dir_bytes(&dir.join("buildah-oci/blobs/sha256"));
                self.add("real", "buildah bud + push oci:, cold", bytes, s);
                let s = self.shell(&buildah_build)?;
                self.add("real", "buildah bud + push oci:, warm no-op", bytes, s);
                fs::write(&jsp, format!("{JSP}<!-- change {rep} -->\n"))?;
                let s = self.shell(&buildah_build);
                fs::write(&jsp, &original)?;
                self.add(
                    "real",
                    "buildah bud + push oci:, one file changed",
                    bytes,
                    s?,
                );
            }
            if have("umoci") {
                let s = self.umoci_root(&dir.join("tree"))?;
                self.add("real", "umoci repack (gzip)", bytes, s);
            }
            for (label, tool, script) in &limits {
                let usable = if *tool == "libdeflate-gzip" {
                    libdeflate
                } else {
                    have(tool)
                };
                if !usable {
                    continue;
                }
                let mut s = self.shell(&format!("{script} | sha256sum"))?;
                if rep == 0 && *tool != "cat" {
                    s.out_bytes = Some(self.shell_size(script)?);
                }
                self.add("real", label, bytes, s);
            }
        }
        if buildah {
            let _ = sh(&format!("{buildah_cmd} rmi -a -f > /dev/null 2>&1"));
            let _ = fs::remove_dir_all(&buildah_store);
            let _ = fs::remove_dir_all(dir.join("buildah-oci"));
        }
        let m = |b: &Bench, row: &str| b.median("real", row);
        let gz = m(self, "strata compose, cold, gzip");
        // Two cores of libdeflate: half its one-core time.
        let deflate2 = m(self, "libdeflate-gzip -4 (one core)").map(|(w, c)| (w / 2.0, c));
        self.ratio(
            "real: strata cold gzip / libdeflate -4 on two cores (half its one-core time)",
            gz,
            deflate2,
            Some(("<=", 1.2)),
        );
        let pigz = m(self, "pigz -4 -p2");
        self.ratio("real: strata cold gzip / pigz -4 -p2", gz, pigz, None);
        let zst = m(self, "strata compose, cold, zstd");
        let zstd = m(self, "zstd -3 -T2");
        self.ratio(
            "real: strata cold zstd / zstd -3 -T2",
            zst,
            zstd,
            Some(("<=", 1.2)),
        );
        for (ours, theirs, target) in [
            (
                "strata compose, cold, gzip",
                "BuildKit docker build, cold (--no-cache)",
                1.0 / 3.0,
            ),
            (
                "strata compose, warm no-op",
                "BuildKit docker build, warm no-op",
                0.05,
            ),
            (
                "strata compose, one file changed",
                "BuildKit docker build, one file changed",
                0.05,
            ),
            (
                "strata compose, cold, gzip",
                "buildah bud + push oci:, cold",
                1.0,
            ),
            (
                "strata compose, warm no-op",
                "buildah bud + push oci:, warm no-op",
                1.0,
            ),
            (
                "strata compose, one file changed",
                "buildah bud + push oci:, one file changed",
                1.0,
            ),
            ("strata compose, cold, gzip", "umoci repack (gzip)", 1.0),
        ] {
            let target = (target < 1.0).then_some(("<=", target));
            self.ratio(
                &format!("real: {ours} / {theirs}"),
                m(self, ours),
                m(self, theirs),
                target,
            );
        }
        let size = |b: &Bench, row: &str| {
            b.rows
                .iter()
                .find(|r| r.corpus == "real" && r.name == row)
                .and_then(Row::out_bytes)
        };
        for den in [
            "libdeflate-gzip -4 (one core)",
            "pigz -4 -p2",
            "umoci repack (gzip)",
            "buildah bud + push oci:, cold",
        ] {
            if let (Some(n), Some(d)) = (size(self, "strata compose, cold, gzip"), size(self, den))
            {
                self.ratios.push(Ratio {
                    name: format!("real: output size, strata gzip / {den}"),
                    value: n as f64 / d as f64,
                    cpu: None,
                    target: None,
                });
            }
        }
        Ok(())
    }

    /// `umoci repack` of a bundle whose rootfs is `tree` (set up untimed).
    fn umoci_root(&self, tree: &Path) -> Result<Sample> {
        let w = self.fresh("umoci")?;
        let layout = w.join("layout");
        let bundle = w.join("bundle");
        sh(&format!(
            "umoci init --layout '{0}' && umoci new --image '{0}:base' && umoci unpack --image '{0}:base' '{1}' && cp -a '{2}/.' '{1}/rootfs/'",
            layout.display(),
            bundle.display(),
            tree.display()
        ))?;
        let mut cmd = Command::new("umoci");
        cmd.args(["repack", "--image"])
            .arg(format!("{}:new", layout.display()))
            .arg(&bundle);
        let mut s = self.timed(cmd)?;
        s.out_bytes = largest_file(&layout.join("blobs/sha256"))?;
        fs::remove_dir_all(&w)?;
        Ok(s)
    }

    pub(super) fn scale(&mut self, root: &Path, quick: bool) -> Result<()> {
        let dir = root.join("target/bench-scale");
        fs::create_dir_all(&dir)?;
        let mut rng = Rng::new("scale");
        let base = dir.join("base.tar");
        if !base.exists() {
            let files: Vec<(String, Vec<u8>)> = (0..10_000)
                .map(|i| {
                    let len = rng.range(200, 12_000) as usize;
                    let mut data = Vec::new();
                    fill(&mut rng, Kind::Text, &mut data, len);
                    (format!("usr/share/base/d{:03}/f{i:05}", i / 100), data)
                })
                .collect();
            write_tar(&base, files.iter().map(|(n, d)| (n.as_str(), d.as_slice())))?;
        }
        for i in 0..200 {
            let app = dir.join(format!("apps/app-{i:03}"));
            if !app.exists() {
                let part = dir.join("apps/part");
                let _ = fs::remove_dir_all(&part);
                fs::create_dir_all(&part)?;
                for f in 0..100 {
                    let len = rng.range(500, 8_000) as usize;
                    put(
                        &mut rng,
                        &part.join(format!("m{f:03}.py")),
                        Kind::Text,
                        len,
                        false,
                    )?;
                }
                fs::rename(&part, &app)?;
            }
        }
        for s in 0..20 {
            let libs = dir.join(format!("libs/set-{s:02}"));
            if !libs.exists() {
                let part = dir.join("libs/part");
                let _ = fs::remove_dir_all(&part);
                fs::create_dir_all(&part)?;
                for f in 0..300 {
                    let len = rng.range(2_000, 40_000) as usize;
                    let kind = if f % 3 == 0 {
                        Kind::Random
                    } else {
                        Kind::Binary
                    };
                    put(
                        &mut rng,
                        &part.join(format!("lib{f:03}.so")),
                        kind,
                        len,
                        true,
                    )?;
                }
                fs::rename(&part, &libs)?;
            }
        }
        let counts: &[usize] = if quick { &[20, 50] } else { &[50, 200] };
        let mut specs = Vec::new();
        for &n in counts {
            let mut spec = String::from(
                "// cargo xtask bench: many images on one base\nimage base { rootfs \"base.tar\" }\n",
            );
            let mut bytes = fs::metadata(&base)?.len();
            let mut sets = std::collections::BTreeSet::new();
            for i in 0..n {
                let set = i % (n / 10).max(1);
                sets.insert(set);
                bytes += tree_size(&dir.join(format!("apps/app-{i:03}")))?.0;
                spec.push_str(&format!(
                    "image app-{i:03} {{\n    from base\n    layer libs {{ copy \"libs/set-{set:02}\" to=\"/opt/libs/\" }}\n    layer app {{ copy \"apps/app-{i:03}\" to=\"/opt/app/\" }}\n    layer cfg {{ file \"/etc/app.conf\" \"name = app-{i:03}\\n\" }}\n}}\n"
                ));
            }
            for set in sets {
                bytes += tree_size(&dir.join(format!("libs/set-{set:02}")))?.0;
            }
            let path = dir.join(format!("images-{n}.kdl"));
            fs::write(&path, spec)?;
            specs.push((format!("{n} images"), path, bytes));
        }
        let entry_counts: &[u64] = if quick {
            &[25_000, 100_000]
        } else {
            &[250_000, 1_000_000]
        };
        for &n in entry_counts {
            let tar = dir.join(format!("files-{n}.tar"));
            if !tar.exists() {
                write_many_tar(&tar, n)?;
            }
            let path = dir.join(format!("files-{n}.kdl"));
            fs::write(
                &path,
                format!(
                    "// cargo xtask bench: a rootfs of {n} small files\nlimits max-entries={}\nimage many {{ rootfs \"files-{n}.tar\" }}\n",
                    n * 2
                ),
            )?;
            specs.push((format!("{n} files"), path, fs::metadata(&tar)?.len()));
        }
        for (name, _, bytes) in &specs {
            self.corpora
                .push(json!({"name": format!("scale: {name}"), "bytes": bytes}));
        }
        for rep in 0..self.reps.min(2) {
            eprintln!("bench: scale: repetition {}", rep + 1);
            for (name, spec, bytes) in &specs {
                let cache = self.fresh("cache")?;
                let cold = self.compose(spec, &cache, false)?;
                self.add("scale", &format!("{name}: cold"), *bytes, cold.sample);
                let warm = self.compose(spec, &cache, true)?;
                if warm.hits != warm.layers {
                    bail!("the warm compose of {} missed the cache", spec.display());
                }
                self.add("scale", &format!("{name}: warm no-op"), *bytes, warm.sample);
            }
        }
        // Growth: time and RSS per input byte, largest over smallest.
        for pair in specs.chunks(2) {
            let [(small, _, sb), (large, _, lb)] = pair else {
                continue;
            };
            for what in ["cold", "warm no-op"] {
                let (s, l) = (
                    self.median("scale", &format!("{small}: {what}")),
                    self.median("scale", &format!("{large}: {what}")),
                );
                if let (Some(s), Some(l)) = (s, l) {
                    self.ratios.push(Ratio {
                        name: format!(
                            "scale: {what} time per input byte, {large} / {small} (input x{:.1})",
                            *lb as f64 / *sb as f64
                        ),
                        value: (l.0 / *lb as f64) / (s.0 / *sb as f64),
                        // CPU seconds per input byte likewise: less
                        // disturbed by the other work of a shared machine.
                        cpu: (s.1 > 0.0).then(|| (l.1 / *lb as f64) / (s.1 / *sb as f64)),
                        target: None,
                    });
                }
            }
            let rss = |b: &Bench, n: &str| {
                b.rows
                    .iter()
                    .find(|r| r.corpus == "scale" && r.name == format!("{n}: cold"))
                    .and_then(Row::peak_rss)
            };
            if let (Some(s), Some(l)) = (rss(self, small), rss(self, large)) {
                self.ratios.push(Ratio {
                    name: format!("scale: cold peak RSS, {large} / {small}"),
                    value: l as f64 / s as f64,
                    cpu: None,
                    target: None,
                });
            }
        }
        Ok(())
    }
}

/// Bytes of the files directly in `dir`.
fn dir_bytes(dir: &Path) -> Option<u64> {
    let rd = fs::read_dir(dir).ok()?;
    Some(
        rd.flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum(),
    )
}

/// A ustar archive of `files` (parents first, sorted), mtime 0, root-owned.
fn write_tar<'a>(path: &Path, files: impl Iterator<Item = (&'a str, &'a [u8])>) -> Result<()> {
    let part = path.with_extension("part");
    let mut b = tar::Builder::new(BufWriter::new(fs::File::create(&part)?));
    let mut dirs = std::collections::BTreeSet::new();
    for (name, data) in files {
        let mut parent = String::new();
        for c in name
            .split('/')
            .rev()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            parent.push_str(c);
            parent.push('/');
            if dirs.insert(parent.clone()) {
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_mtime(0);
                b.append_data(&mut h, &parent, std::io::empty())?;
            }
        }
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, name, data)?;
    }
    b.into_inner()?.flush()?;
    fs::rename(&part, path)?;
    Ok(())
}

/// A rootfs tar of `n` small files (a few bytes each, 1,000 per directory).
fn write_many_tar(path: &Path, n: u64) -> Result<()> {
    let names: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            (
                format!("srv/d{:04}/f{i:07}", i / 1000),
                format!("{i}\n").into_bytes(),
            )
        })
        .collect();
    write_tar(path, names.iter().map(|(n, d)| (n.as_str(), d.as_slice())))
}
