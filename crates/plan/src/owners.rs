//! Owners given by name (`owner="app:app"`, `owner="app"`,
//! `owner="1000:staff"`): resolved against the image's OWN `/etc/passwd`
//! and `/etc/group`, as the layers below the layer give them, when the
//! layer is built (the planner has no layer content). Such a layer reads
//! the layers below, so its key covers their stack digest: a change of
//! what a name resolves to there rebuilds it. Its ops carry no owner until
//! [`resolve_job`] puts the ids in, so only ids ever reach a layer.
//!
//! The files are parsed here by hand (colon-separated fields, `#` comments)
//! rather than with a crate: the format is four lines of code, and the
//! crates that parse it read the host's files, not an image's bytes.

use miette::SourceSpan;
use strata_layer::{JobOp, LayerJob, Owner};
use strata_spec::OwnerId;

/// The owner of one op of a layer job, given by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedOwner {
    /// Index of the op in the layer's job (and in its `op_spans`).
    pub op: usize,
    pub owner: strata_spec::Owner,
    /// The `owner=` value in the spec.
    pub span: SourceSpan,
}

/// The error for an owner by name in a layer with no layer below it: no
/// `/etc/passwd` can give the name an id.
pub(crate) fn nothing_below(
    image: &str,
    layer: &str,
    owner: &strata_spec::Spanned<strata_spec::Owner>,
) -> strata_spec::SpecDiagnostic {
    strata_spec::SpecDiagnostic::new(
        format!(
            "owner `{}` names a user or group, but layer `{image}/{layer}` has no layer below it to hold /etc/passwd and /etc/group",
            owner.value
        ),
        owner.span,
        "a name",
    )
    .with_help("names are resolved against the image's own files; on an image without them, give numeric ids: owner=\"1000:1000\"")
}

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// The [`NamedOwner`] at fault.
    pub index: usize,
    /// `user "app"` or `group "staff"`.
    pub what: String,
    /// `/etc/passwd` or `/etc/group`.
    pub file: &'static str,
}

/// The fields of each entry line of a passwd or group file.
fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

/// `owner` as ids: a user name's uid (and, without a group, its primary
/// gid, as BuildKit's `COPY --chown=NAME` gives) from `passwd`, a group
/// name's gid from `group`; numbers as they are. The first matching line
/// wins, as in libc's `getpwnam`.
pub fn resolve(
    owner: &strata_spec::Owner,
    passwd: &str,
    group: &str,
) -> Result<Owner, (String, &'static str)> {
    let user_line = |name: &str| {
        entries(passwd)
            .find(|f| f.len() >= 4 && f[0] == name)
            .and_then(|f| Some((f[2].parse::<u32>().ok()?, f[3].parse::<u32>().ok()?)))
    };
    let (uid, primary) = match &owner.user {
        OwnerId::Id(n) => (*n, None),
        OwnerId::Name(name) => match user_line(name) {
            Some((u, g)) => (u, Some(g)),
            None => return Err((format!("user `{name}`"), "/etc/passwd")),
        },
    };
    let gid = match (&owner.group, primary) {
        (Some(OwnerId::Id(n)), _) => *n,
        (Some(OwnerId::Name(name)), _) => entries(group)
            .find(|f| f.len() >= 3 && f[0] == name)
            .and_then(|f| f[2].parse::<u32>().ok())
            .ok_or_else(|| (format!("group `{name}`"), "/etc/group"))?,
        (None, Some(g)) => g,
        // The parser gives a numeric user a group always.
        (None, None) => uid,
    };
    Ok(Owner { uid, gid })
}

/// `job` with the owner of every op of `names` resolved (see [`resolve`]).
pub fn resolve_job(
    job: &LayerJob,
    names: &[NamedOwner],
    passwd: &str,
    group: &str,
) -> Result<LayerJob, Unresolved> {
    let mut job = job.clone();
    for (index, n) in names.iter().enumerate() {
        let ids = resolve(&n.owner, passwd, group).map_err(|(what, file)| Unresolved {
            index,
            what,
            file,
        })?;
        if let Some(op) = job.ops.get_mut(n.op) {
            match op {
                JobOp::Unpack { owner, .. }
                | JobOp::Copy { owner, .. }
                | JobOp::File { owner, .. }
                | JobOp::Mkdir { owner, .. }
                | JobOp::Symlink { owner, .. }
                | JobOp::Workdir { owner, .. } => *owner = Some(ids),
                // An attribute change gives numeric ids; a delete has no owner.
                JobOp::Delete { .. } | JobOp::Attr { .. } => {}
            }
        }
    }
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_spec::Owner as SpecOwner;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# a comment\napp:x:1234:1240::/home/app:/bin/sh\nbad:x:zz:1::/:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:app\napp:x:1234:\n";

    fn named(user: OwnerId, group: Option<OwnerId>) -> SpecOwner {
        SpecOwner { user, group }
    }
    fn n(s: &str) -> OwnerId {
        OwnerId::Name(s.to_owned())
    }

    #[test]
    fn names_resolve_against_the_files_given() {
        let r = |o| resolve(&o, PASSWD, GROUP);
        assert_eq!(
            r(named(n("app"), Some(n("app")))),
            Ok(Owner {
                uid: 1234,
                gid: 1234
            })
        );
        // A user alone: its primary group, from passwd.
        assert_eq!(
            r(named(n("app"), None)),
            Ok(Owner {
                uid: 1234,
                gid: 1240
            })
        );
        assert_eq!(
            r(named(OwnerId::Id(7), Some(n("staff")))),
            Ok(Owner { uid: 7, gid: 50 })
        );
        assert_eq!(
            r(named(n("root"), Some(OwnerId::Id(9)))),
            Ok(Owner { uid: 0, gid: 9 })
        );
        assert_eq!(
            r(named(n("ghost"), None)),
            Err(("user `ghost`".to_owned(), "/etc/passwd"))
        );
        assert_eq!(
            r(named(n("app"), Some(n("wheel")))),
            Err(("group `wheel`".to_owned(), "/etc/group"))
        );
        // A line with a broken uid is no entry.
        assert!(r(named(n("bad"), None)).is_err());
        // No files at all: every name is missing.
        assert!(resolve(&named(n("root"), None), "", "").is_err());
    }
}
