//! `compose --locked` and a spec that drifted from its lock: a `packages`
//! layer installs the lock's set without resolving, so the set must still
//! be what the spec asks for, both ways.
//!
//! - Each package the spec names must be in the lock's set for the layer,
//!   at a version the request allows ([`check_requests`]).
//! - Each package of the lock's set must still be wanted: named by the
//!   spec, of `Priority: required` when the layer asks for `required`, or
//!   needed (`Depends`/`Pre-Depends`) by one that is ([`check_wanted`]).
//!   A request the spec dropped leaves its package, and whatever only it
//!   needed, wanted by nothing.
//!
//! The second check reads the packages' own control files (their
//! relations), not the repository's indexes, so it needs no network and
//! gives no false alarm for a set the resolver made: it is liberal, every
//! alternative of a relation (`a | b`) and every package providing a name
//! counts as needed. Either failure is [`Error::LockedPackages`] or
//! [`Error::LockedUnwanted`], with the place in the spec (`SPEC:LINE:COL`).

use std::collections::{BTreeMap, BTreeSet};

use strata_deb::Package;
use strata_deb::resolve::Request;
use strata_spec::{PackagesOp, Spanned, Spec};

use crate::Error;
use crate::packages::LockedPackage;

/// `SPEC:LINE:COL` of a span of `spec`.
fn at(spec: &Spec, offset: usize) -> String {
    let (line, col) = strata_spec::Diagnostics::line_col(&spec.source, offset);
    format!("{}:{line}:{col}", spec.name)
}

/// Each package the spec names for `layer` is in the lock's `set`, at a
/// version the request allows.
pub(crate) fn check_requests(
    spec: &Spec,
    layer: &str,
    reqs: &[&PackagesOp],
    set: &[LockedPackage],
) -> Result<(), Error> {
    for p in reqs {
        for n in &p.packages {
            let request =
                Request::parse(&n.value).map_err(|e| crate::packages::err(layer, e.into()))?;
            let drift = |reason: String| Error::LockedPackages {
                at: at(spec, n.span.offset()),
                layer: layer.to_owned(),
                request: n.value.clone(),
                reason,
            };
            let named: Vec<&LockedPackage> = set
                .iter()
                .filter(|l| l.name == request.name)
                .filter(|l| request.arch.as_deref().is_none_or(|a| a == l.arch))
                .collect();
            if named.is_empty() {
                return Err(drift("no such package in it".to_owned()));
            }
            if let Some((op, want)) = &request.version {
                let allowed = named.iter().any(|l| {
                    strata_deb::version::Version::parse(&l.version)
                        .is_ok_and(|have| op.holds(&have, want))
                });
                if !allowed {
                    return Err(drift(format!("it pins {}", named[0].version)));
                }
            }
        }
    }
    Ok(())
}

/// Each package of the lock's set for `layer` (`set`, with its control
/// file, in the set's order) is wanted by the spec's requests `reqs`
/// (whose `packages` nodes are `nodes`).
pub(crate) fn check_wanted(
    spec: &Spec,
    layer: &str,
    nodes: &[&Spanned<strata_spec::Op>],
    reqs: &[&PackagesOp],
    set: &[(LockedPackage, Package)],
) -> Result<(), Error> {
    // Who answers to a name: the packages of that name and those providing it.
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (_, p)) in set.iter().enumerate() {
        by_name.entry(p.name.as_str()).or_default().push(i);
        for prov in &p.provides {
            by_name.entry(prov.name.as_str()).or_default().push(i);
        }
    }
    let mut wanted: BTreeSet<usize> = BTreeSet::new();
    let mut todo: Vec<usize> = Vec::new();
    let mut want = |i: usize, todo: &mut Vec<usize>| {
        if wanted.insert(i) {
            todo.push(i);
        }
    };
    for p in reqs {
        if p.required {
            for (i, (_, pkg)) in set.iter().enumerate() {
                if pkg.priority.as_deref() == Some("required") || pkg.essential {
                    want(i, &mut todo);
                }
            }
        }
        for n in &p.packages {
            let name = Request::parse(&n.value).map(|r| r.name).unwrap_or_default();
            for &i in by_name.get(name.as_str()).into_iter().flatten() {
                want(i, &mut todo);
            }
        }
    }
    while let Some(i) = todo.pop() {
        let pkg = &set[i].1;
        for group in pkg.pre_depends.iter().chain(&pkg.depends) {
            for rel in group {
                for &j in by_name.get(rel.name.as_str()).into_iter().flatten() {
                    want(j, &mut todo);
                }
            }
        }
    }
    let unwanted: Vec<&LockedPackage> = set
        .iter()
        .enumerate()
        .filter(|(i, _)| !wanted.contains(i))
        .map(|(_, (l, _))| l)
        .collect();
    let Some(first) = unwanted.first() else {
        return Ok(());
    };
    let offset = nodes.first().map_or(0, |n| n.span.offset());
    Err(Error::LockedUnwanted {
        at: at(spec, offset),
        layer: layer.to_owned(),
        package: format!("{} {}", first.name, first.version),
        more: unwanted.len() - 1,
    })
}
