//! Image references: `docker://HOST/REPO:TAG` and `docker://HOST/REPO@sha256:HEX`,
//! parsed with errors that say which part is wrong.

use std::fmt;
use std::str::FromStr;

use strata_oci::Digest;

use crate::Error;

/// The registry a reference names when its first component is not a host
/// (`centos:7` means Docker Hub, as the docker CLI reads it).
pub const DOCKER_HUB: &str = "docker.io";

/// A tag is at most this long (the distribution spec's rule).
pub const MAX_TAG_LEN: usize = 128;

/// A parsed image reference: where an image is, by tag, by digest, or both.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    /// `HOST[:PORT]`.
    pub registry: String,
    /// The repository path, `a/b/c`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parse `[docker://]HOST/REPO[:TAG][@sha256:HEX]`. The `docker://`
    /// prefix is optional here; the spec and the command line require it to
    /// tell a registry from a path.
    pub fn parse(text: &str) -> Result<Reference, Error> {
        let bad = |reason: String| Error::BadReference {
            reference: text.to_owned(),
            reason,
        };
        let rest = text.strip_prefix("docker://").unwrap_or(text);
        if rest.is_empty() {
            return Err(bad("it names no repository".into()));
        }
        let (name_tag, digest) = match rest.split_once('@') {
            Some((n, d)) => {
                let digest = Digest::from_str(d)
                    .ok()
                    .filter(|_| d.starts_with("sha256:"))
                    .ok_or_else(|| {
                        bad(format!(
                            "{d:?} after `@` is not a digest (sha256: and 64 lowercase hex digits)"
                        ))
                    })?;
                (n, Some(digest))
            }
            None => (rest, None),
        };
        // The tag is after the last `:` that follows the last `/` (a `:`
        // before it is the registry's port).
        let slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[slash..].rfind(':') {
            Some(i) => (&name_tag[..slash + i], Some(&name_tag[slash + i + 1..])),
            None => (name_tag, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(|reason| bad(format!("tag {tag:?}: {reason}")))?;
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), rest.to_owned())
            }
            _ if name.contains('/') => (DOCKER_HUB.to_owned(), name.to_owned()),
            _ => (DOCKER_HUB.to_owned(), format!("library/{name}")),
        };
        if registry.is_empty() {
            return Err(bad("the registry host is empty".into()));
        }
        check_repository(&repository)
            .map_err(|reason| bad(format!("repository {repository:?}: {reason}")))?;
        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, Error> {
        check_tag(tag).map_err(|reason| Error::BadReference {
            reference: format!("{}/{}:{tag}", self.registry, self.repository),
            reason: format!("tag {tag:?}: {reason}"),
        })?;
        Ok(Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository at a digest (the tag is dropped).
    pub fn at_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// A sub-repository: `HOST/REPO` + `name` -> `HOST/REPO/name`.
    pub fn join(&self, name: &str) -> Result<Reference, Error> {
        let repository = format!("{}/{name}", self.repository);
        check_repository(&repository).map_err(|reason| Error::BadReference {
            reference: format!("{}/{repository}", self.registry),
            reason: format!("repository {repository:?}: {reason}"),
        })?;
        Ok(Reference {
            repository,
            tag: None,
            digest: None,
            ..self.clone()
        })
    }

    pub(crate) fn to_oci(&self) -> oci_client::Reference {
        match (&self.tag, &self.digest) {
            (Some(t), Some(d)) => oci_client::Reference::with_tag_and_digest(
                self.registry.clone(),
                self.repository.clone(),
                t.clone(),
                d.to_string(),
            ),
            (None, Some(d)) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                d.to_string(),
            ),
            (t, None) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                t.clone().unwrap_or_else(|| "latest".into()),
            ),
        }
    }
}

/// `docker://HOST/REPO[:TAG][@DIGEST]`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "docker://{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// The distribution spec's tag rule: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("a tag cannot be empty".into());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!(
            "a tag is at most {MAX_TAG_LEN} characters, this one has {}",
            tag.len()
        ));
    }
    if tag.starts_with(['.', '-']) {
        return Err("a tag cannot start with `.` or `-`".into());
    }
    if let Some(c) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "{c:?} is not allowed in a tag (letters, digits, `_`, `.`, `-`)"
        ));
    }
    Ok(())
}

/// The distribution spec's repository rule: components of lowercase letters
/// and digits, separated inside by `.`, `_`, `__` or runs of `-`.
fn check_repository(repo: &str) -> Result<(), String> {
    if repo.is_empty() {
        return Err("the repository is empty".into());
    }
    for comp in repo.split('/') {
        if comp.is_empty() {
            return Err("it has an empty path component".into());
        }
        if let Some(c) = comp.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        }) {
            return Err(format!(
                "{c:?} is not allowed (lowercase letters, digits, `.`, `_`, `-`)"
            ));
        }
        let first_last_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !first_last_ok(comp.chars().next()) || !first_last_ok(comp.chars().last()) {
            return Err(format!(
                "component {comp:?} must start and end with a letter or digit"
            ));
        }
        if comp.contains("..") || comp.contains("___") || comp.contains("._") || comp.contains("_.")
        {
            return Err(format!("component {comp:?} has a bad run of separators"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        Reference::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn host_port_repo_tag() {
        let r = ok("docker://127.0.0.1:5000/team/app:v1.2");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v1.2"));
        assert_eq!(r.digest, None);
        assert_eq!(r.to_string(), "docker://127.0.0.1:5000/team/app:v1.2");
    }

    #[test]
    fn a_port_is_not_a_tag() {
        let r = ok("localhost:5000/app");
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.tag, None);
    }

    #[test]
    fn digest_and_docker_hub_defaults() {
        let hex = "a".repeat(64);
        let r = ok(&format!("centos@sha256:{hex}"));
        assert_eq!(r.registry, DOCKER_HUB);
        assert_eq!(r.repository, "library/centos");
        assert_eq!(r.digest.map(|d| d.hex()), Some(hex));
        assert_eq!(ok("quay.io/centos/centos:7").registry, "quay.io");
        assert_eq!(ok("user/app:1").repository, "user/app");
    }

    #[test]
    fn errors_name_the_bad_part() {
        assert!(err("docker://h.io/App:1").contains("'A' is not allowed"));
        assert!(err("docker://h.io/app:").contains("a tag cannot be empty"));
        assert!(err("docker://h.io/app@sha256:abc").contains("is not a digest"));
        assert!(err(&format!("h.io/app:{}", "t".repeat(129))).contains("at most 128"));
        assert!(err("docker://").contains("names no repository"));
        assert!(err("h.io//app").contains("empty path component"));
        assert!(err("h.io/app:-x").contains("cannot start"));
    }

    #[test]
    fn join_and_retag() {
        let base = ok("docker://h.io:1/team");
        let r = base.join("tomcat").unwrap().with_tag("latest").unwrap();
        assert_eq!(r.to_string(), "docker://h.io:1/team/tomcat:latest");
        assert!(base.join("Bad").is_err());
        assert!(base.with_tag("a b").is_err());
    }
}
