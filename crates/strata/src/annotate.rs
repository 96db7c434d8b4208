//! The annotations of an image manifest: the spec's `annotation`s, the
//! standard `org.opencontainers.image.created` from the images' time, and
//! `source` / `revision` from `compose --source` / `--revision`.
//!
//! Precedence, lowest first: `created` (always written, the spec's `epoch`
//! or SOURCE_DATE_EPOCH, so that it is as reproducible as the rest of the
//! image), then the spec's `annotation`s (a spec may set any of the three),
//! then the command-line flags (a CI job knows the commit it builds; the
//! spec in it cannot).

use std::collections::BTreeMap;

use strata_plan::ImageNode;

use crate::{ComposeOptions, Error};

/// `org.opencontainers.image.created`: when the image was built (RFC 3339).
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// `org.opencontainers.image.source`: the URL of the source the image was built from.
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
/// `org.opencontainers.image.revision`: the version control revision of that source.
pub const ANNOTATION_REVISION: &str = "org.opencontainers.image.revision";

/// The manifest annotations of `image`.
pub(crate) fn annotations(
    image: &ImageNode,
    opts: &ComposeOptions,
) -> Result<BTreeMap<String, String>, Error> {
    let created =
        strata_export::rfc3339(image.config.created).ok_or_else(|| Error::TimeOutOfRange {
            image: image.name.clone(),
            created: image.config.created,
        })?;
    let mut map = BTreeMap::from([(ANNOTATION_CREATED.to_owned(), created)]);
    map.extend(image.annotations.clone());
    for (key, value) in [
        (ANNOTATION_SOURCE, &opts.source),
        (ANNOTATION_REVISION, &opts.revision),
    ] {
        if let Some(value) = value {
            map.insert(key.to_owned(), value.clone());
        }
    }
    Ok(map)
}

/// The annotations of a multi-platform image index over `members`: those
/// every member has with the same value (`created`, `source`, `revision` as
/// a rule), so that the index says no more than its images agree on.
pub(crate) fn shared(members: &[&BTreeMap<String, String>]) -> BTreeMap<String, String> {
    let Some((first, rest)) = members.split_first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_keeps_only_what_its_images_agree_on() {
        let a = BTreeMap::from([
            ("created".to_owned(), "t".to_owned()),
            ("x".to_owned(), "1".to_owned()),
        ]);
        let b = BTreeMap::from([
            ("created".to_owned(), "t".to_owned()),
            ("x".to_owned(), "2".to_owned()),
        ]);
        assert_eq!(
            shared(&[&a, &b]),
            BTreeMap::from([("created".to_owned(), "t".to_owned())])
        );
        assert_eq!(shared(&[&a]), a);
        assert!(shared(&[]).is_empty());
    }
}
