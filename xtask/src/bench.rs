//! `cargo xtask bench`: strata against the tools people use today, on a
//! corpus generated deterministically, with times, ratios and peak memory.
//!
//! The corpus (target/bench-corpus/<scale>/, generated once, from fixed seeds):
//! `jdk`, a JDK-like tree of about 200 MB in about 3,000 files (incompressible
//! jars, compressible binaries, text sources); `small`, 50,000 files of
//! 1-4 KB; `big`, one file of 1 GiB (the same mix in runs); and the demo
//! `tomcat` spec. `--quick` scales everything down about 10x.
//!
//! What is measured, every repetition interleaving the tools so that drift
//! hits them alike, medians of `--reps` (default 3):
//! - `strata compose` of a one-layer spec over each corpus, cold (empty
//!   cache), with gzip, zstd and no compression, and its peak RSS;
//! - `strata plan` of the same spec: parsing plus hashing every input for the
//!   cache keys, the share of a cold build spent reading inputs a second time;
//! - the shell pipelines `tar | pigz -6 -p2 | sha256sum`, `tar | gzip -6 |
//!   sha256sum`, `tar | zstd -3 -T2 | sha256sum`, and `tar` alone into a pipe;
//! - `umoci repack` and `buildah commit` of the same tree, where installed;
//! - for specs/tomcat.kdl and a generated multi-layer spec over `jdk` and
//!   `small`: cold, warm no-op and one-file-change composes, and a cold
//!   compose of the changed layer alone. The warm and one-change composes
//!   are the user's rerun: the output layout of the run before is there; a
//!   warm compose into a removed output is shown beside them.
//! - `runs`: five consecutive `run` layers on a Debian minbase rootfs
//!   (`target/test-inputs/bookworm-minbase.tar`, made by the tests with
//!   debootstrap; the piece is skipped with a note without it), its rootfs
//!   layer already in the cache, against the same five commands run bare
//!   with `chroot` in an unpacked copy: what a run step costs beyond its
//!   command (the sandbox, the lower view, the layer).
//!
//! - `real` and `scale`: a real-image corpus (Debian's minbase, JRE and
//!   tomcat10) against BuildKit, buildah, umoci and the compressor limits,
//!   and many images and many files; see `bench/real.rs`.
//!
//! strata runs as the release binary (built here with cargo), one process per
//! run under `/usr/bin/time` for its peak RSS, exactly as a user runs it. All
//! runs read inputs from a warm page cache. Results: a table on stdout and
//! target/bench/results.json.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

mod real;

/// Bump when a generator below changes: the corpus on disk is regenerated.
const CORPUS_VERSION: &str = "bench-corpus-v1";

const USAGE: &str = "\
usage: cargo xtask bench [--quick] [--only NAME[,NAME...]] [--reps N]

  --quick   a corpus about 10x smaller, for a fast check
  --only    jdk, small, big (one-layer corpora), tomcat, multi (warm and one-change),
            runs (five run layers on a Debian base), real (Debian tomcat against
            BuildKit, buildah, umoci, the compressor limits), scale (200 images,
            1,000,000 files), remote (the multi spec from a fresh cache: REAPI
            cache on BuildGrid vs registry cache vs local), packages
            (specs/tomcat-debian.kdl against `buildah bud` of its Dockerfile;
            needs the host's Debian mirror)
  --reps    repetitions per measurement (default 3); medians are reported";

const ALL: [&str; 10] = [
    "jdk", "small", "big", "tomcat", "multi", "runs", "real", "scale", "remote", "packages",
];

mod remote;

/// The tar options of every shell baseline: sorted, numeric, mtime 0, as a
/// reproducible tar must be.
const TAR: &str = "tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0";

struct Opts {
    quick: bool,
    only: Vec<String>,
    reps: usize,
}

pub fn run(args: &[String], root: &Path) -> Result<()> {
    let opts = parse(args)?;
    let scale = if opts.quick { "quick" } else { "full" };
    let corpus = root.join("target/bench-corpus").join(scale);
    let work = root.join("target/bench/work");
    fs::create_dir_all(&corpus)?;
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    fs::create_dir_all(&work)?;

    eprintln!("bench: building the release strata binary");
    let strata = build_strata(root)?;
    let factor = if opts.quick { 10 } else { 1 };
    let mut b = Bench {
        strata,
        work,
        reps: opts.reps,
        rows: Vec::new(),
        ratios: Vec::new(),
        notes: Vec::new(),
        corpora: Vec::new(),
        load_start: loadavg(),
    };
    let wants = |n: &str| opts.only.is_empty() || opts.only.iter().any(|o| o == n);
    for name in ["jdk", "small", "big"] {
        let needed_by_multi = (wants("multi") || wants("remote")) && name != "big";
        if wants(name) || needed_by_multi {
            ensure_corpus(&corpus, name, factor)?;
        }
        if wants(name) {
            b.one_layer(&corpus, name)?;
        }
    }
    if wants("tomcat") {
        b.tomcat(root, &corpus)?;
    }
    if wants("multi") {
        b.multi(&corpus)?;
    }
    if wants("runs") {
        b.runs(root)?;
    }
    if wants("real") {
        b.real(root)?;
    }
    if wants("scale") {
        b.scale(root, opts.quick)?;
    }
    if wants("remote") {
        b.remote(&corpus)?;
    }
    if wants("packages") {
        b.packages(root)?;
    }
    b.report(root, opts.quick)?;
    // Caches and layouts of the last runs: up to a few GiB.
    fs::remove_dir_all(&b.work).with_context(|| format!("removing {}", b.work.display()))
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut opts = Opts {
        quick: false,
        only: Vec::new(),
        reps: 3,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--only" => {
                let v = it.next().context("--only needs a name")?;
                for n in v.split(',') {
                    if !ALL.contains(&n) {
                        bail!("--only {n:?}: not one of {}\n\n{USAGE}", ALL.join(", "));
                    }
                    opts.only.push(n.to_owned());
                }
            }
            "--reps" => {
                let v = it.next().context("--reps needs a number")?;
                opts.reps = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .with_context(|| format!("--reps {v:?}: not a positive number"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown bench option {other:?}\n\n{USAGE}"),
        }
    }
    Ok(opts)
}

fn build_strata(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "strata-cli",
            "--bin",
            "strata",
        ])
        .current_dir(root)
        .status()
        .context("running cargo build --release")?;
    if !status.success() {
        bail!("building the release strata binary failed");
    }
    let bin = root.join("target/release/strata");
    if !bin.exists() {
        bail!("{} missing after cargo build", bin.display());
    }
    Ok(bin)
}

// ---------------------------------------------------------------------------
// The corpus

/// SplitMix64: small, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: &str) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// What a file holds, chosen to compress like its real counterpart.
#[derive(Clone, Copy)]
enum Kind {
    /// Already compressed (jars, zips, images): gzip gains nothing.
    Random,
    /// Machine code and data: gzip -6 gives about 0.4-0.5.
    Binary,
    /// Sources, headers, man pages: gzip -6 gives about 0.2-0.3.
    Text,
}

