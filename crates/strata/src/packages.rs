//! `packages` layers: each is resolved against its spec's `repository`
//! (signed, verified, cached by `strata-deb`), and becomes ordinary layer
//! operations before planning: one `Unpack` per package of its `.deb`'s
//! data archive, and the files that make dpkg see the packages installed.
//!
//! Nothing of a package runs: its data archive is unpacked by the layer
//! builder (with its checks against hostile archives), and of its
//! maintainer scripts' effects only what dpkg itself records is written:
//! `/var/lib/dpkg/status` (every package of the image's `packages` layers
//! so far, so `dpkg -l` lists them all), `/var/lib/dpkg/info/PKG.list` (the
//! paths of its data archive) and `PKG.md5sums` and `PKG.conffiles` from the
//! package's control archive.
//!
//! Each package's input digest is made from its `.deb`'s sha256 (which the
//! signed index vouches for), so a layer's key covers the resolved set:
//! names, versions and hashes. The `.deb` files and their data archives are
//! kept in the cache's `debs-v1` directory, by sha256.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use strata_deb::control::Paragraph;
use strata_deb::debfile::DebFile;
use strata_deb::maint::{self, Alternative, Users};
use strata_deb::repo::{self, Fetcher, Signed, Source};

use crate::resolution_memo as memo;
use strata_deb::resolve::{self, Installed, Request, Universe};

use strata_deb::{Keyring, Package, status};
use strata_layer::{ImagePath, JobOp};
use strata_plan::InputDigest;
use strata_plan::PackageOps;
use strata_spec::{Op, Spec};

use crate::Error;

/// Bump when what a package's input digest stands for changes.
const DEB_INPUT_VERSION: &[u8] = b"strata-deb-v1";

/// The most entries a package's data archive may list (the largest
/// Debian packages hold about 100 000 files).
const MAX_ENTRIES: usize = 2_000_000;

/// How `packages` layers are resolved.
#[derive(Debug, Clone, Default)]
pub struct PackageOptions {
    /// The mirror for repositories whose spec gives no `url`; the host's
    /// apt sources when unset.
    pub mirror: Option<String>,
    /// `compose --locked`: the packages of each layer (`image/layer`) as
    /// the lock records them. Such a layer installs exactly these, from the
    /// cache when it holds them, else from the mirror, without resolving.
    pub locked: BTreeMap<String, Vec<LockedPackage>>,
}

/// One package installed by a layer, as a lock records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub sha256: String,
    pub size: u64,
    /// The `.deb`'s path in the repository (its `Filename`).
    pub filename: String,
}

impl LockedPackage {
    /// The lock's text: `NAME VERSION ARCH SHA256 SIZE FILENAME`.
    pub fn line(&self) -> String {
        format!(
            "{} {} {} {} {} {}",
            self.name, self.version, self.arch, self.sha256, self.size, self.filename
        )
    }

    /// Reads [`LockedPackage::line`] back; `None` if it is not one.
    pub fn parse(line: &str) -> Option<LockedPackage> {
        let mut w = line.split(' ');
        let p = LockedPackage {
            name: w.next()?.to_owned(),
            version: w.next()?.to_owned(),
            arch: w.next()?.to_owned(),
            sha256: w.next()?.to_owned(),
            size: w.next()?.parse().ok()?,
            filename: w.next()?.to_owned(),
        };
        let ok = w.next().is_none()
            && strata_deb::Sha256::from_hex(&p.sha256).is_some()
            && strata_deb::relation::valid_name(&p.name)
            && !p.filename.split('/').any(|c| c == ".." || c.is_empty());
        ok.then_some(p)
    }

    fn of(p: &Package) -> LockedPackage {
        LockedPackage {
            name: p.name.clone(),
            version: p.version.to_string(),
            arch: p.arch.clone(),
            sha256: p.sha256.hex(),
            size: p.size,
            filename: p.filename.clone(),
        }
    }
}

/// The outcome for a spec: each `packages` layer's operations and packages.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub ops: BTreeMap<(String, String), PackageOps>,
    pub packages: BTreeMap<(String, String), Vec<LockedPackage>>,
    /// The whole set of each layer with a layering budget, by
    /// `image/layer`, before it is split.
    pub sets: BTreeMap<String, Vec<LockedPackage>>,
}

/// What the layers below a layer have installed.
#[derive(Clone, Default)]
struct Below {
    installed: Vec<Installed>,
    entries: Vec<Paragraph>,
    /// The CA certificates the packages ship, by path.
    certs: BTreeMap<String, Vec<u8>>,
    /// Whether `ca-certificates` is installed.
    ca_certificates: bool,
    /// Every alternative's choices so far, by name.
    alternatives: BTreeMap<String, Vec<Alternative>>,
    /// Every path the packages so far ship (their `info/PKG.list`).
    shipped: BTreeSet<String>,
    /// The users and groups, once `base-passwd` is installed.
    users: Option<Users>,
    /// ucf's `hashfile`: the md5 of each file it installed, by path.
    ucf_hashes: BTreeMap<String, String>,
    /// dpkg's `statoverride` database: `USER GROUP MODE PATH` by path.
    statoverrides: BTreeMap<String, String>,
    /// The lock line of every package installed so far, in order: what
    /// the rest of this record is derived from (a resolution's key).
    lines: Vec<String>,
    /// The control file of every package installed so far, in order.
    controls: Vec<String>,
    /// The paths effects wrote in the layers so far (not in any package's
    /// list).
    made: BTreeSet<String>,
}

/// A package as its own control file describes it (with the lock's
/// `Filename`, `Size` and `SHA256`, which an index would add).
fn control_package(l: &LockedPackage, control: &str) -> Result<Package, strata_deb::Error> {
    let text = format!(
        "{}\nFilename: {}\nSize: {}\nSHA256: {}\n",
        control.trim_end(),
        l.filename,
        l.size,
        l.sha256
    );
    let mut parsed = strata_deb::packages::parse_index(&l.filename, &text)?;
    match parsed.pop() {
        Some(p) if parsed.is_empty() => Ok(p),
        _ => Err(strata_deb::Error::BadPackage {
            file: l.filename.clone(),
            package: l.name.clone(),
            reason: "its control file is not one paragraph".into(),
        }),
    }
}

/// The host's Debian mirror: the first http(s) repository of its apt
/// sources that serves Debian's main archive (not its security suite).
/// What the tests and benches that need real packages fetch from, so that
/// no mirror's name is ever written in the repository.
pub fn host_debian_mirror() -> Option<String> {
    strata_deb::repo::host_mirrors(Path::new("/"))
        .into_iter()
        .find(|u| u.starts_with("http") && u.contains("/debian") && !u.contains("security"))
}

pub(crate) fn err(layer: &str, source: strata_deb::Error) -> Error {
    Error::Packages {
        layer: layer.to_owned(),
        source: Box::new(source),
    }
}

