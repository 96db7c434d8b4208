//! Dependency resolution as apt does it for `apt-get install
//! --no-install-recommends` on a root that holds the lower layers'
//! packages.
//!
//! What it follows from apt (`pkgDepCache::MarkInstall`):
//!
//! - One candidate per package name and architecture: the highest version in
//!   the indexes, or the highest that a request's version constraint allows
//!   (a request's pin is the candidate for every dependency too, as
//!   `apt-get install name=version` makes it). A dependency that the
//!   candidate does not satisfy is not satisfied by an older version: apt
//!   never reaches back, and neither does this.
//! - Depth first: a package is marked, then each of its `Pre-Depends` and
//!   `Depends` groups in order; a group already satisfied by a marked or
//!   installed package (directly or through `Provides`) is skipped, which is
//!   how alternatives prefer what is already chosen. Otherwise the first
//!   alternative that a candidate satisfies is marked: the real package of
//!   that name first, then its providers, preferring the native
//!   architecture, Essential packages, a higher Priority, then the name.
//! - Multi-Arch: a dependency is satisfied by a package of the depending
//!   package's architecture or `all`, by a `Multi-Arch: foreign` package of
//!   any architecture, and (`name:any`) by a `Multi-Arch: allowed` one of
//!   any architecture. Packages of `Multi-Arch: same` installed for several
//!   architectures must have one version.
//! - A virtual package requested by name is installed through its provider
//!   when it has exactly one, and refused naming the providers otherwise
//!   (apt's "you must explicitly select one").
//! - Conflicts and Breaks between the marked and installed packages are
//!   found and reported, each naming both packages; apt would try other
//!   alternatives to avoid them, this resolver does not.
//! - Recommends and Suggests are not followed.
//!
//! Every choice goes through ordered maps and sorted lists, so the result
//! depends only on the indexes and the request.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::packages::{MultiArch, Package};
use crate::relation::{Alternatives, Op, Relation};
use crate::version::Version;

/// A package that a lower layer installed: it satisfies dependencies and is
/// not installed again.
#[derive(Debug, Clone)]
pub struct Installed {
    pub name: String,
    pub arch: String,
    pub version: Version,
    pub multi_arch: MultiArch,
    pub provides: Vec<Relation>,
}

impl Installed {
    pub fn of(p: &Package) -> Installed {
        Installed {
            name: p.name.clone(),
            arch: p.arch.clone(),
            version: p.version.clone(),
            multi_arch: p.multi_arch,
            provides: p.provides.clone(),
        }
    }
}

/// One package the user asks for: `name[:arch] [(op version)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub name: String,
    pub arch: Option<String>,
    pub version: Option<(Op, Version)>,
}

impl Request {
    /// Parses `name`, `name:arch`, `name=version` (apt's form) or
    /// `name (>= version)` (a relation).
    pub fn parse(text: &str) -> Result<Request, crate::relation::BadRelation> {
        let rel_text = match text.split_once('=') {
            Some((n, v)) if !n.contains('(') && !n.contains(['<', '>']) => {
                format!("{} (= {})", n.trim(), v.trim())
            }
            _ => text.to_owned(),
        };
        let mut g = crate::relation::parse_field(&rel_text)?;
        match (g.len(), g.first().map(Vec::len)) {
            (1, Some(1)) => {
                let r = g.remove(0).remove(0);
                Ok(Request {
                    name: r.name,
                    arch: r.arch,
                    version: r.version,
                })
            }
            _ => Err(crate::relation::BadRelation {
                text: text.to_owned(),
                reason: "a request names one package".into(),
            }),
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Relation {
            name: self.name.clone(),
            arch: self.arch.clone(),
            version: self.version.clone(),
        }
        .fmt(f)
    }
}

/// Why a request cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("package {name}: no such package in the repository (architectures {arches})")]
    NoPackage { name: String, arches: String },
    #[error("package {request}: no version satisfies it (available: {available})")]
    NoVersion { request: String, available: String },
    #[error("package {name} is virtual, provided by {providers}: name one of them")]
    Virtual { name: String, providers: String },
    #[error("package {package} depends on {dependency}, which cannot be satisfied: {reason}")]
    Unsatisfiable {
        package: String,
        dependency: String,
        reason: String,
    },
    #[error(
        "package {name}: {installed} is installed by a lower layer, {wanted} was asked for (strata does not upgrade a lower layer's packages)"
    )]
    Installed {
        name: String,
        installed: String,
        wanted: String,
    },
    #[error("conflicting packages:\n{}", .0.join("\n"))]
    Conflicts(Vec<String>),
}

