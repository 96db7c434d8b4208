//! The layering budget (`packages ... layers=N`): one layer's package set
//! split into at most N layers so that the images of one spec that install
//! the same packages share layers, as apko's layering budget does.
//!
//! The split is by sharing, decided over the whole spec: each package of a
//! budgeted layer is tagged with the set of budgeted layers (`image/layer`)
//! that install it. A layer's packages are grouped by that tag; the groups
//! go bottom up by how many layers share them (most first, ties by the tag's
//! names), each group a layer of its own while the budget lasts, the rest
//! together in the top layer (which keeps the layer's name; the parts below
//! are `NAME~1`, `NAME~2`, ...). Within a part, packages are installed in
//! name order, so a part that several images share is the same set, in the
//! same order, on the same layers below: the same bytes and digest.
//!
//! So the JRE that three images' `layers=2` sets all pull in is one layer
//! that the three store once; a package set no other budgeted layer shares
//! stays one layer whatever its budget.
//!
//! Deterministic: it depends only on the resolved sets (or the lock's), not
//! on the order images are written or built.

use std::collections::{BTreeMap, BTreeSet};

use crate::packages::LockedPackage;

/// Which budgeted layers install each package.
#[derive(Debug, Clone, Default)]
pub struct Sharing {
    by_package: BTreeMap<(String, String, String), BTreeSet<String>>,
}

fn id(p: &LockedPackage) -> (String, String, String) {
    (p.name.clone(), p.arch.clone(), p.version.clone())
}

impl Sharing {
    /// From each budgeted layer's whole set, by `image/layer`.
    pub fn of(sets: &BTreeMap<String, Vec<LockedPackage>>) -> Sharing {
        let mut by_package: BTreeMap<_, BTreeSet<String>> = BTreeMap::new();
        for (layer, set) in sets {
            for p in set {
                by_package.entry(id(p)).or_default().insert(layer.clone());
            }
        }
        Sharing { by_package }
    }

    /// `set` split into at most `budget` parts, lowest first.
    pub fn split(&self, set: &[LockedPackage], budget: usize) -> Vec<Vec<LockedPackage>> {
        let mut groups: BTreeMap<Vec<String>, Vec<LockedPackage>> = BTreeMap::new();
        for p in set {
            let tag: Vec<String> = self
                .by_package
                .get(&id(p))
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            groups.entry(tag).or_default().push(p.clone());
        }
        let mut ordered: Vec<(Vec<String>, Vec<LockedPackage>)> = groups.into_iter().collect();
        // Most shared first; a tie by the tag (the map's order).
        ordered.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        let mut parts: Vec<Vec<LockedPackage>> = Vec::new();
        for (_, group) in ordered {
            if parts.len() < budget.max(1) {
                parts.push(group);
            } else if let Some(top) = parts.last_mut() {
                top.extend(group);
            }
        }
        for part in &mut parts {
            part.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
        }
        if parts.is_empty() {
            parts.push(Vec::new());
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str) -> LockedPackage {
        LockedPackage {
            name: name.into(),
            version: "1".into(),
            arch: "amd64".into(),
            sha256: "00".repeat(32),
            size: 1,
            filename: format!("pool/{name}.deb"),
        }
    }

    fn names(parts: &[Vec<LockedPackage>]) -> Vec<Vec<&str>> {
        parts
            .iter()
            .map(|p| p.iter().map(|x| x.name.as_str()).collect())
            .collect()
    }

    #[test]
    fn shared_packages_go_lowest_in_name_order_and_the_budget_holds() {
        let sets: BTreeMap<String, Vec<LockedPackage>> = [
            (
                "a/app",
                vec![pkg("tomcat"), pkg("libc"), pkg("jre"), pkg("x")],
            ),
            (
                "b/app",
                vec![pkg("jetty"), pkg("jre"), pkg("libc"), pkg("x")],
            ),
            ("c/app", vec![pkg("ant"), pkg("libc"), pkg("jre")]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let s = Sharing::of(&sets);
        assert_eq!(
            names(&s.split(&sets["a/app"], 3)),
            [vec!["jre", "libc"], vec!["x"], vec!["tomcat"]]
        );
        assert_eq!(
            names(&s.split(&sets["b/app"], 2)),
            [vec!["jre", "libc"], vec!["jetty", "x"]]
        );
        assert_eq!(
            names(&s.split(&sets["c/app"], 8)),
            [vec!["jre", "libc"], vec!["ant"]]
        );
        assert_eq!(
            names(&s.split(&sets["c/app"], 1)),
            [vec!["ant", "jre", "libc"]]
        );
    }
}