/// Resolves every `packages` layer of `spec` (whose directory is
/// `spec_dir`), fetching into `cache_dir`.
///
/// A layer with a layering budget (`layers=N`) is split into at most N
/// layers (see [`crate::layering`]): the sets are resolved once to see
/// which packages the spec's budgeted layers share, then again with the
/// split.
pub fn resolve(
    spec: &Spec,
    spec_dir: &Path,
    cache_dir: &Path,
    opts: &PackageOptions,
) -> Result<Resolved, Error> {
    let budgeted = spec
        .images
        .iter()
        .flat_map(|i| &i.layers)
        .flat_map(|l| &l.ops)
        .any(|o| matches!(&o.value, Op::Packages(p) if p.layers.as_ref().is_some_and(|n| n.value > 1)));
    if !budgeted {
        return resolve_with(spec, spec_dir, cache_dir, opts, None);
    }
    let first = resolve_with(spec, spec_dir, cache_dir, opts, None)?;
    let sharing = crate::layering::Sharing::of(&first.sets);
    resolve_with(spec, spec_dir, cache_dir, opts, Some(&sharing))
}

fn resolve_with(
    spec: &Spec,
    spec_dir: &Path,
    cache_dir: &Path,
    opts: &PackageOptions,
    sharing: Option<&crate::layering::Sharing>,
) -> Result<Resolved, Error> {
    let mut out = Resolved::default();
    let any = spec
        .images
        .iter()
        .flat_map(|i| &i.layers)
        .flat_map(|l| &l.ops)
        .any(|o| matches!(o.value, Op::Packages(_)));
    if !any {
        return Ok(out);
    }
    let mut fetcher = Fetcher::new(&cache_dir.join("debs-v1")).map_err(|e| err("(cache)", e))?;
    let mut repos: BTreeMap<String, Repo> = BTreeMap::new();
    let mut done: BTreeMap<String, Below> = BTreeMap::new();
    // Parents first: an image's packages build on those of its `from`.
    let mut pending: Vec<usize> = (0..spec.images.len()).collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for idx in pending {
            let image = &spec.images[idx];
            let parent = image.from.as_ref().map(|f| f.value.clone());
            let below = match &parent {
                Some(p) if spec.image(p).is_some() => match done.get(p) {
                    Some(b) => b.clone(),
                    None => {
                        rest.push(idx);
                        continue;
                    }
                },
                _ => Below::default(),
            };
            let mut below = below;
            for layer in &image.layers {
                let reqs: Vec<&strata_spec::PackagesOp> = layer
                    .ops
                    .iter()
                    .filter_map(|o| match &o.value {
                        Op::Packages(p) => Some(p),
                        _ => None,
                    })
                    .collect();
                if reqs.is_empty() {
                    continue;
                }
                let qualified = format!("{}/{}", image.name.value, layer.name.value);
                let repo_name = reqs
                    .iter()
                    .find_map(|p| p.repository.as_ref().map(|r| r.value.clone()))
                    .or_else(|| spec.repositories.first().map(|r| r.name.value.clone()))
                    .unwrap_or_default();
                let budget = reqs
                    .iter()
                    .find_map(|p| p.layers.as_ref().map(|n| n.value))
                    .unwrap_or(1);
                // A split layer's lock records each part under its own
                // name: the lower parts first, then the layer's.
                let locked_set: Option<Vec<LockedPackage>> =
                    opts.locked.get(&qualified).map(|top| {
                        let mut all = Vec::new();
                        for part in 1.. {
                            match opts
                                .locked
                                .get(&format!("{qualified}{}{part}", strata_plan::PART_SEPARATOR))
                            {
                                Some(p) => all.extend(p.iter().cloned()),
                                None => break,
                            }
                        }
                        all.extend(top.iter().cloned());
                        all
                    });
                let locked = locked_set.is_some();
                let set: Vec<LockedPackage> = if let Some(set) = locked_set {
                    crate::locked_check::check_requests(spec, &qualified, &reqs, &set)?;
                    set
                } else {
                    if !repos.contains_key(&repo_name) {
                        let signed =
                            open_repository(spec, spec_dir, &repo_name, &mut fetcher, opts)
                                .map_err(|e| err(&qualified, e))?;
                        let indexes = signed.indexes().map_err(|e| err(&qualified, e))?;
                        let identity = memo::identity(&signed.source, &indexes);
                        repos.insert(
                            repo_name.clone(),
                            Repo {
                                url: signed.source.url.clone(),
                                identity,
                                signed,
                                universe: None,
                            },
                        );
                    }
                    let repo = repos.get_mut(&repo_name).expect("inserted above");
                    let mut key = memo::MemoKey::new(&repo.identity);
                    for p in &reqs {
                        if p.required {
                            key.part("required", "");
                        }
                        for n in &p.packages {
                            key.part("request", &n.value);
                        }
                    }
                    for line in &below.lines {
                        key.part("below", line);
                    }
                    match memo::get(cache_dir, &key) {
                        Some(set) => set,
                        None => {
                            let set = resolve_layer(repo, &mut fetcher, &reqs, &below, &qualified)?;
                            memo::put(cache_dir, &key, &set);
                            set
                        }
                    }
                };
                let base_url = match repos.get(&repo_name) {
                    Some(r) => r.url.clone(),
                    None => {
                        repository_url(spec, &repo_name, opts).map_err(|e| err(&qualified, e))?
                    }
                };
                let parts = match sharing {
                    Some(sharing) if budget > 1 => sharing.split(&set, budget as usize),
                    _ => vec![set.clone()],
                };
                let n = parts.len();
                for (k, part) in parts.iter().enumerate() {
                    let name = if k + 1 == n {
                        layer.name.value.clone()
                    } else {
                        format!(
                            "{}{}{}",
                            layer.name.value,
                            strata_plan::PART_SEPARATOR,
                            k + 1
                        )
                    };
                    let (ops, locked) = layer_ops(
                        &format!("{}/{name}", image.name.value),
                        &base_url,
                        part,
                        &mut below,
                        &mut fetcher,
                        cache_dir,
                    )?;
                    let key = (image.name.value.clone(), name);
                    out.ops.insert(key.clone(), ops);
                    out.packages.insert(key, locked);
                }
                if locked {
                    let nodes: Vec<&strata_spec::Spanned<Op>> = layer
                        .ops
                        .iter()
                        .filter(|o| matches!(o.value, Op::Packages(_)))
                        .collect();
                    let first = below.controls.len().saturating_sub(set.len());
                    let parsed = set
                        .iter()
                        .zip(&below.controls[first..])
                        .map(|(l, control)| Ok((l.clone(), control_package(l, control)?)))
                        .collect::<Result<Vec<_>, strata_deb::Error>>()
                        .map_err(|e| err(&qualified, e))?;
                    crate::locked_check::check_wanted(spec, &qualified, &nodes, &reqs, &parsed)?;
                }
                if budget > 1 {
                    out.sets.insert(qualified.clone(), set);
                }
            }
            done.insert(image.name.value.clone(), below);
        }
        if rest.len() == before {
            // A `from` cycle: the planner reports it, with its spans.
            break;
        }
        pending = rest;
    }
    Ok(out)
}