/// The packages of a repository, indexed for resolution.
pub struct Universe {
    packages: Vec<Package>,
    /// name -> indexes of `packages`, highest version first.
    by_name: BTreeMap<String, Vec<usize>>,
    /// provided name -> (index, provided version).
    providers: BTreeMap<String, Vec<(usize, Option<Version>)>>,
    native: String,
    /// Every architecture of a package but `all`.
    arches: BTreeSet<String>,
}

impl Universe {
    /// `native` is the architecture that `all` packages and unqualified
    /// requests count as.
    pub fn new(packages: Vec<Package>, native: &str) -> Universe {
        let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut providers: BTreeMap<String, Vec<(usize, Option<Version>)>> = BTreeMap::new();
        for (i, p) in packages.iter().enumerate() {
            by_name.entry(p.name.clone()).or_default().push(i);
            for pr in &p.provides {
                providers
                    .entry(pr.name.clone())
                    .or_default()
                    .push((i, pr.version.as_ref().map(|(_, v)| v.clone())));
            }
        }
        for v in by_name.values_mut() {
            // Highest version first; among equal versions (the same package
            // in two components) the first index read wins.
            v.sort_by(|&a, &b| {
                packages[b]
                    .version
                    .cmp(&packages[a].version)
                    .then(a.cmp(&b))
            });
        }
        let arches = packages
            .iter()
            .filter(|p| p.arch != "all")
            .map(|p| p.arch.clone())
            .collect();
        Universe {
            packages,
            by_name,
            providers,
            native: native.to_owned(),
            arches,
        }
    }

    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    /// The packages of `Priority: required` (for the native architecture or
    /// `all`): debootstrap's minbase set, which apt needs nothing below.
    pub fn required(&self) -> Vec<Request> {
        let mut names = BTreeSet::new();
        for p in &self.packages {
            if p.priority.as_deref() == Some("required")
                && (p.arch == self.native || p.arch == "all")
            {
                names.insert(p.name.clone());
            }
        }
        names
            .into_iter()
            .map(|name| Request {
                name,
                arch: None,
                version: None,
            })
            .collect()
    }

    fn eff_arch<'a>(&'a self, arch: &'a str) -> &'a str {
        if arch == "all" { &self.native } else { arch }
    }
}

/// The outcome: the packages to install, sorted by name and architecture.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub packages: Vec<Package>,
}

/// A marked or installed package, as the satisfaction checks see it.
#[derive(Clone)]
struct Have<'a> {
    name: &'a str,
    arch: &'a str,
    version: &'a Version,
    multi_arch: MultiArch,
    provides: &'a [Relation],
}

struct State<'u> {
    u: &'u Universe,
    installed: &'u [Installed],
    /// (name, arch) -> index into the universe.
    marked: BTreeMap<(String, String), usize>,
    /// name -> the requested version constraint that pins its candidate.
    pins: BTreeMap<String, (Op, Version)>,
    /// A real or provided name -> the marked and installed packages that
    /// have it, so that a dependency is checked against those only.
    having: BTreeMap<String, Vec<HaveId>>,
}

#[derive(Clone, Copy)]
enum HaveId {
    Marked(usize),
    Installed(usize),
}

/// Resolves `requests` against `universe`, on top of `installed`.
pub fn resolve(
    universe: &Universe,
    installed: &[Installed],
    requests: &[Request],
) -> Result<Resolution, ResolveError> {
    let mut st = State {
        u: universe,
        installed,
        marked: BTreeMap::new(),
        pins: BTreeMap::new(),
        having: BTreeMap::new(),
    };
    for (i, p) in installed.iter().enumerate() {
        for n in std::iter::once(&p.name).chain(p.provides.iter().map(|r| &r.name)) {
            st.having
                .entry(n.clone())
                .or_default()
                .push(HaveId::Installed(i));
        }
    }
    for r in requests {
        if let Some(v) = &r.version {
            st.pins.insert(r.name.clone(), v.clone());
        }
    }
    for r in requests {
        st.request(r)?;
    }
    st.check_conflicts()?;
    let mut packages: Vec<Package> = st
        .marked
        .values()
        .map(|&i| universe.packages[i].clone())
        .collect();
    packages.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    Ok(Resolution { packages })
}