const WORDS: &[&str] = &[
    "public",
    "private",
    "static",
    "final",
    "class",
    "interface",
    "void",
    "int",
    "long",
    "return",
    "if",
    "else",
    "for",
    "while",
    "new",
    "this",
    "null",
    "true",
    "false",
    "String",
    "Object",
    "List",
    "Map",
    "import",
    "java",
    "util",
    "io",
    "throws",
    "Exception",
    "extends",
    "implements",
    "synchronized",
    "byte",
    "char",
    "buffer",
    "length",
    "index",
    "value",
    "key",
    "count",
    "size",
    "offset",
    "result",
    "the",
    "of",
    "and",
    "to",
    "is",
    "a",
    "in",
    "that",
    "which",
    "returns",
    "specified",
    "element",
    "array",
    "stream",
    "read",
    "write",
    "close",
];

/// Appends `len` bytes of `kind` to `out`.
fn fill(rng: &mut Rng, kind: Kind, out: &mut Vec<u8>, len: usize) {
    let end = out.len() + len;
    match kind {
        Kind::Random => {
            while out.len() < end {
                out.extend_from_slice(&rng.next().to_le_bytes());
            }
        }
        Kind::Binary => {
            // Instructions-like: a skewed choice among few 1-8 byte tokens,
            // with runs of zeros and random addresses between them.
            while out.len() < end {
                let r = rng.next();
                match r % 16 {
                    0 => out.extend_from_slice(&(r >> 8).to_le_bytes()[..4]),
                    1 => out.resize(out.len() + (r >> 8) as usize % 24, 0),
                    _ => {
                        let t = (r >> 8) % 64 * ((r >> 16) % 64) / 64;
                        let token = t.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes();
                        out.extend_from_slice(&token[..1 + (t % 8) as usize]);
                    }
                }
            }
        }
        Kind::Text => {
            while out.len() < end {
                let r = rng.next();
                let indent = (r % 4) as usize * 4;
                out.resize(out.len() + indent, b' ');
                let words = 3 + (r >> 8) % 9;
                let mut x = r >> 16;
                for i in 0..words {
                    if i > 0 {
                        out.push(b' ');
                    }
                    let w = WORDS[(x % WORDS.len() as u64) as usize];
                    out.extend_from_slice(w.as_bytes());
                    x = x / WORDS.len() as u64 + rng.next() % 7;
                    if x.is_multiple_of(13) {
                        out.extend_from_slice(format!("{}", x % 1000).as_bytes());
                    }
                }
                out.extend_from_slice(if r.is_multiple_of(5) { b";\n" } else { b"\n" });
            }
        }
    }
    out.truncate(end);
}

/// Writes a file of `len` bytes of `kind`, executable or not.
fn put(rng: &mut Rng, path: &Path, kind: Kind, len: usize, exec: bool) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut data = Vec::with_capacity(len + 16);
    fill(rng, kind, &mut data, len);
    fs::write(path, &data).with_context(|| format!("writing {}", path.display()))?;
    set_mode(path, if exec { 0o755 } else { 0o644 })
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

/// Generates corpus `name` under `dir` unless a complete one of this
/// generator version is there.
fn ensure_corpus(dir: &Path, name: &str, factor: usize) -> Result<()> {
    let stamp = dir.join(format!("{name}.done"));
    let want = format!("{CORPUS_VERSION} {name} 1/{factor}\n");
    let tree = dir.join(name);
    if fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) && tree.exists() {
        return Ok(());
    }
    let _ = fs::remove_file(&stamp);
    if tree.exists() {
        fs::remove_dir_all(&tree)?;
    }
    eprintln!("bench: generating the {name} corpus in {}", tree.display());
    let started = Instant::now();
    let mut rng = Rng::new(&format!("{CORPUS_VERSION}/{name}"));
    match name {
        "jdk" => gen_jdk(&mut rng, &tree, factor)?,
        "small" => gen_small(&mut rng, &tree, factor)?,
        "big" => gen_big(&mut rng, &tree, factor)?,
        _ => bail!("no generator for corpus {name:?}"),
    }
    fs::write(&stamp, want)?;
    eprintln!(
        "bench: {name} generated in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A JDK-like tree: by bytes about 45% jars (incompressible), 35% native
/// code, 20% text, in about 3,000 files.
fn gen_jdk(rng: &mut Rng, root: &Path, factor: usize) -> Result<()> {
    let n = |count: usize| (count / factor).max(1);
    let kb = 1024usize;
    put(
        rng,
        &root.join("jre/lib/rt.jar"),
        Kind::Random,
        60 * kb * kb / factor,
        false,
    )?;
    for i in 0..n(25) {
        let len = rng.range(200, 2400) as usize * kb;
        put(
            rng,
            &root.join(format!("lib/ext/lib{i:02}.jar")),
            Kind::Random,
            len,
            false,
        )?;
    }
    for i in 0..n(80) {
        let len = rng.range(200, 1300) as usize * kb;
        let path = root.join(format!("jre/lib/amd64/libnative{i:02}.so"));
        put(rng, &path, Kind::Binary, len, true)?;
    }
    for i in 0..n(40) {
        let len = rng.range(50, 350) as usize * kb;
        put(
            rng,
            &root.join(format!("bin/tool{i:02}")),
            Kind::Binary,
            len,
            true,
        )?;
    }
    for i in 0..n(40) {
        let len = rng.range(2, 40) as usize * kb;
        put(
            rng,
            &root.join(format!("include/jni{i:02}.h")),
            Kind::Text,
            len,
            false,
        )?;
    }
    for i in 0..n(2600) {
        let len = rng.range(2, 28) as usize * kb;
        let path = root.join(format!("src/java/pkg{:03}/Class{i:04}.java", i % 100));
        put(rng, &path, Kind::Text, len, false)?;
    }
    for i in 0..n(60) {
        let len = rng.range(4, 20) as usize * kb;
        put(
            rng,
            &root.join(format!("man/man1/tool{i:02}.1")),
            Kind::Text,
            len,
            false,
        )?;
    }
    for i in 0..n(60) {
        let len = rng.range(1, 10) as usize * kb;
        put(
            rng,
            &root.join(format!("legal/LICENSE{i:02}")),
            Kind::Text,
            len,
            false,
        )?;
    }
    for i in 0..n(40) {
        let len = rng.range(1, 8) as usize * kb;
        put(
            rng,
            &root.join(format!("conf/setting{i:02}.properties")),
            Kind::Text,
            len,
            false,
        )?;
    }
    Ok(())
}

/// 50,000 files of 1-4 KB in 500 directories: 70% text, 30% binary.
fn gen_small(rng: &mut Rng, root: &Path, factor: usize) -> Result<()> {
    for i in 0..50_000 / factor {
        let len = rng.range(1024, 4096) as usize;
        let kind = if rng.next() % 10 < 7 {
            Kind::Text
        } else {
            Kind::Binary
        };
        let path = root.join(format!("d{:03}/f{i:05}.dat", i % 500));
        put(rng, &path, kind, len, false)?;
    }
    Ok(())
}

/// One file of 1 GiB: runs of 64 KiB to 4 MiB, each jar-like, binary or
/// text in the proportions of the JDK tree; written as it is generated.
fn gen_big(rng: &mut Rng, root: &Path, factor: usize) -> Result<()> {
    fs::create_dir_all(root)?;
    let path = root.join("big.bin");
    let total = (1usize << 30) / factor;
    let mut w = BufWriter::new(fs::File::create(&path)?);
    let mut buf = Vec::with_capacity(4 << 20);
    let mut written = 0;
    while written < total {
        let kind = match rng.next() % 20 {
            0..9 => Kind::Random,
            9..16 => Kind::Binary,
            _ => Kind::Text,
        };
        let len = (rng.range(64 << 10, 4 << 20) as usize).min(total - written);
        buf.clear();
        fill(rng, kind, &mut buf, len);
        w.write_all(&buf)?;
        written += len;
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    set_mode(&path, 0o644)
}

/// Total bytes and number of files under `dir`.
fn tree_size(dir: &Path) -> Result<(u64, u64)> {
    let mut bytes = 0;
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else {
                files += 1;
                bytes += e.metadata()?.len();
            }
        }
    }
    Ok((bytes, files))
}