/// A repository a compose resolves against: its verified `InRelease`, and
/// its indexes read only when a layer's resolution is not remembered
/// (see [`memo`]).
struct Repo {
    url: String,
    identity: [u8; 32],
    signed: Signed,
    /// Once read.
    universe: Option<Universe>,
}

/// Resolves one layer's requests against `repo` (reading its indexes the
/// first time) on top of `below`.
fn resolve_layer(
    repo: &mut Repo,
    fetcher: &mut Fetcher,
    reqs: &[&strata_spec::PackagesOp],
    below: &Below,
    layer: &str,
) -> Result<Vec<LockedPackage>, Error> {
    let universe = match repo.universe.take() {
        Some(u) => u,
        None => {
            let mut r = repo.signed.load(fetcher).map_err(|e| err(layer, e))?;
            // Moved, not copied: an index is tens of megabytes.
            let native = r.native().to_owned();
            Universe::new(std::mem::take(&mut r.packages), &native)
        }
    };
    let set = resolve_in(&universe, reqs, below, layer);
    repo.universe = Some(universe);
    set
}

fn resolve_in(
    universe: &Universe,
    reqs: &[&strata_spec::PackagesOp],
    below: &Below,
    layer: &str,
) -> Result<Vec<LockedPackage>, Error> {
    let mut requests = Vec::new();
    for p in reqs {
        if p.required {
            requests.extend(universe.required());
        }
        for n in &p.packages {
            let r = Request::parse(&n.value).map_err(|e| err(layer, e.into()))?;
            requests.push(r);
        }
    }
    let resolution = resolve::resolve(universe, &below.installed, &requests)
        .map_err(|e| err(layer, e.into()))?;
    Ok(resolution.packages.iter().map(LockedPackage::of).collect())
}

/// The repository's source: URL from the spec, else `--mirror`, else the
/// host's apt sources; its `InRelease` fetched and verified.
fn open_repository(
    spec: &Spec,
    spec_dir: &Path,
    name: &str,
    fetcher: &mut Fetcher,
    opts: &PackageOptions,
) -> Result<Signed, strata_deb::Error> {
    let url = repository_url(spec, name, opts)?;
    let Some(r) = spec.repositories.iter().find(|r| r.name.value == name) else {
        return Err(no_repository(name));
    };
    let keyring_path = spec_dir.join(&r.keyring.value);
    let bytes = std::fs::read(&keyring_path).map_err(|e| strata_deb::Error::Io {
        path: keyring_path.clone(),
        source: e,
    })?;
    let keyring = Keyring::from_bytes(&keyring_path.display().to_string(), &bytes)?;
    let source = Source {
        url,
        suite: r.suite.value.clone(),
        components: r.components.clone(),
        architectures: r.architectures.clone(),
    };
    let checks = strata_deb::release::Checks {
        valid_until: r.check_valid_until,
        ..Default::default()
    };
    Signed::fetch(&source, &keyring, fetcher, &checks)
}

fn no_repository(name: &str) -> strata_deb::Error {
    strata_deb::Error::BadRelease {
        file: name.to_owned(),
        reason: "no such repository in the spec".into(),
    }
}

/// A repository's URL: from the spec, else `--mirror`, else the host's apt
/// sources.
fn repository_url(
    spec: &Spec,
    name: &str,
    opts: &PackageOptions,
) -> Result<String, strata_deb::Error> {
    let Some(r) = spec.repositories.iter().find(|r| r.name.value == name) else {
        return Err(no_repository(name));
    };
    Ok(match (&r.url, &opts.mirror) {
        (Some(u), _) => u.value.clone(),
        (None, Some(m)) => m.clone(),
        (None, None) => repo::host_mirrors(Path::new("/"))
            .into_iter()
            .next()
            .ok_or_else(|| strata_deb::Error::Fetch {
                url: format!("repository {name}"),
                reason:
                    "no url=, no --mirror, and the host has no apt sources to take a mirror from"
                        .into(),
            })?,
    })
}