impl<'u> State<'u> {
    fn haves(&self) -> impl Iterator<Item = Have<'_>> {
        let marked = self.marked.values().map(|&i| {
            let p = &self.u.packages[i];
            Have {
                name: &p.name,
                arch: &p.arch,
                version: &p.version,
                multi_arch: p.multi_arch,
                provides: &p.provides,
            }
        });
        let inst = self.installed.iter().map(|p| Have {
            name: &p.name,
            arch: &p.arch,
            version: &p.version,
            multi_arch: p.multi_arch,
            provides: &p.provides,
        });
        marked.chain(inst)
    }

    /// Whether a package of `arch` and `ma` may satisfy a dependency of a
    /// package of `from` (an effective architecture) qualified by `q`.
    fn arch_ok(&self, arch: &str, ma: MultiArch, from: &str, q: Option<&str>) -> bool {
        let arch = self.u.eff_arch(arch);
        if ma == MultiArch::Foreign {
            return true;
        }
        match q {
            None => arch == from,
            Some("any") => arch == from || ma == MultiArch::Allowed,
            Some("native") => arch == self.u.native,
            Some(q) => arch == q,
        }
    }

    fn satisfies(&self, h: &Have<'_>, r: &Relation, from: &str) -> bool {
        if h.name == r.name
            && self.arch_ok(h.arch, h.multi_arch, from, r.arch.as_deref())
            && r.version_matches(Some(h.version))
        {
            return true;
        }
        h.provides.iter().any(|pr| {
            pr.name == r.name
                && self.arch_ok(h.arch, h.multi_arch, from, r.arch.as_deref())
                && r.version_matches(pr.version.as_ref().map(|(_, v)| v))
        })
    }

    fn have(&self, id: HaveId) -> Have<'_> {
        match id {
            HaveId::Marked(i) => {
                let p = &self.u.packages[i];
                Have {
                    name: &p.name,
                    arch: &p.arch,
                    version: &p.version,
                    multi_arch: p.multi_arch,
                    provides: &p.provides,
                }
            }
            HaveId::Installed(i) => {
                let p = &self.installed[i];
                Have {
                    name: &p.name,
                    arch: &p.arch,
                    version: &p.version,
                    multi_arch: p.multi_arch,
                    provides: &p.provides,
                }
            }
        }
    }

    fn group_satisfied(&self, g: &Alternatives, from: &str) -> bool {
        g.iter().any(|r| {
            self.having.get(&r.name).is_some_and(|ids| {
                ids.iter()
                    .any(|&id| self.satisfies(&self.have(id), r, from))
            })
        })
    }

    /// The candidate of `name` for architecture `arch` (or `all`).
    fn candidate(&self, name: &str, arch: &str) -> Option<usize> {
        let idx = self.u.by_name.get(name)?;
        let pin = self.pins.get(name);
        idx.iter().copied().find(|&i| {
            let p = &self.u.packages[i];
            (p.arch == arch || p.arch == "all" && arch == self.u.native)
                && pin.is_none_or(|(op, v)| op.holds(&p.version, v))
        })
    }

    /// Every architecture a candidate of `name` may have, the preferred first.
    fn arches_for(&self, from: &str) -> Vec<String> {
        let mut v = vec![from.to_owned()];
        if from != self.u.native {
            v.push(self.u.native.clone());
        }
        v.extend(
            self.u
                .arches
                .iter()
                .filter(|a| **a != from && **a != self.u.native)
                .cloned(),
        );
        v
    }

    fn request(&mut self, r: &Request) -> Result<(), ResolveError> {
        let arch = r.arch.clone().unwrap_or_else(|| self.u.native.clone());
        // Already installed below: satisfied, or refused if another version
        // is wanted.
        if let Some(inst) = self
            .installed
            .iter()
            .find(|i| i.name == r.name && self.u.eff_arch(&i.arch) == arch)
        {
            return match &r.version {
                Some((op, v)) if !op.holds(&inst.version, v) => Err(ResolveError::Installed {
                    name: r.name.clone(),
                    installed: inst.version.to_string(),
                    wanted: r.to_string(),
                }),
                _ => Ok(()),
            };
        }
        if let Some(i) = self.candidate(&r.name, &arch) {
            return self.mark(i);
        }
        if let Some(idx) = self.u.by_name.get(&r.name) {
            let available: BTreeSet<String> = idx
                .iter()
                .map(|&i| {
                    let p = &self.u.packages[i];
                    format!("{} {}", p.id(), p.version)
                })
                .collect();
            return Err(ResolveError::NoVersion {
                request: r.to_string(),
                available: available.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
        let rel = Relation {
            name: r.name.clone(),
            arch: r.arch.clone(),
            version: r.version.clone(),
        };
        let providers = self.providers(&rel, &arch);
        match providers.as_slice() {
            [one] => self.mark(*one),
            [] => Err(ResolveError::NoPackage {
                name: r.name.clone(),
                arches: self.arches_for(&arch).join(" "),
            }),
            many => {
                let names: BTreeSet<String> = many
                    .iter()
                    .map(|&i| self.u.packages[i].name.clone())
                    .collect();
                Err(ResolveError::Virtual {
                    name: r.name.clone(),
                    providers: names.into_iter().collect::<Vec<_>>().join(", "),
                })
            }
        }
    }

    /// Candidates that provide `r` for a dependent of architecture `from`,
    /// best first.
    fn providers(&self, r: &Relation, from: &str) -> Vec<usize> {
        let Some(list) = self.u.providers.get(&r.name) else {
            return Vec::new();
        };
        let mut out: Vec<usize> = Vec::new();
        for (i, pv) in list {
            let p = &self.u.packages[*i];
            // Only a provider that is its package's candidate counts.
            if self.candidate(&p.name, self.u.eff_arch(&p.arch)) != Some(*i) {
                continue;
            }
            if !self.arch_ok(&p.arch, p.multi_arch, from, r.arch.as_deref())
                || !r.version_matches(pv.as_ref())
            {
                continue;
            }
            if !out.contains(i) {
                out.push(*i);
            }
        }
        let rank = |i: usize| {
            let p = &self.u.packages[i];
            let prio = match p.priority.as_deref() {
                Some("required") => 0,
                Some("important") => 1,
                Some("standard") => 2,
                Some("optional") => 3,
                _ => 4,
            };
            (
                self.u.eff_arch(&p.arch) != from,
                !p.essential,
                prio,
                p.name.clone(),
            )
        };
        out.sort_by_key(|&i| rank(i));
        out
    }

    /// Marks a package and, depth first, what it needs. An explicit stack
    /// rather than recursion: a hostile index's dependency chain can be as
    /// deep as it likes.
    fn mark(&mut self, root: usize) -> Result<(), ResolveError> {
        let mut stack: Vec<(usize, usize)> = Vec::new();
        if !self.mark_one(root)? {
            return Ok(());
        }
        stack.push((root, 0));
        while let Some((pi, gi)) = stack.pop() {
            let p = &self.u.packages[pi];
            let groups: Vec<&Alternatives> = p.pre_depends.iter().chain(&p.depends).collect();
            let Some(g) = groups.get(gi) else { continue };
            stack.push((pi, gi + 1));
            let from = self.u.eff_arch(&p.arch).to_owned();
            if self.group_satisfied(g, &from) {
                continue;
            }
            let target = self.choose(pi, g, &from)?;
            if self.mark_one(target)? {
                stack.push((target, 0));
            }
        }
        Ok(())
    }

    /// Marks one package; false if it already was.
    fn mark_one(&mut self, i: usize) -> Result<bool, ResolveError> {
        let p = &self.u.packages[i];
        let key = (p.name.clone(), self.u.eff_arch(&p.arch).to_owned());
        match self.marked.get(&key) {
            Some(&j) if j == i => Ok(false),
            Some(&j) => Err(ResolveError::Unsatisfiable {
                package: p.id(),
                dependency: p.version.to_string(),
                reason: format!(
                    "{} {} is already chosen",
                    self.u.packages[j].id(),
                    self.u.packages[j].version
                ),
            }),
            None => {
                self.marked.insert(key, i);
                for n in std::iter::once(&p.name).chain(p.provides.iter().map(|r| &r.name)) {
                    self.having
                        .entry(n.clone())
                        .or_default()
                        .push(HaveId::Marked(i));
                }
                Ok(true)
            }
        }
    }

    /// The package that satisfies an unsatisfied group.
    fn choose(&self, pi: usize, g: &Alternatives, from: &str) -> Result<usize, ResolveError> {
        let mut reasons = Vec::new();
        for r in g {
            for arch in self.arches_for(from) {
                if let Some(c) = self.candidate(&r.name, &arch) {
                    let p = &self.u.packages[c];
                    if !self.arch_ok(&p.arch, p.multi_arch, from, r.arch.as_deref()) {
                        continue;
                    }
                    if r.version_matches(Some(&p.version)) {
                        // A package of this name and architecture already
                        // marked with another version cannot be replaced.
                        let key = (p.name.clone(), self.u.eff_arch(&p.arch).to_owned());
                        if let Some(&m) = self.marked.get(&key)
                            && m != c
                        {
                            reasons.push(format!(
                                "{} {} is already chosen",
                                p.id(),
                                self.u.packages[m].version
                            ));
                            continue;
                        }
                        return Ok(c);
                    }
                    reasons.push(format!("{r}: the candidate is {} {}", p.id(), p.version));
                    break;
                }
            }
            if let Some(&c) = self.providers(r, from).first() {
                return Ok(c);
            }
            if !self.u.by_name.contains_key(&r.name) && !self.u.providers.contains_key(&r.name) {
                reasons.push(format!("{}: no such package", r.name));
            } else if !reasons.iter().any(|s| s.starts_with(&format!("{r}:"))) {
                reasons.push(format!("{r}: no candidate of a usable architecture"));
            }
        }
        let p = &self.u.packages[pi];
        Err(ResolveError::Unsatisfiable {
            package: format!("{} {}", p.id(), p.version),
            dependency: g
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(" | "),
            reason: reasons.join("; "),
        })
    }

    fn check_conflicts(&self) -> Result<(), ResolveError> {
        let mut found = BTreeSet::new();
        let haves: Vec<Have<'_>> = self.haves().collect();
        for &i in self.marked.values() {
            let p = &self.u.packages[i];
            for (kind, groups) in [("conflicts with", &p.conflicts), ("breaks", &p.breaks)] {
                for r in groups.iter().flatten() {
                    for h in &haves {
                        // A package never conflicts with itself, nor with a
                        // name it provides itself (the Provides + Conflicts
                        // + Replaces idiom of alternative implementations).
                        if h.name == p.name {
                            continue;
                        }
                        let hit = (h.name == r.name && r.version_matches(Some(h.version)))
                            || h.provides.iter().any(|pr| {
                                pr.name == r.name
                                    && r.version_matches(pr.version.as_ref().map(|(_, v)| v))
                            });
                        if hit {
                            found.insert(format!(
                                "  {} {} {kind} {r}: {}:{} {}",
                                p.id(),
                                p.version,
                                h.name,
                                h.arch,
                                h.version
                            ));
                        }
                    }
                }
            }
        }
        // Multi-Arch: same packages of one name share one version.
        let mut same: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for &i in self.marked.values() {
            let p = &self.u.packages[i];
            if p.multi_arch == MultiArch::Same {
                same.entry(&p.name)
                    .or_default()
                    .insert(p.version.to_string());
            }
        }
        for (name, versions) in same {
            if versions.len() > 1 {
                found.insert(format!(
                    "  {name} is Multi-Arch: same but chosen in versions {}",
                    versions.into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        if found.is_empty() {
            Ok(())
        } else {
            Err(ResolveError::Conflicts(found.into_iter().collect()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::parse_index;

    /// An index from short records: `name version arch [Field: value]...`
    /// separated by `;`.
    fn universe(records: &[&str]) -> Universe {
        let mut text = String::new();
        for (i, r) in records.iter().enumerate() {
            let mut parts = r.split(';').map(str::trim);
            let head: Vec<&str> = parts.next().unwrap().split_whitespace().collect();
            text.push_str(&format!(
                "Package: {}\nVersion: {}\nArchitecture: {}\nFilename: pool/{i}.deb\nSize: 1\nSHA256: {:064x}\n",
                head[0],
                head[1],
                head.get(2).unwrap_or(&"amd64"),
                i
            ));
            for f in parts {
                text.push_str(f);
                text.push('\n');
            }
            text.push('\n');
        }
        Universe::new(parse_index("Packages", &text).unwrap(), "amd64")
    }

    fn req(s: &str) -> Request {
        Request::parse(s).unwrap()
    }

    fn names(
        u: &Universe,
        installed: &[Installed],
        reqs: &[&str],
    ) -> Result<Vec<String>, ResolveError> {
        let reqs: Vec<Request> = reqs.iter().map(|r| req(r)).collect();
        resolve(u, installed, &reqs).map(|r| {
            r.packages
                .iter()
                .map(|p| format!("{}={}", p.name, p.version))
                .collect()
        })
    }

    #[test]
    fn depends_and_pre_depends_highest_version() {
        let u = universe(&[
            "app 1 amd64; Depends: libc (>= 2), tool; Pre-Depends: init",
            "libc 2 amd64",
            "libc 3 amd64",
            "tool 1 all; Depends: libc",
            "init 1 amd64",
            "unrelated 1 amd64",
        ]);
        assert_eq!(
            names(&u, &[], &["app"]).unwrap(),
            ["app=1", "init=1", "libc=3", "tool=1"]
        );
    }

    #[test]
    fn alternatives_first_satisfiable_unless_one_is_chosen() {
        let u = universe(&[
            "a 1; Depends: x (>= 5) | y | z",
            "x 1",
            "y 1",
            "z 1",
            "b 1; Depends: z",
        ]);
        // x's candidate is too old, so y.
        assert_eq!(names(&u, &[], &["a"]).unwrap(), ["a=1", "y=1"]);
        // z already chosen (b first): the group is satisfied by it.
        assert_eq!(names(&u, &[], &["b", "a"]).unwrap(), ["a=1", "b=1", "z=1"]);
    }

    #[test]
    fn virtual_packages_and_versioned_provides() {
        let u = universe(&[
            "app 1; Depends: java-runtime (>= 17)",
            "jre11 11; Provides: java-runtime (= 11)",
            "jre17 17; Provides: java-runtime (= 17)",
            "web 1; Depends: httpd",
            "nginx 1; Provides: httpd; Priority: optional",
            "apache2 1; Provides: httpd; Priority: optional",
            "mail 1; Depends: mta",
            "exim 1; Provides: mta",
        ]);
        assert_eq!(names(&u, &[], &["app"]).unwrap(), ["app=1", "jre17=17"]);
        // Several providers: the name decides, deterministically.
        assert_eq!(names(&u, &[], &["web"]).unwrap(), ["apache2=1", "web=1"]);
        // Requested by name: one provider is taken, several are refused.
        assert_eq!(names(&u, &[], &["mta"]).unwrap(), ["exim=1"]);
        assert!(matches!(
            names(&u, &[], &["httpd"]),
            Err(ResolveError::Virtual { .. })
        ));
        // An unversioned provide does not satisfy a versioned dependency.
        let u = universe(&["app 1; Depends: v (>= 1)", "p 1; Provides: v"]);
        assert!(matches!(
            names(&u, &[], &["app"]),
            Err(ResolveError::Unsatisfiable { .. })
        ));
    }

    #[test]
    fn pins_are_the_candidate_for_dependencies_too() {
        let u = universe(&["app 1; Depends: lib", "lib 1", "lib 2"]);
        assert_eq!(
            names(&u, &[], &["app", "lib=1"]).unwrap(),
            ["app=1", "lib=1"]
        );
        assert_eq!(names(&u, &[], &["lib (<< 2)"]).unwrap(), ["lib=1"]);
        match names(&u, &[], &["lib (>= 3)"]) {
            Err(ResolveError::NoVersion { available, .. }) => {
                assert_eq!(available, "lib:amd64 1, lib:amd64 2")
            }
            other => panic!("{other:?}"),
        }
        // A dependency the candidate does not satisfy is not satisfied by an
        // older version (apt never reaches back).
        let u = universe(&["app 1; Depends: lib (<< 2)", "lib 1", "lib 2"]);
        assert!(matches!(
            names(&u, &[], &["app"]),
            Err(ResolveError::Unsatisfiable { .. })
        ));
    }

    #[test]
    fn multi_arch() {
        let u = universe(&[
            "app 1 amd64; Depends: perl:any, helper, lib",
            "perl 1 arm64; Multi-Arch: allowed",
            "helper 1 arm64; Multi-Arch: foreign",
            "lib 1 arm64; Multi-Arch: same",
            "lib 1 amd64; Multi-Arch: same",
        ]);
        let got = names(&u, &[], &["app"]).unwrap();
        assert_eq!(got, ["app=1", "helper=1", "lib=1", "perl=1"]);
        let r = resolve(&u, &[], &[req("app")]).unwrap();
        let lib = r.packages.iter().find(|p| p.name == "lib").unwrap();
        assert_eq!(
            lib.arch, "amd64",
            "a plain dependency takes its own architecture"
        );
        // Without Multi-Arch, another architecture does not satisfy.
        let u = universe(&["app 1 amd64; Depends: tool", "tool 1 arm64"]);
        assert!(matches!(
            names(&u, &[], &["app"]),
            Err(ResolveError::Unsatisfiable { .. })
        ));
    }

    #[test]
    fn installed_packages_are_not_installed_again() {
        let u = universe(&["app 1; Depends: libc (>= 2)", "libc 3"]);
        let installed = [Installed {
            name: "libc".into(),
            arch: "amd64".into(),
            version: Version::parse("2.5").unwrap(),
            multi_arch: MultiArch::Same,
            provides: vec![],
        }];
        assert_eq!(names(&u, &installed, &["app"]).unwrap(), ["app=1"]);
        assert_eq!(
            names(&u, &installed, &["libc"]).unwrap(),
            Vec::<String>::new()
        );
        assert!(matches!(
            names(&u, &installed, &["libc=3"]),
            Err(ResolveError::Installed { .. })
        ));
    }

    #[test]
    fn conflicts_and_breaks_are_reported() {
        let u = universe(&[
            "a 1; Conflicts: b",
            "b 1",
            "c 2; Breaks: d (<< 2)",
            "d 1",
            "mta1 1; Provides: mta; Conflicts: mta",
            "mta2 1; Provides: mta; Conflicts: mta",
        ]);
        match names(&u, &[], &["a", "b", "c", "d"]) {
            Err(ResolveError::Conflicts(list)) => {
                assert_eq!(list.len(), 2, "{list:?}");
                assert!(
                    list[0].contains("a:amd64 1 conflicts with b: b:amd64 1"),
                    "{list:?}"
                );
                assert!(list[1].contains("c:amd64 2 breaks d (<< 2)"), "{list:?}");
            }
            other => panic!("{other:?}"),
        }
        // A package that conflicts with what it provides is fine alone.
        assert!(names(&u, &[], &["mta1"]).is_ok());
        assert!(matches!(
            names(&u, &[], &["mta1", "mta2"]),
            Err(ResolveError::Conflicts(_))
        ));
    }

    #[test]
    fn required_base_and_missing_names() {
        let u = universe(&[
            "base-files 1; Priority: required",
            "bash 1; Priority: required; Essential: yes",
            "vim 1; Priority: optional",
        ]);
        let reqs = u.required();
        assert_eq!(
            reqs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["base-files", "bash"]
        );
        assert!(matches!(
            names(&u, &[], &["nope"]),
            Err(ResolveError::NoPackage { .. })
        ));
    }

    #[test]
    fn deep_chains_and_cycles_do_not_overflow() {
        let mut recs: Vec<String> = (0..20_000)
            .map(|i| format!("p{i} 1; Depends: p{}", i + 1))
            .collect();
        recs.push("p20000 1; Depends: p0".into());
        let refs: Vec<&str> = recs.iter().map(String::as_str).collect();
        let u = universe(&refs);
        assert_eq!(names(&u, &[], &["p0"]).unwrap().len(), 20_001);
    }
}