// ---------------------------------------------------------------------------
// Measuring

/// One run of one command.
#[derive(Clone, Copy, Default)]
struct Sample {
    secs: f64,
    /// User plus system CPU seconds of the process and its children.
    cpu: f64,
    rss_kib: Option<u64>,
    out_bytes: Option<u64>,
}

/// The repetitions of one measurement.
struct Row {
    corpus: String,
    name: String,
    samples: Vec<Sample>,
    input_bytes: u64,
}

impl Row {
    fn median(&self) -> f64 {
        let mut t: Vec<f64> = self.samples.iter().map(|s| s.secs).collect();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    }

    fn median_cpu(&self) -> f64 {
        let mut t: Vec<f64> = self.samples.iter().map(|s| s.cpu).collect();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    }

    fn peak_rss(&self) -> Option<u64> {
        self.samples.iter().filter_map(|s| s.rss_kib).max()
    }

    fn out_bytes(&self) -> Option<u64> {
        self.samples.iter().find_map(|s| s.out_bytes)
    }
}

struct Ratio {
    name: String,
    value: f64,
    /// The same ratio of CPU times, which the load of a shared machine
    /// disturbs less than wall times.
    cpu: Option<f64>,
    target: Option<(&'static str, f64)>,
}

impl Ratio {
    fn met(&self) -> Option<bool> {
        self.target.map(|(op, t)| match op {
            "<" => self.value < t,
            ">=" => self.value >= t,
            _ => self.value <= t,
        })
    }
}

struct Bench {
    strata: PathBuf,
    work: PathBuf,
    reps: usize,
    rows: Vec<Row>,
    ratios: Vec<Ratio>,
    notes: Vec<String>,
    corpora: Vec<Value>,
    /// /proc/loadavg when the bench started: other work on the machine
    /// inflates wall times.
    load_start: String,
}

/// What a strata compose reported: compressed bytes of its distinct layers,
/// and how many came from the cache.
struct Composed {
    sample: Sample,
    hits: usize,
    layers: usize,
}

impl Bench {
    fn add(&mut self, corpus: &str, name: &str, input_bytes: u64, s: Sample) {
        if let Some(r) = self
            .rows
            .iter_mut()
            .find(|r| r.corpus == corpus && r.name == name)
        {
            r.samples.push(s);
        } else {
            self.rows.push(Row {
                corpus: corpus.to_owned(),
                name: name.to_owned(),
                samples: vec![s],
                input_bytes,
            });
        }
    }

    /// The median wall and CPU seconds of a row.
    fn median(&self, corpus: &str, name: &str) -> Option<(f64, f64)> {
        self.rows
            .iter()
            .find(|r| r.corpus == corpus && r.name == name)
            .map(|r| (r.median(), r.median_cpu()))
    }

    /// A ratio of wall times (the target applies to it), and of CPU times.
    fn ratio(
        &mut self,
        name: &str,
        num: Option<(f64, f64)>,
        den: Option<(f64, f64)>,
        target: Option<(&'static str, f64)>,
    ) {
        if let (Some(n), Some(d)) = (num, den) {
            self.ratios.push(Ratio {
                name: name.to_owned(),
                value: n.0 / d.0,
                // /usr/bin/time counts in hundredths: no ratio of nothing.
                cpu: (d.1 > 0.0).then(|| n.1 / d.1),
                target,
            });
        }
    }

    /// `strata compose SPEC -o OUT` with `cache`; OUT is removed first
    /// unless `keep_out` (a user's rerun finds the layout of the last one).
    fn compose(&self, spec: &Path, cache: &Path, keep_out: bool) -> Result<Composed> {
        self.compose_with(spec, cache, keep_out, &[])
    }

    /// [`Bench::compose`] with `extra` arguments (a remote cache).
    fn compose_with(
        &self,
        spec: &Path,
        cache: &Path,
        keep_out: bool,
        extra: &[&str],
    ) -> Result<Composed> {
        let out = self.work.join("out");
        if out.exists() && !keep_out {
            fs::remove_dir_all(&out)?;
        }
        let usage = self.work.join("usage.txt");
        let started = Instant::now();
        let output = Command::new("/usr/bin/time")
            .arg("-f")
            .arg(USAGE_FORMAT)
            .arg("-o")
            .arg(&usage)
            .arg(&self.strata)
            .arg("compose")
            .arg(spec)
            .arg("-o")
            .arg(&out)
            .arg("--cache-dir")
            .arg(cache)
            .arg("--json")
            .args(extra)
            .env_remove("SOURCE_DATE_EPOCH")
            .stderr(Stdio::inherit())
            .output()
            .context("running strata under /usr/bin/time")?;
        let secs = started.elapsed().as_secs_f64();
        if !output.status.success() {
            bail!(
                "strata compose {} failed ({})",
                spec.display(),
                output.status
            );
        }
        let (cpu, rss_kib) = read_usage(&usage)?;
        let report: Value = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("strata compose {} printed no JSON report", spec.display()))?;
        let mut digests = std::collections::BTreeMap::new();
        let mut hits = 0;
        for layer in report["images"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|i| i["layers"].as_array().into_iter().flatten())
        {
            let digest = layer["digest"].as_str().unwrap_or_default().to_owned();
            let hit = layer["cache"].as_str() == Some("hit");
            if digests
                .insert(digest, layer["size"].as_u64().unwrap_or(0))
                .is_none()
                && hit
            {
                hits += 1;
            }
        }
        Ok(Composed {
            sample: Sample {
                secs,
                cpu,
                rss_kib: Some(rss_kib),
                out_bytes: Some(digests.values().sum()),
            },
            hits,
            layers: digests.len(),
        })
    }