/// The operations of one layer installing `packages`, on top of `below`
/// (which this layer's packages are added to).
fn layer_ops(
    layer: &str,
    base_url: &str,
    packages: &[LockedPackage],
    below: &mut Below,
    fetcher: &mut Fetcher,
    cache_dir: &Path,
) -> Result<(PackageOps, Vec<LockedPackage>), Error> {
    let data_dir = cache_dir.join("debs-v1").join("data");
    std::fs::create_dir_all(&data_dir).map_err(|e| Error::Io {
        path: data_dir.clone(),
        source: e,
    })?;
    let mut ops = PackageOps::default();
    let mut info: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let (certs_before, had_ca_certificates) = (below.certs.len(), below.ca_certificates);
    // What this layer's packages' postinsts do, in install order.
    let mut touched: BTreeSet<String> = BTreeSet::new();
    let mut sysusers: Vec<String> = Vec::new();
    let mut tmpfiles: Vec<String> = Vec::new();
    let mut ucf: Vec<(maint::UcfCopy, String, Option<String>)> = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    let mut mkdirs: Vec<(String, Option<u32>)> = Vec::new();
    let users_before = below.users.clone();
    for p in packages {
        let url = format!("{}/{}", base_url.trim_end_matches('/'), p.filename);
        let sha256 = strata_deb::Sha256::from_hex(&p.sha256).ok_or_else(|| {
            err(
                layer,
                strata_deb::Error::BadPackage {
                    file: "(lock)".into(),
                    package: p.name.clone(),
                    reason: format!("bad sha256 {:?}", p.sha256),
                },
            )
        })?;
        let facts = deb_facts(&url, p, &sha256, fetcher, &data_dir).map_err(|e| err(layer, e))?;
        let entry = status::entry(&p.filename, &facts.control).map_err(|e| err(layer, e))?;
        // What the package is, from its own control file: the lower
        // layers' packages for the layers above.
        let installed = status::read(&p.filename, &status::write(std::slice::from_ref(&entry)))
            .map_err(|e| err(layer, e))?;
        let same = entry.get("Multi-Arch") == Some("same");
        below.entries.push(entry);
        below.installed.extend(installed);
        below.lines.push(p.line());
        below.controls.push(facts.control.clone());
        // dpkg names a Multi-Arch: same package's files NAME:ARCH.
        let info_name = if same {
            format!("{}:{}", p.name, p.arch)
        } else {
            p.name.clone()
        };
        for (member, text) in &facts.info {
            info.insert(format!("{info_name}.{member}"), text.clone().into_bytes());
        }
        below.certs.extend(
            facts
                .certs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into_bytes())),
        );
        below.ca_certificates |= p.name == "ca-certificates";
        if let Some(list) = facts.info.get("list") {
            below.shipped.extend(list.lines().map(str::to_owned));
        }
        let effects = facts
            .postinst
            .as_deref()
            .map(maint::postinst)
            .unwrap_or_default();
        let mut alts = Vec::new();
        for t in facts.jinfo.values() {
            java_alternatives(t, &mut alts);
        }
        alts.extend(effects.alternatives);
        for a in alts {
            touched.insert(a.name.clone());
            let choices = below.alternatives.entry(a.name.clone()).or_default();
            choices.retain(|c| c.path != a.path);
            choices.push(a);
        }
        if below.users.is_none()
            && let (Some(pw), Some(gr)) = (
                facts.files.get(PASSWD_MASTER),
                facts.files.get(GROUP_MASTER),
            )
        {
            below.users = Some(Users::from_masters(pw, gr));
        }
        // The files a `systemd-sysusers`/`systemd-tmpfiles` call names (all
        // of the package's when it names none).
        let named = |dir: &str, names: &Option<Vec<String>>| -> Vec<String> {
            let Some(names) = names else {
                return Vec::new();
            };
            facts
                .files
                .iter()
                .filter_map(|(path, text)| {
                    let n = path.strip_prefix(dir)?;
                    (names.is_empty() || names.iter().any(|x| x == n)).then(|| text.clone())
                })
                .collect()
        };
        let entries = std::rc::Rc::new(facts.entries.clone());
        let mut made = effects.made.into_iter().peekable();
        for (k, perm) in effects.perms.into_iter().enumerate() {
            while let Some((_, m)) = made.next_if(|(at, _)| *at <= k) {
                steps.push(Step::Made(m, entries.clone()));
            }
            steps.push(Step::Perm(perm, entries.clone()));
        }
        steps.extend(made.map(|(_, m)| Step::Made(m, entries.clone())));
        mkdirs.extend(effects.mkdirs);
        sysusers.extend(named(SYSUSERS_DIR, &effects.sysusers));
        tmpfiles.extend(named(TMPFILES_DIR, &effects.tmpfiles));
        for u in effects.ucf {
            let Some(content) = facts.files.get(&u.src) else {
                continue;
            };
            let md5 = facts.info.get("md5sums").and_then(|m| {
                m.lines().find_map(|l| {
                    let (sum, path) = l.split_once("  ")?;
                    (format!("/{path}") == u.src).then(|| sum.to_owned())
                })
            });
            ucf.push((u, content.clone(), md5));
        }
        let data = data_dir.join(&facts.data_file);
        let mut digest = blake3::Hasher::new();
        digest.update(DEB_INPUT_VERSION);
        digest.update(&sha256.0);
        // Opened now, and packed from this handle: the cache's file is what
        // was verified, whatever happens to its path meanwhile.
        let archive = strata_layer::HostInput::open(&data).map_err(|e| Error::Io {
            path: data.clone(),
            source: e,
        })?;
        ops.ops.push(JobOp::Unpack {
            archive,
            to: ImagePath::root(),
            owner: None,
            mode: None,
        });
        ops.inputs.push(InputDigest {
            src: format!("{}_{}_{}.deb", p.name, p.version, p.arch),
            digest: *digest.finalize().as_bytes(),
            path: data,
        });
        ops.lock.push(p.line());
    }
    let locked = packages.to_vec();
    let path = |s: &str| ImagePath::parse_abs(s).expect("a literal absolute path");
    for dir in ["/var/lib/dpkg/info", "/var/lib/dpkg/updates"] {
        ops.ops.push(JobOp::Mkdir {
            path: path(dir),
            mode: Some(0o755),
            owner: None,
        });
    }
    // The database's format: 1 names a Multi-Arch: same package's files
    // NAME:ARCH, as dpkg has since 1.16.2 (without it, dpkg reads the
    // old unqualified names).
    info.insert("format".to_owned(), b"1\n".to_vec());
    for (name, content) in info {
        ops.ops.push(JobOp::File {
            path: path(&format!("/var/lib/dpkg/info/{name}")),
            content,
            mode: Some(0o644),
            owner: None,
        });
    }
    maint_effects(
        &mut ops,
        below,
        &touched,
        &sysusers,
        &tmpfiles,
        &ucf,
        users_before,
        &path,
    );
    // Last: the owners and modes the scripts set apply to everything the
    // layer has by then (ucf's files, tmpfiles' directories).
    // `systemd-tmpfiles --create` runs after the script's own commands.
    for conf in &tmpfiles {
        let none = std::rc::Rc::new(BTreeMap::new());
        steps.extend(
            maint::tmpfiles_adjust(conf)
                .into_iter()
                .map(|p| Step::Perm(p, none.clone())),
        );
    }
    perm_effects(&mut ops, below, &mkdirs, &steps, &path);
    // Made again only by a layer that changes what goes into it.
    if below.ca_certificates && (below.certs.len() != certs_before || !had_ca_certificates) {
        ca_certificates(&below.certs, &mut ops, &path);
    }
    for o in &ops.ops {
        if let JobOp::File { path, .. } | JobOp::Symlink { path, .. } | JobOp::Mkdir { path, .. } =
            o
        {
            below.made.insert(path.display());
        }
    }
    ops.ops.push(JobOp::File {
        path: path("/var/lib/dpkg/status"),
        content: status::write(&below.entries).into_bytes(),
        mode: Some(0o644),
        owner: None,
    });
    Ok((ops, locked))
}

/// Whether a data archive's path is one the declarative postinst effects
/// read: a `sysusers.d` or `tmpfiles.d` file, or `base-passwd`'s masters.
fn is_effect_file(p: &str) -> bool {
    let conf_in = |dir: &str| {
        p.strip_prefix(dir)
            .is_some_and(|n| n.ends_with(".conf") && !n.contains('/'))
    };
    conf_in(SYSUSERS_DIR) || conf_in(TMPFILES_DIR) || p == PASSWD_MASTER || p == GROUP_MASTER
}

const SYSUSERS_DIR: &str = "/usr/lib/sysusers.d/";
const TMPFILES_DIR: &str = "/usr/lib/tmpfiles.d/";
const PASSWD_MASTER: &str = "/usr/share/base-passwd/passwd.master";
const GROUP_MASTER: &str = "/usr/share/base-passwd/group.master";

/// Whether a data archive's path is a Java runtime's `.jinfo` file.
fn is_jinfo(p: &str) -> bool {
    p.starts_with("/usr/lib/jvm/.") && p.ends_with(".jinfo") && !p[1..].contains("/.jinfo")
}

/// The alternatives a Java runtime's postinst installs, from its `.jinfo`
/// (the data `update-java-alternatives` reads): each `hl` (headless) and
/// `jre` line `TYPE NAME PATH`, as `/usr/bin/NAME` at the file's
/// `priority=` (the highest priority wins a name, as update-alternatives'
/// auto mode does: [`maint::best`]).
fn java_alternatives(jinfo: &str, out: &mut Vec<Alternative>) {
    let priority = jinfo
        .lines()
        .find_map(|l| l.strip_prefix("priority="))
        .and_then(|p| p.trim().parse::<i64>().ok())
        .unwrap_or(0);
    for line in jinfo.lines() {
        let mut w = line.split_whitespace();
        let (Some(kind), Some(name), Some(path), None) = (w.next(), w.next(), w.next(), w.next())
        else {
            continue;
        };
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b));
        if !matches!(kind, "hl" | "jre") || !name_ok || !path.starts_with('/') {
            continue;
        }
        out.push(Alternative {
            name: name.to_owned(),
            link: format!("/usr/bin/{name}"),
            path: path.to_owned(),
            priority,
            slaves: Vec::new(),
        });
    }
}

/// The files of what this layer's postinsts would have done (see
/// [`maint`]): alternatives whose choices changed, users and groups, the
/// `tmpfiles.d` directories, ucf's configuration files.
#[allow(clippy::too_many_arguments)]
fn maint_effects(
    ops: &mut PackageOps,
    below: &mut Below,
    touched: &BTreeSet<String>,
    sysusers: &[String],
    tmpfiles: &[String],
    ucf: &[(maint::UcfCopy, String, Option<String>)],
    users_before: Option<Users>,
    path: &dyn Fn(&str) -> ImagePath,
) {
    let root = strata_layer::Owner { uid: 0, gid: 0 };
    for name in touched {
        // Only choices some package ships: update-alternatives refuses a
        // missing one (a JRE's jinfo also lists the JDK's tools).
        let choices: Vec<Alternative> = below.alternatives[name]
            .iter()
            .filter(|c| below.shipped.contains(&c.path))
            .cloned()
            .collect();
        let (Some(best), Some(record)) =
            (maint::best(&choices), maint::alternatives_record(&choices))
        else {
            continue;
        };
        let mut links = vec![(best.link.clone(), best.name.clone(), best.path.clone())];
        links.extend(
            best.slaves
                .iter()
                .filter(|(_, _, p)| below.shipped.contains(p))
                .cloned(),
        );
        let Some(db) = ImagePath::parse_abs(&format!("/var/lib/dpkg/alternatives/{name}")) else {
            continue;
        };
        for (link, name, target) in links {
            let (Some(link), Some(alt)) = (
                ImagePath::parse_abs(&link),
                ImagePath::parse_abs(&format!("/etc/alternatives/{name}")),
            ) else {
                continue;
            };
            ops.ops.push(JobOp::Symlink {
                path: link,
                target: format!("/etc/alternatives/{name}").into_bytes(),
                owner: None,
            });
            ops.ops.push(JobOp::Symlink {
                path: alt,
                target: target.into_bytes(),
                owner: None,
            });
        }
        ops.ops.push(JobOp::File {
            path: db,
            content: record.into_bytes(),
            mode: Some(0o644),
            owner: None,
        });
    }
    if let Some(users) = &mut below.users {
        for conf in sysusers {
            users.apply_sysusers(conf);
        }
        if users_before.as_ref() != Some(users) {
            let shadow = strata_layer::Owner {
                uid: 0,
                gid: users.gid("shadow").unwrap_or(0),
            };
            for (file, content, mode, owner) in [
                ("/etc/passwd", users.passwd(), 0o644, root),
                ("/etc/group", users.group(), 0o644, root),
                ("/etc/shadow", users.shadow(), 0o640, shadow),
                ("/etc/gshadow", users.gshadow(), 0o640, shadow),
            ] {
                ops.ops.push(JobOp::File {
                    path: path(file),
                    content: content.into_bytes(),
                    mode: Some(mode),
                    owner: Some(owner),
                });
            }
        }
    }
    for conf in tmpfiles {
        for d in maint::tmpfiles_dirs(conf) {
            let id = |name: &str, f: &dyn Fn(&Users, &str) -> Option<u32>| match &below.users {
                Some(u) => f(u, name),
                None => (name == "root").then_some(0),
            };
            let (Some(uid), Some(gid), Some(p)) = (
                id(&d.user, &|u, n| u.uid(n)),
                id(&d.group, &|u, n| u.gid(n)),
                ImagePath::parse_abs(&d.path),
            ) else {
                continue;
            };
            ops.ops.push(JobOp::Mkdir {
                path: p,
                mode: Some(d.mode),
                owner: Some(strata_layer::Owner { uid, gid }),
            });
        }
    }
    let mut ucf_written = false;
    for (copy, content, md5) in ucf {
        // A fresh install: ucf installs the template where no package
        // ships the file.
        let (false, Some(dest), Some(cached)) = (
            below.shipped.contains(&copy.dest),
            ImagePath::parse_abs(&copy.dest),
            ImagePath::parse_abs(&format!(
                "/var/lib/ucf/cache/{}",
                copy.dest.replace('/', ":")
            )),
        ) else {
            continue;
        };
        for p in [dest, cached] {
            ops.ops.push(JobOp::File {
                path: p,
                content: content.clone().into_bytes(),
                mode: Some(0o644),
                owner: None,
            });
        }
        if let Some(md5) = md5 {
            below.ucf_hashes.insert(copy.dest.clone(), md5.clone());
        }
        ucf_written = true;
    }
    if ucf_written {
        // As ucf writes it: `MD5  PATH` lines through sort(1).
        let mut lines: Vec<String> = below
            .ucf_hashes
            .iter()
            .map(|(p, m)| format!("{m}  {p}\n"))
            .collect();
        lines.sort();
        ops.ops.push(JobOp::File {
            path: path("/var/lib/ucf/hashfile"),
            content: lines.concat().into_bytes(),
            mode: Some(0o644),
            owner: None,
        });
    }
}

/// What the postinsts' `mkdir`, `chown`, `chmod` and `dpkg-statoverride
/// --add` do (see [`maint`]): a directory no package ships is made (root's,
/// 0755 unless `-m`); owners and modes are set on what this layer has
/// (`JobOp::Attr`), users and groups by their names in the image's
/// `/etc/passwd` and `/etc/group` as this layer leaves them (a name it
/// lacks leaves that command out); `dpkg-statoverride` entries are also
/// written to dpkg's database.
/// One postinst command whose effect depends on what came before it, in
/// install and script order, with the data entries of its package that it
/// may read (a `cp` source, a symbolic `chmod`'s target).
enum Step {
    Perm(maint::Perm, std::rc::Rc<BTreeMap<String, DataEntry>>),
    Made(maint::Made, std::rc::Rc<BTreeMap<String, DataEntry>>),
}

/// The modes strata knows of the paths this layer's steps touch: from the
/// packages' data entries, then as the steps change them.
type Known = BTreeMap<String, (u32, bool)>;