    /// A cold compose: an empty cache.
    fn cold(&self, spec: &Path) -> Result<Composed> {
        let cache = self.fresh("cache")?;
        let c = self.compose(spec, &cache, false)?;
        if c.hits != 0 {
            bail!("a cold compose of {} hit the cache", spec.display());
        }
        Ok(c)
    }

    /// An empty directory under the work dir.
    fn fresh(&self, name: &str) -> Result<PathBuf> {
        let d = self.work.join(name);
        if d.exists() {
            fs::remove_dir_all(&d).with_context(|| format!("clearing {}", d.display()))?;
        }
        fs::create_dir_all(&d)?;
        Ok(d)
    }

    /// Runs a timed command (under `/usr/bin/time`, for its CPU time); its
    /// stdout is discarded.
    fn timed(&self, cmd: Command) -> Result<Sample> {
        let usage = self.work.join("usage.txt");
        let mut timed = Command::new("/usr/bin/time");
        timed
            .arg("-f")
            .arg(USAGE_FORMAT)
            .arg("-o")
            .arg(&usage)
            .arg(cmd.get_program())
            .args(cmd.get_args());
        if let Some(dir) = cmd.get_current_dir() {
            timed.current_dir(dir);
        }
        let started = Instant::now();
        let status = timed
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("running {cmd:?}"))?;
        let secs = started.elapsed().as_secs_f64();
        if !status.success() {
            bail!("{cmd:?} failed ({status})");
        }
        let (cpu, _) = read_usage(&usage)?;
        Ok(Sample {
            secs,
            cpu,
            ..Sample::default()
        })
    }

    fn shell(&self, script: &str) -> Result<Sample> {
        let mut cmd = Command::new("bash");
        cmd.args(["-o", "pipefail", "-c", script]);
        self.timed(cmd)
    }