/// The files a `touch`, redirection or `cp` makes (see [`maint::Made`]),
/// where nothing is yet: no package ships it, no effect below or in this
/// layer wrote it. A `cp` whose source is not all known (a file that is
/// not UTF-8 text, a device) is left out whole.
fn made_effects(
    ops: &mut PackageOps,
    below: &Below,
    made: &maint::Made,
    entries: &BTreeMap<String, DataEntry>,
    known: &mut Known,
) {
    let written: BTreeSet<String> = ops
        .ops
        .iter()
        .filter_map(|o| match o {
            JobOp::File { path, .. } | JobOp::Symlink { path, .. } | JobOp::Mkdir { path, .. } => {
                Some(path.display())
            }
            _ => None,
        })
        .collect();
    let exists =
        |p: &str| below.shipped.contains(p) || below.made.contains(p) || written.contains(p);
    let file = |ops: &mut PackageOps, p: &str, content: &str, mode: u32, owner| {
        if let Some(at) = ImagePath::parse_abs(p) {
            ops.ops.push(JobOp::File {
                path: at,
                content: content.as_bytes().to_vec(),
                mode: Some(mode),
                owner,
            });
        }
    };
    match made {
        maint::Made::Touch { path, mode } => {
            if !exists(path) {
                file(ops, path, "", *mode, None);
                known.insert(path.clone(), (*mode, false));
            }
        }
        maint::Made::Write {
            path,
            content,
            mode,
            append: _,
        } => {
            // Over an existing file its mode and content are not known
            // here: left out (`>>` would append, `>` keep the mode).
            if !exists(path) {
                file(ops, path, content, *mode, None);
                known.insert(path.clone(), (*mode, false));
            }
        }
        maint::Made::Copy {
            src,
            dest,
            recursive,
            preserve,
            umask,
        } => {
            let Some(top) = entries.get(src) else {
                return;
            };
            if exists(dest) || (top.kind == "dir" && !recursive) {
                return;
            }
            let below_src: Vec<(&String, &DataEntry)> = entries
                .iter()
                .filter(|(p, _)| {
                    *p == src
                        || p.strip_prefix(src.as_str())
                            .is_some_and(|r| r.starts_with('/'))
                })
                .collect();
            let complete = below_src.iter().all(|(_, e)| match e.kind.as_str() {
                "file" => e.content.is_some(),
                "dir" | "symlink" => true,
                _ => false,
            });
            if !complete {
                return;
            }
            for (p, e) in below_src {
                let to = format!("{dest}{}", &p[src.len()..]);
                let Some(at) = ImagePath::parse_abs(&to) else {
                    return;
                };
                let mode = if *preserve { e.mode } else { e.mode & !umask };
                let owner = preserve.then(|| strata_layer::Owner {
                    uid: u32::try_from(e.uid).unwrap_or(0),
                    gid: u32::try_from(e.gid).unwrap_or(0),
                });
                match e.kind.as_str() {
                    "dir" => ops.ops.push(JobOp::Mkdir {
                        path: at,
                        mode: Some(mode),
                        owner,
                    }),
                    "symlink" => ops.ops.push(JobOp::Symlink {
                        path: at,
                        target: e.link.clone().unwrap_or_default().into_bytes(),
                        owner,
                    }),
                    _ => file(ops, &to, e.content.as_deref().unwrap_or(""), mode, owner),
                }
                known.insert(to, (mode, e.kind == "dir"));
            }
        }
    }
}

fn perm_effects(
    ops: &mut PackageOps,
    below: &mut Below,
    mkdirs: &[(String, Option<u32>)],
    steps: &[Step],
    path: &dyn Fn(&str) -> ImagePath,
) {
    for (dir, mode) in mkdirs {
        if below.shipped.contains(dir) {
            continue;
        }
        if let Some(p) = ImagePath::parse_abs(dir) {
            ops.ops.push(JobOp::Mkdir {
                path: p,
                mode: Some(mode.unwrap_or(0o755)),
                owner: None,
            });
        }
    }
    let mut overrides = false;
    let mut known: Known = BTreeMap::new();
    for step in steps {
        let (perm, entries) = match step {
            Step::Perm(p, e) => (p, e),
            Step::Made(m, e) => {
                made_effects(ops, below, m, e, &mut known);
                continue;
            }
        };
        let id = |name: &Option<String>, f: &dyn Fn(&Users, &str) -> Option<u32>| match name {
            None => Some(None),
            Some(n) => match &below.users {
                Some(u) => f(u, n).map(Some),
                None => (n == "root" || n == "0").then_some(Some(0)),
            },
        };
        let (Some(uid), Some(gid), Some(p)) = (
            id(&perm.user, &|u, n| u.uid(n)),
            id(&perm.group, &|u, n| u.gid(n)),
            ImagePath::parse_abs(&perm.path),
        ) else {
            continue;
        };
        let mode_of = |q: &str, known: &Known| {
            known
                .get(q)
                .copied()
                .or_else(|| entries.get(q).map(|e| (e.mode, e.kind == "dir")))
        };
        if let Some(sym) = &perm.symbolic {
            // Each path's own mode, changed: only where it is known.
            let mut targets: Vec<String> = vec![perm.path.clone()];
            if perm.recursive {
                let under = |q: &String| {
                    q.strip_prefix(perm.path.as_str())
                        .is_some_and(|r| r.starts_with('/'))
                };
                let mut more: BTreeSet<String> =
                    known.keys().filter(|q| under(q)).cloned().collect();
                more.extend(entries.keys().filter(|q| under(q)).cloned());
                targets.extend(more);
            }
            for t in targets {
                let (Some((mode, dir)), Some(at)) = (mode_of(&t, &known), ImagePath::parse_abs(&t))
                else {
                    continue;
                };
                let new = sym.apply(mode, dir);
                known.insert(t, (new, dir));
                ops.ops.push(JobOp::Attr {
                    path: at,
                    mode: Some(new),
                    uid,
                    gid,
                    recursive: false,
                });
            }
            continue;
        }
        if let Some(m) = perm.mode {
            let dir = mode_of(&perm.path, &known).is_some_and(|(_, d)| d);
            known.insert(perm.path.clone(), (m, dir));
        }
        ops.ops.push(JobOp::Attr {
            path: p,
            mode: perm.mode,
            uid,
            gid,
            recursive: perm.recursive,
        });
        if perm.statoverride
            && let (Some(u), Some(g), Some(m)) = (&perm.user, &perm.group, perm.mode)
        {
            below
                .statoverrides
                .insert(perm.path.clone(), format!("{u} {g} {m:o} {}\n", perm.path));
            overrides = true;
        }
    }
    if overrides {
        ops.ops.push(JobOp::File {
            path: path("/var/lib/dpkg/statoverride"),
            content: below
                .statoverrides
                .values()
                .cloned()
                .collect::<String>()
                .into_bytes(),
            mode: Some(0o644),
            owner: None,
        });
    }
}

/// Where packages put CA certificates (`update-ca-certificates` reads
/// them there).
const CA_DIR: &str = "/usr/share/ca-certificates/";