    /// The size of a pipeline's output (one untimed run).
    fn shell_size(&self, script: &str) -> Result<u64> {
        let out = Command::new("bash")
            .args(["-o", "pipefail", "-c", &format!("{script} | wc -c")])
            .output()?;
        if !out.status.success() {
            bail!("{script} failed ({})", out.status);
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    }

    /// Cold composes and every baseline, over one corpus.
    fn one_layer(&mut self, corpus_dir: &Path, name: &str) -> Result<()> {
        let tree = corpus_dir.join(name);
        let (bytes, files) = tree_size(&tree)?;
        self.corpora
            .push(json!({"name": name, "bytes": bytes, "files": files}));
        eprintln!(
            "bench: {name}: {:.0} MB in {files} files, {} repetitions",
            bytes as f64 / 1e6,
            self.reps
        );
        let copy = if name == "big" {
            format!("copy \"{name}/big.bin\" to=\"/data/\"")
        } else {
            format!("copy \"{name}\" to=\"/opt/\"")
        };
        let mut specs = Vec::new();
        // `gzip` is the default level (4); `gzip level 6` is zlib's default,
        // the like-for-like comparison with `pigz -6` and `gzip -6`.
        for (c, setting) in [
            ("gzip", "\"gzip\""),
            ("gzip level 6", "\"gzip\" level=6"),
            ("zstd", "\"zstd\""),
            ("none", "\"none\""),
        ] {
            let file = c.replace(' ', "-");
            let spec = corpus_dir.join(format!("{name}-{file}.kdl"));
            fs::write(
                &spec,
                format!(
                    "// cargo xtask bench: one layer over the {name} corpus\n\
                     compression {setting}\n\
                     image {name} {{\n    layer {name} {{ {copy} }}\n}}\n"
                ),
            )?;
            specs.push((c, spec));
        }
        let dir = tree.display().to_string();
        let tar = format!("{TAR} -C '{dir}' -cf - .");
        let pipes = [
            (
                "tar | pigz -6 -p2 | sha256sum",
                "pigz",
                format!("{tar} | pigz -6 -p2"),
            ),
            (
                "tar | gzip -6 | sha256sum",
                "gzip",
                format!("{tar} | gzip -6"),
            ),
            (
                "tar | zstd -3 -T2 | sha256sum",
                "zstd",
                format!("{tar} | zstd -q -3 -T2"),
            ),
            ("tar (alone, into a pipe)", "tar", tar.clone()),
        ];
        self.note(
            "strata `gzip` rows use strata's default level (4); `gzip level 6` is zlib's \
             default, as in pigz -6 and gzip -6",
        );
        let umoci = have("umoci");
        let buildah = have("buildah");
        if !umoci {
            self.note("umoci is not installed: no umoci repack baseline");
        }
        if !buildah {
            self.note("buildah is not installed: no buildah commit baseline");
        }
        // Warm the page cache, so every tool reads from memory.
        self.shell(&format!("{tar} | cat > /dev/null"))?;
        for rep in 0..self.reps {
            eprintln!("bench: {name}: repetition {}", rep + 1);
            for (c, spec) in &specs {
                let run = self.cold(spec)?;
                self.add(
                    name,
                    &format!("strata compose, cold, {c}"),
                    bytes,
                    run.sample,
                );
            }
            let mut plan = Command::new(&self.strata);
            plan.arg("plan").arg(&specs[0].1);
            let s = self.timed(plan)?;
            self.add(name, "strata plan (hash every input)", bytes, s);
            for (label, tool, script) in &pipes {
                if !have(tool) {
                    continue;
                }
                let mut s = self.shell(&format!("{script} | sha256sum"))?;
                if rep == 0 && matches!(*tool, "pigz" | "zstd") {
                    s.out_bytes = Some(self.shell_size(script)?);
                }
                self.add(name, label, bytes, s);
            }
            if umoci {
                let s = self.umoci(&tree)?;
                self.add(name, "umoci repack", bytes, s);
            }
            if buildah {
                let s = self.buildah(&tree)?;
                self.add(name, "buildah commit (gzip)", bytes, s);
            }
        }
        let strata_gz = self.median(name, "strata compose, cold, gzip");
        for (base, target) in [
            ("tar | pigz -6 -p2 | sha256sum", Some(("<=", 0.5))),
            ("tar | gzip -6 | sha256sum", None),
            (
                "umoci repack",
                Some(("<=", if name == "small" { 0.33 } else { 0.67 })),
            ),
            ("buildah commit (gzip)", Some(("<=", 0.67))),
        ] {
            let target = if name == "jdk" || (name == "small" && base == "umoci repack") {
                target
            } else {
                None
            };
            let den = self.median(name, base);
            self.ratio(
                &format!("{name}: strata gzip / {base}"),
                strata_gz,
                den,
                target,
            );
        }
        let gz6 = self.median(name, "strata compose, cold, gzip level 6");
        for base in ["tar | pigz -6 -p2 | sha256sum", "umoci repack"] {
            let den = self.median(name, base);
            self.ratio(
                &format!("{name}: strata gzip level 6 / {base}"),
                gz6,
                den,
                None,
            );
        }
        // What the speed costs in size: compressed bytes against each tool's.
        let size = |b: &Bench, row: &str| {
            b.rows
                .iter()
                .find(|r| r.corpus == name && r.name == row)
                .and_then(Row::out_bytes)
        };
        for (num, den) in [
            (
                "strata compose, cold, gzip",
                "tar | pigz -6 -p2 | sha256sum",
            ),
            ("strata compose, cold, gzip", "umoci repack"),
            ("strata compose, cold, gzip", "buildah commit (gzip)"),
            (
                "strata compose, cold, gzip level 6",
                "tar | pigz -6 -p2 | sha256sum",
            ),
        ] {
            if let (Some(n), Some(d)) = (size(self, num), size(self, den)) {
                let short = |r: &str| {
                    r.trim_start_matches("strata compose, cold, ")
                        .trim_end_matches(" | sha256sum")
                        .to_owned()
                };
                self.ratios.push(Ratio {
                    name: format!(
                        "{name}: output size, strata {} / {}",
                        short(num),
                        short(den)
                    ),
                    value: n as f64 / d as f64,
                    cpu: None,
                    target: None,
                });
            }
        }
        let zstd = self.median(name, "strata compose, cold, zstd");
        let zstd_base = self.median(name, "tar | zstd -3 -T2 | sha256sum");
        self.ratio(
            &format!("{name}: strata zstd / tar | zstd -3 -T2"),
            zstd,
            zstd_base,
            None,
        );
        let none = self.median(name, "strata compose, cold, none");
        let tar_alone = self.median(name, "tar (alone, into a pipe)");
        let target = (name == "small").then_some(("<=", 1.5));
        self.ratio(
            &format!("{name}: strata none / tar alone"),
            none,
            tar_alone,
            target,
        );
        let plan = self.median(name, "strata plan (hash every input)");
        self.ratio(
            &format!("{name}: strata plan / strata gzip cold (input hashing share)"),
            plan,
            strata_gz,
            None,
        );
        if name == "big" {
            for c in ["gzip", "zstd", "none"] {
                let rss = self
                    .rows
                    .iter()
                    .find(|r| r.corpus == name && r.name == format!("strata compose, cold, {c}"))
                    .and_then(Row::peak_rss);
                if let Some(kib) = rss {
                    self.ratios.push(Ratio {
                        name: format!("big: strata {c} peak RSS, MiB"),
                        value: kib as f64 / 1024.0,
                        cpu: None,
                        target: Some(("<", 64.0)),
                    });
                }
            }
        }
        Ok(())
    }

    /// `umoci repack` of a bundle holding the corpus (set up untimed).
    fn umoci(&self, tree: &Path) -> Result<Sample> {
        let w = self.fresh("umoci")?;
        let layout = w.join("layout");
        let bundle = w.join("bundle");
        let run = |args: &[&std::ffi::OsStr]| -> Result<()> {
            let st = Command::new("umoci")
                .args(args)
                .stdout(Stdio::null())
                .status()?;
            if !st.success() {
                bail!("umoci {args:?} failed ({st})");
            }
            Ok(())
        };
        let l = layout.as_os_str();
        run(&["init".as_ref(), "--layout".as_ref(), l])?;
        let base = format!("{}:base", layout.display());
        run(&["new".as_ref(), "--image".as_ref(), base.as_ref()])?;
        run(&[
            "unpack".as_ref(),
            "--image".as_ref(),
            base.as_ref(),
            bundle.as_os_str(),
        ])?;
        copy_tree(tree, &bundle.join("rootfs/opt"))?;
        let mut cmd = Command::new("umoci");
        cmd.args(["repack", "--image"])
            .arg(format!("{}:new", layout.display()))
            .arg(&bundle);
        let mut s = self.timed(cmd)?;
        s.out_bytes = largest_file(&layout.join("blobs/sha256"))?;
        fs::remove_dir_all(&w)?;
        Ok(s)
    }

    /// `buildah commit` of a scratch container holding the corpus (set up
    /// untimed), to an OCI layout with gzip layers.
    fn buildah(&self, tree: &Path) -> Result<Sample> {
        let w = self.fresh("buildah")?;
        let out = |args: &[&str]| -> Result<String> {
            let o = Command::new("buildah")
                .args(args)
                .stderr(Stdio::inherit())
                .output()?;
            if !o.status.success() {
                bail!("buildah {args:?} failed ({})", o.status);
            }
            Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        let ctr = out(&["from", "--quiet", "scratch"])?;
        let result = (|| {
            let mnt = out(&["mount", &ctr])?;
            copy_tree(tree, &Path::new(&mnt).join("opt"))?;
            let mut cmd = Command::new("buildah");
            cmd.args(["commit", "--quiet", "--disable-compression=false", &ctr])
                .arg(format!("oci:{}:bench", w.join("layout").display()));
            let mut s = self.timed(cmd)?;
            s.out_bytes = largest_file(&w.join("layout/blobs/sha256"))?;
            Ok(s)
        })();
        let _ = out(&["rm", &ctr]);
        fs::remove_dir_all(&w)?;
        result
    }

    /// specs/tomcat.kdl: cold, warm no-op, one-file change (index.jsp, the
    /// webapp layer), and the webapp layer alone.
    fn tomcat(&mut self, root: &Path, corpus: &Path) -> Result<()> {
        let dir = corpus.join("tomcat");
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(dir.join("inputs"))?;
        fs::copy(root.join("specs/tomcat.kdl"), dir.join("tomcat.kdl"))?;
        for e in fs::read_dir(root.join("specs/inputs"))? {
            let e = e?;
            fs::copy(e.path(), dir.join("inputs").join(e.file_name()))?;
        }
        let alone = dir.join("webapp-alone.kdl");
        fs::write(
            &alone,
            "// cargo xtask bench: the webapp layer of tomcat.kdl alone\n\
             image webapp {\n    layer webapp {\n        copy \"inputs/index.jsp\" \
             to=\"/usr/local/apache-tomcat-8.5.34/webapps/ROOT/\" mode=0o644\n    }\n}\n",
        )?;
        let (bytes, _) = tree_size(&dir.join("inputs"))?;
        self.warm_and_change(
            "tomcat",
            &dir.join("tomcat.kdl"),
            &alone,
            &dir.join("inputs/index.jsp"),
            bytes,
        )
    }

    /// A generated spec of four layers over `jdk` and `small` (about 330 MB,
    /// 53,000 files at full scale); the change is one source file of `src`.
    fn multi(&mut self, corpus: &Path) -> Result<()> {
        let spec = multi_spec(corpus)?;
        let alone = corpus.join("multi-src-alone.kdl");
        fs::write(
            &alone,
            "// cargo xtask bench: the src layer of multi.kdl alone\n\
             image src {\n    layer src { copy \"jdk/src\" to=\"/opt/jdk/\" }\n}\n",
        )?;
        let (a, _) = tree_size(&corpus.join("jdk"))?;
        let (b, _) = tree_size(&corpus.join("small"))?;
        let changed = corpus.join("jdk/src/java/pkg000/Class0000.java");
        self.warm_and_change("multi", &spec, &alone, &changed, a + b)
    }

    /// Five consecutive `run` layers on a Debian base whose rootfs layer is
    /// cached, against five bare runs of their commands (see the module doc).
    fn runs(&mut self, root: &Path) -> Result<()> {
        let base = root.join("target/test-inputs/bookworm-minbase.tar");
        if !base.is_file() {
            self.note(&format!(
                "runs: skipped, no {} (the Dockerfile-way test makes it with debootstrap)",
                base.display()
            ));
            return Ok(());
        }
        if !rustix_is_root() || !have("chroot") {
            self.note("runs: skipped, it needs root and chroot");
            return Ok(());
        }
        let dir = self.fresh("runs")?;
        fs::hard_link(&base, dir.join("base.tar"))
            .or_else(|_| fs::copy(&base, dir.join("base.tar")).map(|_| ()))?;
        let command = |i: usize| {
            format!(
                "dpkg-query -W -f '${{Package}} ${{Version}}\\n' > /var/tmp/pkgs-{i} && ls -lR /usr/share/doc > /var/tmp/docs-{i}"
            )
        };
        let base_spec = "image base {\n    rootfs \"base.tar\"\n    env PATH=\"/usr/sbin:/usr/bin:/sbin:/bin\"\n}\n";
        fs::write(dir.join("base.kdl"), base_spec)?;
        let mut spec = format!("{base_spec}image app {{\n    from base\n");
        for i in 1..=5 {
            spec.push_str(&format!(
                "    layer r{i} {{ run \"{}\" }}\n",
                command(i).replace('"', "\\\"")
            ));
        }
        spec.push_str("}\n");
        fs::write(dir.join("runs.kdl"), &spec)?;
        let bytes = fs::metadata(&base)?.len();
        let tree = dir.join("tree");
        fs::create_dir(&tree)?;
        let status = Command::new("tar")
            .arg("-xf")
            .arg(&base)
            .arg("-C")
            .arg(&tree)
            .status()?;
        if !status.success() {
            bail!("unpacking {} failed", base.display());
        }
        self.corpora
            .push(json!({"name": "runs", "bytes": bytes, "spec": dir.join("runs.kdl")}));
        for rep in 0..self.reps {
            eprintln!("bench: runs: repetition {}", rep + 1);
            let cache = self.fresh("cache")?;
            // The base's layer in the cache: only the run layers are built.
            self.compose(&dir.join("base.kdl"), &cache, false)?;
            let c = self.compose(&dir.join("runs.kdl"), &cache, false)?;
            if c.layers - c.hits != 5 {
                bail!("the run compose built {} layers, not 5", c.layers - c.hits);
            }
            self.add("runs", "strata compose, five run layers", bytes, c.sample);
            let mut script = String::new();
            for i in 1..=5 {
                script.push_str(&format!(
                    "chroot {} /bin/sh -c {} && ",
                    tree.display(),
                    shell_quote(&command(i))
                ));
            }
            script.push_str("true");
            let bare = self.shell(&script)?;
            self.add("runs", "5 x the bare command (chroot)", bytes, bare);
        }
        let runs = self.median("runs", "strata compose, five run layers");
        let bare = self.median("runs", "5 x the bare command (chroot)");
        self.ratio("runs: five run layers / 5 x bare command", runs, bare, None);
        Ok(())
    }

    /// specs/tomcat-debian.kdl against `buildah bud` of the equivalent
    /// Dockerfile (`RUN apt-get install`, on a debootstrap minbase image
    /// built beforehand, apt's downloads and lists in cache mounts): cold
    /// (nothing cached, once: both download), warm (packages cached,
    /// layers built: strata with a fresh cache holding only its `.deb`s,
    /// buildah with `--layers=false` and apt's cache warm), and a
    /// one-package change (`less` added to the tomcat layer, layers
    /// cached). Then the layering: bytes stored for two images sharing
    /// the base's packages, one layer per package group against one layer
    /// per image.
    fn packages(&mut self, root: &Path) -> Result<()> {
        let base = root.join("target/test-inputs/bookworm-minbase.tar");
        let have_buildah = have("buildah") && rustix_is_root() && base.is_file();
        if !have_buildah {
            self.note(&format!(
                "packages: buildah skipped (it needs buildah, root and {}, which the Dockerfile-way test makes)",
                base.display()
            ));
        }
        let dir = self.fresh("packages")?;
        for f in [
            "tomcat-debian.kdl",
            "inputs/index.jsp",
            "keys/debian-archive-keyring.gpg",
        ] {
            fs::create_dir_all(dir.join(f).parent().unwrap_or(&dir))?;
            fs::copy(root.join("specs").join(f), dir.join(f))?;
        }
        let spec = dir.join("tomcat-debian.kdl");
        let text = fs::read_to_string(&spec)?;
        let changed = dir.join("changed.kdl");
        fs::write(
            &changed,
            text.replace("packages \"tomcat10\"", "packages \"tomcat10\" \"less\""),
        )?;
        let bytes = 0;
        self.corpora
            .push(json!({"name": "packages", "bytes": bytes, "spec": spec}));
        let primed = self.work.join("packages-cache");
        if primed.exists() {
            fs::remove_dir_all(&primed)?;
        }
        fs::create_dir_all(&primed)?;
        eprintln!("bench: packages: strata cold (downloads every .deb)");
        let cold = match self.compose(&spec, &primed, false) {
            Ok(c) => c,
            Err(e) => {
                self.note(&format!(
                    "packages: skipped, the cold compose failed: {e:#}"
                ));
                return Ok(());
            }
        };
        self.add(
            "packages",
            "strata compose, cold (download)",
            bytes,
            cold.sample,
        );
        for rep in 0..self.reps {
            eprintln!("bench: packages: repetition {}", rep + 1);
            // Packages cached, layers not: the .debs alone, hard-linked.
            let cache = self.fresh("cache")?;
            let status = Command::new("cp")
                .arg("-al")
                .arg(primed.join("debs-v1"))
                .arg(cache.join("debs-v1"))
                .status()?;
            if !status.success() {
                bail!("copying the package cache failed");
            }
            let warm = self.compose(&spec, &cache, false)?;
            if warm.hits != 0 {
                bail!("the packages-warm compose hit the layer cache");
            }
            self.add(
                "packages",
                "strata compose, packages cached",
                bytes,
                warm.sample,
            );
            // One package more, every layer cached.
            let change = self.compose(&changed, &primed, false)?;
            self.add(
                "packages",
                "strata compose, one package added",
                bytes,
                change.sample,
            );
            // Back, so the next repetition changes again.
            self.compose(&spec, &primed, false)?;
        }
        if have_buildah {
            self.buildah_packages(&dir, &base)?;
        }
        let cold = self.median("packages", "strata compose, cold (download)");
        let warm = self.median("packages", "strata compose, packages cached");
        let change = self.median("packages", "strata compose, one package added");
        let b_cold = self.median("packages", "buildah bud, cold (download)");
        let b_warm = self.median("packages", "buildah bud, apt cache warm");
        let b_change = self.median("packages", "buildah bud, one package added");
        self.ratio("packages: buildah / strata, cold", b_cold, cold, None);
        self.ratio(
            "packages: buildah / strata, warm",
            b_warm,
            warm,
            Some((">=", 5.0)),
        );
        self.ratio(
            "packages: buildah / strata, one package added",
            b_change,
            change,
            None,
        );
        self.layering(&dir, &primed)
    }

    /// `buildah bud` of the Dockerfile equivalent to tomcat-debian.kdl.
    fn buildah_packages(&mut self, dir: &Path, base: &Path) -> Result<()> {
        let ctx = dir.join("buildah");
        fs::create_dir_all(&ctx)?;
        fs::hard_link(base, ctx.join("base.tar"))
            .or_else(|_| fs::copy(base, ctx.join("base.tar")).map(|_| ()))?;
        fs::copy(dir.join("inputs/index.jsp"), ctx.join("index.jsp"))?;
        let tag = format!("strata-bench-pkg-{}", std::process::id());
        fs::write(
            ctx.join("Base.Dockerfile"),
            "FROM scratch\nADD base.tar /\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
        )?;
        let dockerfile = |extra: &str| {
            format!(
                "FROM {tag}-base\n\
                 RUN --mount=type=cache,target=/var/cache/apt,id={tag}-apt \\\n\
                 \x20   --mount=type=cache,target=/var/lib/apt/lists,id={tag}-lists \\\n\
                 \x20   apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless\n\
                 RUN --mount=type=cache,target=/var/cache/apt,id={tag}-apt \\\n\
                 \x20   --mount=type=cache,target=/var/lib/apt/lists,id={tag}-lists \\\n\
                 \x20   apt-get install -y --no-install-recommends tomcat10{extra}\n\
                 COPY index.jsp /var/lib/tomcat10/webapps/ROOT/\n\
                 ENV CATALINA_HOME=/usr/share/tomcat10 CATALINA_BASE=/var/lib/tomcat10\n\
                 CMD [\"/usr/share/tomcat10/bin/catalina.sh\", \"run\"]\n"
            )
        };
        fs::write(ctx.join("Dockerfile"), dockerfile(""))?;
        fs::write(ctx.join("Changed.Dockerfile"), dockerfile(" less"))?;
        let bud = |file: &str, name: &str, layers: bool| {
            let mut cmd = Command::new("buildah");
            // runc, with the limits podman's tests use: crun refuses this
            // machine's hybrid cgroups, and the default rlimits are too high.
            cmd.args(["bud", "--quiet", "--network", "host", "--runtime", "runc"])
                .args([
                    "--ulimit",
                    "nofile=1024:1024",
                    "--ulimit",
                    "nproc=1024:1024",
                ])
                .arg(format!("--layers={layers}"))
                .args(["-f", file, "-t", name, "."])
                .current_dir(&ctx);
            cmd
        };
        let cleanup = || {
            for n in ["", "-base", "-changed"] {
                let _ = Command::new("buildah")
                    .args(["rmi", "-f", &format!("{tag}{n}")])
                    .output();
            }
        };
        let result = (|| -> Result<()> {
            eprintln!("bench: packages: buildah base image (untimed)");
            self.timed(bud("Base.Dockerfile", &format!("{tag}-base"), false))?;
            eprintln!("bench: packages: buildah cold (apt downloads)");
            let cold = self.timed(bud("Dockerfile", &tag, false))?;
            self.add("packages", "buildah bud, cold (download)", 0, cold);
            for rep in 0..self.reps {
                eprintln!("bench: packages: buildah repetition {}", rep + 1);
                let warm = self.timed(bud("Dockerfile", &tag, false))?;
                self.add("packages", "buildah bud, apt cache warm", 0, warm);
                // Layer cache primed by a --layers build, then the change.
                self.timed(bud("Dockerfile", &tag, true))?;
                let change =
                    self.timed(bud("Changed.Dockerfile", &format!("{tag}-changed"), true))?;
                self.add("packages", "buildah bud, one package added", 0, change);
            }
            Ok(())
        })();
        cleanup();
        result
    }

    /// Bytes stored for two images that share the base's packages: one
    /// layer per package group (base, then each image's own), against one
    /// layer per image holding all its packages.
    fn layering(&mut self, dir: &Path, cache: &Path) -> Result<()> {
        let repo =
            "repository debian suite=\"bookworm\" keyring=\"keys/debian-archive-keyring.gpg\"\n";
        let shared = format!(
            "{repo}image base {{\n    layer base {{ packages required=#true }}\n}}\nimage jre {{\n    from base\n    layer jre {{ packages \"openjdk-17-jre-headless\" }}\n}}\nimage py {{\n    from base\n    layer py {{ packages \"python3\" }}\n}}\n"
        );
        let flat = format!(
            "{repo}image jre {{\n    layer all {{ packages required=#true \"openjdk-17-jre-headless\" }}\n}}\nimage py {{\n    layer all {{ packages required=#true \"python3\" }}\n}}\n"
        );
        let mut stored = Vec::new();
        for (name, text) in [("shared", shared), ("flat", flat)] {
            let spec = dir.join(format!("layering-{name}.kdl"));
            fs::write(&spec, text)?;
            self.compose(&spec, cache, false)?;
            let (bytes, _) = tree_size(&self.work.join("out/blobs/sha256"))?;
            stored.push(bytes);
        }
        self.note(&format!(
            "packages: layering: two images (JRE, python3) sharing the required base store {} bytes with a layer per package group, {} with one layer per image ({:.2}x)",
            stored[0],
            stored[1],
            stored[1] as f64 / stored[0] as f64
        ));
        Ok(())
    }

    fn warm_and_change(
        &mut self,
        name: &str,
        spec: &Path,
        alone: &Path,
        changed: &Path,
        bytes: u64,
    ) -> Result<()> {
        self.corpora
            .push(json!({"name": name, "bytes": bytes, "spec": spec}));
        let original =
            fs::read(changed).with_context(|| format!("reading {}", changed.display()))?;
        let mut edited = original.clone();
        edited.extend_from_slice(b"\n// changed by cargo xtask bench\n");
        for rep in 0..self.reps {
            eprintln!("bench: {name}: repetition {}", rep + 1);
            let cache = self.fresh("cache")?;
            let cold = self.compose(spec, &cache, false)?;
            self.add(name, "strata compose, cold", bytes, cold.sample);
            // The same command again: the layout of the last run is there.
            let warm = self.compose(spec, &cache, true)?;
            if warm.hits != warm.layers {
                bail!("the warm compose of {} missed the cache", spec.display());
            }
            self.add(name, "strata compose, warm no-op", bytes, warm.sample);
            let fresh = self.compose(spec, &cache, false)?;
            if fresh.hits != fresh.layers {
                bail!("the warm compose of {} missed the cache", spec.display());
            }
            self.add(
                name,
                "strata compose, warm, output removed first",
                bytes,
                fresh.sample,
            );
            fs::write(changed, &edited)?;
            let change = self.compose(spec, &cache, true);
            fs::write(changed, &original)?;
            let change = change?;
            if change.layers - change.hits != 1 {
                bail!(
                    "a one-file change rebuilt {} layers of {}, not one",
                    change.layers - change.hits,
                    spec.display()
                );
            }
            self.add(
                name,
                "strata compose, one file changed",
                bytes,
                change.sample,
            );
            let alone = self.cold(alone)?;
            self.add(
                name,
                "strata compose, cold, changed layer alone",
                bytes,
                alone.sample,
            );
        }
        let cold = self.median(name, "strata compose, cold");
        let warm = self.median(name, "strata compose, warm no-op");
        let change = self.median(name, "strata compose, one file changed");
        let alone = self.median(name, "strata compose, cold, changed layer alone");
        self.ratio(
            &format!("{name}: warm no-op / cold"),
            warm,
            cold,
            Some(("<", 0.03)),
        );
        self.ratio(
            &format!("{name}: one-file change / changed layer alone, cold"),
            change,
            alone,
            Some(("<=", 1.2)),
        );
        Ok(())
    }

    fn note(&mut self, s: &str) {
        if !self.notes.iter().any(|n| n == s) {
            self.notes.push(s.to_owned());
        }
    }

    fn report(&self, root: &Path, quick: bool) -> Result<()> {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "\n{:<8} {:<48} {:>9} {:>9} {:>9} {:>10} {:>12}",
            "corpus", "run", "median s", "CPU s", "MB/s", "peak RSS", "out bytes"
        );
        for r in &self.rows {
            let m = r.median();
            let rss = r.peak_rss().map_or_else(
                || "-".to_owned(),
                |k| format!("{:.1} MiB", k as f64 / 1024.0),
            );
            let out = r
                .out_bytes()
                .map_or_else(|| "-".to_owned(), |b| b.to_string());
            let _ = writeln!(
                t,
                "{:<8} {:<48} {:>9.3} {:>9.3} {:>9.1} {:>10} {:>12}",
                r.corpus,
                r.name,
                m,
                r.median_cpu(),
                r.input_bytes as f64 / 1e6 / m,
                rss,
                out
            );
        }
        let _ = writeln!(
            t,
            "\n{:<78} {:>8} {:>8}  target (on wall time)",
            "ratio", "wall", "CPU"
        );
        for r in &self.ratios {
            let target = match (r.target, r.met()) {
                (Some((op, v)), Some(met)) => {
                    format!("{op} {v}  {}", if met { "met" } else { "NOT MET" })
                }
                _ => "-".to_owned(),
            };
            let cpu = r.cpu.map_or_else(|| "-".to_owned(), |c| format!("{c:.3}"));
            let _ = writeln!(t, "{:<78} {:>8.3} {cpu:>8}  {target}", r.name, r.value);
        }
        let load_end = loadavg();
        let _ = writeln!(
            t,
            "load average at start {}, at end {load_end} ({} cores)",
            self.load_start,
            cores()
        );
        for n in &self.notes {
            let _ = writeln!(t, "note: {n}");
        }
        print!("{t}");

        let json = json!({
            "version": CORPUS_VERSION,
            "quick": quick,
            "reps": self.reps,
            "cores": cores(),
            "load_start": self.load_start,
            "load_end": load_end,
            "corpora": self.corpora,
            "runs": self.rows.iter().map(|r| json!({
                "corpus": r.corpus,
                "name": r.name,
                "median_s": r.median(),
                "times_s": r.samples.iter().map(|s| s.secs).collect::<Vec<_>>(),
                "median_cpu_s": r.median_cpu(),
                "cpu_s": r.samples.iter().map(|s| s.cpu).collect::<Vec<_>>(),
                "input_bytes": r.input_bytes,
                "peak_rss_kib": r.peak_rss(),
                "out_bytes": r.out_bytes(),
            })).collect::<Vec<_>>(),
            "ratios": self.ratios.iter().map(|r| json!({
                "name": r.name,
                "value": r.value,
                "cpu_value": r.cpu,
                "target": r.target.map(|(op, v)| format!("{op} {v}")),
                "met": r.met(),
            })).collect::<Vec<_>>(),
            "notes": self.notes,
        });
        let dir = root.join("target/bench");
        fs::create_dir_all(&dir)?;
        let path = dir.join("results.json");
        fs::write(&path, serde_json::to_string_pretty(&json)? + "\n")?;
        println!("\nwrote {}", path.display());
        Ok(())
    }
}

/// What `/usr/bin/time` writes: user and system CPU seconds, peak RSS in KiB.
const USAGE_FORMAT: &str = "%U %S %M";

/// CPU seconds and peak RSS (KiB) from a `/usr/bin/time -f USAGE_FORMAT` file.
fn read_usage(path: &Path) -> Result<(f64, u64)> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let last = text.lines().last().unwrap_or_default();
    let f: Vec<&str> = last.split_whitespace().collect();
    let parse = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    match (parse(0), parse(1), parse(2)) {
        (Some(u), Some(s), Some(m)) => Ok((u + s, m as u64)),
        _ => bail!(
            "unexpected /usr/bin/time output {last:?} in {}",
            path.display()
        ),
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Whether a tool answers `--version`.
/// `'text'` for bash, with its single quotes escaped.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Whether this process runs as root (`run` steps' unpacked layers, chroot).
fn rustix_is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `cp -a SRC DST` (untimed set-up of the umoci and buildah runs).
fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    fs::create_dir_all(dst)?;
    let st = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dst)
        .status()
        .context("running cp -a")?;
    if !st.success() {
        bail!("cp -a {} {} failed ({st})", src.display(), dst.display());
    }
    Ok(())
}

fn largest_file(dir: &Path) -> Result<Option<u64>> {
    let mut max = None;
    for e in fs::read_dir(dir)? {
        let len = e?.metadata()?.len();
        max = Some(max.map_or(len, |m: u64| m.max(len)));
    }
    Ok(max)
}

/// The generated multi-layer spec over `jdk` and `small`, written into `corpus`.
fn multi_spec(corpus: &Path) -> Result<PathBuf> {
    let spec = corpus.join("multi.kdl");
    fs::write(
        &spec,
        "// cargo xtask bench: several layers over the jdk and small corpora\n\
         image multi {\n\
         \x20   layer runtime { copy \"jdk/jre\" to=\"/opt/jdk/\" }\n\
         \x20   layer tools {\n\
         \x20       copy \"jdk/bin\" to=\"/opt/jdk/\"\n\
         \x20       copy \"jdk/lib\" to=\"/opt/jdk/\"\n\
         \x20       copy \"jdk/include\" to=\"/opt/jdk/\"\n\
         \x20   }\n\
         \x20   layer src { copy \"jdk/src\" to=\"/opt/jdk/\" }\n\
         \x20   layer assets { copy \"small\" to=\"/srv/\" }\n\
         }\n",
    )?;
    Ok(spec)
}