/// What `ca-certificates`' postinst makes with `update-ca-certificates`,
/// done declaratively: every certificate enabled (the debconf default) in
/// `/etc/ca-certificates.conf`, a `/etc/ssl/certs/NAME.pem` link to each,
/// and the bundle `/etc/ssl/certs/ca-certificates.crt` that OpenSSL,
/// GnuTLS and curl read, in the conf's (sorted) order. The OpenSSL
/// subject-hash links (`HASH.0`) are not made: clients that read the
/// bundle or the directory by name do not need them.
fn ca_certificates(
    certs: &BTreeMap<String, Vec<u8>>,
    ops: &mut PackageOps,
    path: &dyn Fn(&str) -> ImagePath,
) {
    let mut conf = String::from(
        "# Written by strata as the ca-certificates postinst would (all certificates enabled).\n",
    );
    let mut bundle = Vec::new();
    for (p, content) in certs {
        let rel = &p[CA_DIR.len()..];
        conf.push_str(rel);
        conf.push('\n');
        bundle.extend_from_slice(content);
        if !content.ends_with(b"\n") {
            bundle.push(b'\n');
        }
        let name = rel
            .rsplit('/')
            .next()
            .unwrap_or(rel)
            .trim_end_matches(".crt");
        if let Some(link) = ImagePath::parse_abs(&format!("/etc/ssl/certs/{name}.pem")) {
            ops.ops.push(JobOp::Symlink {
                path: link,
                target: p.as_bytes().to_vec(),
                owner: None,
            });
        }
    }
    ops.ops.push(JobOp::File {
        path: path("/etc/ca-certificates.conf"),
        content: conf.into_bytes(),
        mode: Some(0o644),
        owner: None,
    });
    ops.ops.push(JobOp::File {
        path: path("/etc/ssl/certs/ca-certificates.crt"),
        content: bundle,
        mode: Some(0o644),
        owner: None,
    });
}

/// What strata needs of a verified `.deb`, kept in the cache beside its
/// data archive (`debs-v1/facts/SHA256.json`) so that a warm compose reads
/// neither the `.deb` nor its data again: its control file, its
/// `info/PKG.*` files (`md5sums`, `conffiles`, `list`), the CA
/// certificates it ships, and the data archive's name and sha256 (checked
/// whenever the facts are used, by its stamp or by hashing it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Facts {
    control: String,
    info: BTreeMap<String, String>,
    certs: BTreeMap<String, String>,
    /// Java's `/usr/lib/jvm/.NAME.jinfo` files, by path.
    jinfo: BTreeMap<String, String>,
    /// The `postinst` script, whose effects [`maint::postinst`] recognizes.
    #[serde(default)]
    postinst: Option<String>,
    /// The data files those effects read, by path: `sysusers.d` and
    /// `tmpfiles.d` files, `base-passwd`'s masters, ucf's templates (UTF-8
    /// ones only).
    #[serde(default)]
    files: BTreeMap<String, String>,
    /// The entries that `cp` copies from and symbolic `chmod`s change
    /// (see [`maint::Made`]): every entry under a source or target, with
    /// its kind, mode, owner, link target and (UTF-8 files only) content.
    #[serde(default)]
    entries: BTreeMap<String, DataEntry>,
    data_file: String,
    data_sha256: String,
    /// The data archive's stat data when it was hashed: while it holds
    /// (and the facts file is younger), the archive is not hashed again.
    #[serde(default)]
    data_stamp: Option<DataStamp>,
}

/// An entry of a package's data archive that a postinst's `cp` or
/// symbolic `chmod` reads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct DataEntry {
    /// `file`, `dir`, `symlink` or `other`.
    kind: String,
    mode: u32,
    uid: u64,
    gid: u64,
    #[serde(default)]
    link: Option<String>,
    /// A file's content, when it is UTF-8 text.
    #[serde(default)]
    content: Option<String>,
}

/// Stat data of a data archive, the cache's rule for trusting a blob
/// without re-hashing it (see `strata_cache`): size, mtime, inode and
/// device all as they were, and the mtime older than the record of the
/// hash (the facts file's own mtime, by the filesystem's clock), so a
/// change in the same clock tick as the hashing is not trusted. A copy of
/// the cache elsewhere changes the inode and is hashed again; a
/// hard-linked copy is the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct DataStamp {
    size: u64,
    mtime_ns: i128,
    ino: u64,
    dev: u64,
}

impl DataStamp {
    fn of(meta: &std::fs::Metadata) -> DataStamp {
        use std::os::unix::fs::MetadataExt as _;
        DataStamp {
            size: meta.len(),
            mtime_ns: mtime_ns(meta),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }
}

fn mtime_ns(meta: &std::fs::Metadata) -> i128 {
    use std::os::unix::fs::MetadataExt as _;
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

/// Whether the cached `facts` still describe their data archive: by its
/// stamp, else by hashing it (and then the stamp is renewed).
fn facts_hold(facts: &mut Facts, facts_path: &Path, data_dir: &Path) -> bool {
    if facts.data_file.contains('/') {
        return false;
    }
    let data = data_dir.join(&facts.data_file);
    let Ok(meta) = std::fs::metadata(&data) else {
        return false;
    };
    let now = DataStamp::of(&meta);
    if let (Some(stamp), Ok(written)) = (facts.data_stamp, std::fs::metadata(facts_path))
        && stamp == now
        && stamp.mtime_ns < mtime_ns(&written)
    {
        return true;
    }
    if !repo::hash_file(&data).is_ok_and(|h| h.hex() == facts.data_sha256) {
        return false;
    }
    facts.data_stamp = Some(now);
    // Not renewed: hashed again next time, which is only slower.
    let _ = write_facts(facts, facts_path);
    true
}

/// Writes `facts` to `path` (temporary name, then rename).
fn write_facts(facts: &Facts, path: &Path) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(&mut tmp, facts)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Bump when [`Facts`] changes meaning. v4: the data archive is kept
/// decompressed (v3 kept it as the `.deb` has it, mostly xz); v5: the
/// entries `cp` and symbolic `chmod` read.
const FACTS_VERSION: &str = "facts-v5";

/// The most a package's data archive may unpack to.
const MAX_DATA_BYTES: u64 = 16 << 30;

fn deb_facts(
    url: &str,
    p: &LockedPackage,
    sha256: &strata_deb::Sha256,
    fetcher: &mut Fetcher,
    data_dir: &Path,
) -> Result<Facts, strata_deb::Error> {
    let facts_dir = data_dir.with_file_name(FACTS_VERSION);
    let facts_path = facts_dir.join(format!("{}.json", sha256.hex()));
    if let Some(mut f) = std::fs::read(&facts_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Facts>(&b).ok())
        && facts_hold(&mut f, &facts_path, data_dir)
    {
        return Ok(f);
    }
    let deb_path = repo::fetch_deb(fetcher, &p.name, url, sha256, p.size)?;
    let mut deb = DebFile::open(&deb_path, &p.filename)?;
    let control = deb.control()?;
    let text = |name: &str, b: &[u8]| {
        String::from_utf8(b.to_vec()).map_err(|_| strata_deb::Error::BadDeb {
            deb: p.filename.clone(),
            reason: format!("{name} is not UTF-8 text"),
        })
    };
    let mut info = BTreeMap::new();
    for member in ["md5sums", "conffiles"] {
        if let Some(bytes) = control.files.get(member) {
            info.insert(member.to_owned(), text(member, bytes)?);
        }
    }
    let postinst = match control.files.get("postinst") {
        Some(b) => Some(text("postinst", b)?),
        None => None,
    };
    let effects = postinst.as_deref().map(maint::postinst).unwrap_or_default();
    let ucf_sources: std::collections::BTreeSet<String> =
        effects.ucf.iter().map(|u| u.src.clone()).collect();
    // What `cp` reads and symbolic `chmod`s change: the path and all below.
    let mut under: Vec<String> = effects
        .made
        .iter()
        .filter_map(|(_, m)| match m {
            maint::Made::Copy { src, .. } => Some(src.clone()),
            _ => None,
        })
        .collect();
    under.extend(
        effects
            .perms
            .iter()
            .filter(|p| p.symbolic.is_some())
            .map(|p| p.path.clone()),
    );
    let is_under = |p: &str| {
        under.iter().any(|u| {
            p == u
                || p.strip_prefix(u.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
    };
    // `info/PKG.list`: what `dpkg -L` shows and what scanners use to tell
    // which package a file belongs to.
    let (paths, mut wanted, metas) = deb.scan_data_meta(
        MAX_ENTRIES,
        |p| {
            (p.starts_with(CA_DIR) && p.ends_with(".crt"))
                || is_jinfo(p)
                || is_effect_file(p)
                || ucf_sources.contains(p)
                || is_under(p)
        },
        is_under,
    )?;
    let mut entries = BTreeMap::new();
    for (path, m) in metas {
        use strata_deb::debfile::EntryKind;
        let content = match m.kind {
            EntryKind::File => wanted
                .get(&path)
                .and_then(|b| String::from_utf8(b.clone()).ok()),
            _ => None,
        };
        let kind = match m.kind {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "symlink",
            EntryKind::Other => "other",
        };
        entries.insert(
            path,
            DataEntry {
                kind: kind.to_owned(),
                mode: m.mode,
                uid: m.uid,
                gid: m.gid,
                link: m.link,
                content,
            },
        );
    }
    // Those read for `cp` only are kept in `entries`.
    wanted.retain(|p, _| {
        (p.starts_with(CA_DIR) && p.ends_with(".crt"))
            || is_jinfo(p)
            || is_effect_file(p)
            || ucf_sources.contains(p)
    });
    let mut list = paths.join("\n");
    list.push('\n');
    info.insert("list".to_owned(), list);
    let mut cert_text = BTreeMap::new();
    let mut jinfo = BTreeMap::new();
    let mut files = BTreeMap::new();
    for (path, bytes) in wanted {
        if is_effect_file(&path) || ucf_sources.contains(&path) {
            // A template that is not text is left to the package's users.
            if let Ok(t) = String::from_utf8(bytes) {
                files.insert(path, t);
            }
            continue;
        }
        let t = text(&path, &bytes)?;
        if is_jinfo(&path) {
            jinfo.insert(path, t);
        } else {
            cert_text.insert(path, t);
        }
    }
    let data = extract_data(&mut deb, data_dir, sha256)?;
    let io = |e: std::io::Error| strata_deb::Error::Io {
        path: facts_path.clone(),
        source: e,
    };
    // Stat data before the hash: a change while hashing moves the mtime.
    let stamp = std::fs::metadata(&data).map_err(io)?;
    let facts = Facts {
        control: control.control,
        info,
        certs: cert_text,
        jinfo,
        postinst,
        files,
        entries,
        data_file: data
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        data_sha256: repo::hash_file(&data).map_err(io)?.hex(),
        data_stamp: Some(DataStamp::of(&stamp)),
    };
    write_facts(&facts, &facts_path).map_err(io)?;
    Ok(facts)
}

/// The package's data archive, decompressed out of its verified `.deb`
/// into the cache (temporary name, then rename), named by the `.deb`'s
/// sha256.
///
/// Kept as a plain tar, not as the `.deb` has it (xz, mostly): the layer
/// builder reads a plain tar in place, so a build from a warm package
/// cache decompresses nothing. A profile of tomcat-debian's layers built
/// from cached packages had xz decoding at 37% of the CPU; the price is
/// a package cache about four times larger.
fn extract_data(
    deb: &mut DebFile,
    dir: &Path,
    sha256: &strata_deb::Sha256,
) -> Result<PathBuf, strata_deb::Error> {
    let dest = dir.join(format!("{}.tar", sha256.hex()));
    let io = |e: std::io::Error| strata_deb::Error::Io {
        path: dest.clone(),
        source: e,
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        deb.decompress_data(&mut w, MAX_DATA_BYTES)?;
        w.flush().map_err(io)?;
    }
    tmp.persist(&dest).map_err(|e| io(e.error))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_alternatives_come_from_the_jinfo_highest_priority_first() {
        let jre17 = "name=java-1.17.0-openjdk-amd64\nalias=java-1.17.0-openjdk-amd64\npriority=1711\nsection=main\n\nhl java /usr/lib/jvm/java-17-openjdk-amd64/bin/java\nhl keytool /usr/lib/jvm/java-17-openjdk-amd64/bin/keytool\njdkhl javac /usr/lib/jvm/java-17-openjdk-amd64/bin/javac\njre bad name /x\nhl ../evil /x\nhl rel bin/rel\n";
        let jre11 = "priority=1111\nhl java /usr/lib/jvm/java-11-openjdk-amd64/bin/java\n";
        let mut out = Vec::new();
        java_alternatives(jre11, &mut out);
        java_alternatives(jre17, &mut out);
        let mut by_name: BTreeMap<&str, Vec<Alternative>> = BTreeMap::new();
        for a in &out {
            by_name.entry(&a.name).or_default().push(a.clone());
        }
        let got: Vec<(&str, i64, String)> = by_name
            .iter()
            .map(|(n, c)| {
                let b = maint::best(c).unwrap();
                (*n, b.priority, b.path.clone())
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "java",
                    1711,
                    "/usr/lib/jvm/java-17-openjdk-amd64/bin/java".to_owned()
                ),
                (
                    "keytool",
                    1711,
                    "/usr/lib/jvm/java-17-openjdk-amd64/bin/keytool".to_owned()
                ),
            ]
        );
        assert!(is_jinfo("/usr/lib/jvm/.java-1.17.0-openjdk-amd64.jinfo"));
        assert!(!is_jinfo("/usr/lib/jvm/x/.jinfo"));
        assert!(!is_jinfo("/etc/.java.jinfo"));
    }

    #[test]
    fn lock_lines_round_trip_and_refuse_junk() {
        let p = LockedPackage {
            name: "libc6".into(),
            version: "2.36-9+deb12u10".into(),
            arch: "amd64".into(),
            sha256: "ab".repeat(32),
            size: 2758208,
            filename: "pool/main/g/glibc/libc6_2.36-9+deb12u10_amd64.deb".into(),
        };
        assert_eq!(LockedPackage::parse(&p.line()), Some(p.clone()));
        for junk in [
            "libc6 1 amd64",
            &p.line().replace("pool/main", "../main"),
            &p.line().replace(&"ab".repeat(32), "zz"),
            &format!("{} extra", p.line()),
        ] {
            assert_eq!(LockedPackage::parse(junk), None, "{junk}");
        }
    }
}
