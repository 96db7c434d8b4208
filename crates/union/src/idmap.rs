//! The ids a `run` step's user namespace maps: which host uids and gids
//! stand for the image's users, how the map is written, and how an owner
//! seen on the host is read back as the image's.
//!
//! Three cases, chosen in this order:
//! - **strata runs as root**: a private range of 65,536 ids, by default
//!   systemd's "foreign" range (`2147352576`, 0x7FFE0000, documented for
//!   trees owned by a foreign user namespace), or the first range of the
//!   user `strata` in `/etc/subuid` and `/etc/subgid` when there is one.
//!   The container's root is that range's first id, never the host's root,
//!   and the maps are written directly (root may map any ids).
//! - **an unprivileged user with subordinate ranges**: the user as the
//!   container's root and its `/etc/subuid`/`/etc/subgid` range as ids 1 and
//!   up, written by `newuidmap`/`newgidmap` as rootless podman and buildah do.
//! - **otherwise**: the user alone as root, with a warning that says why and
//!   how to get a range; `setgroups` is denied then, as the kernel requires.
//!
//! Invariant: the container's id 0 is never the host's id 0.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::Error;

/// How many ids a full map covers: every id an image's files commonly use
/// (nobody is 65534).
pub const FULL: u32 = 65_536;

/// systemd's foreign UID range: for trees owned by a foreign user namespace.
pub const FOREIGN_BASE: u32 = 0x7FFE_0000;

/// One line of a `uid_map` or `gid_map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// How the maps get written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// Directly to `/proc/PID/{uid,gid}_map` (root).
    Direct,
    /// By `newuidmap`/`newgidmap` (an unprivileged user's subordinate ids).
    Helpers,
    /// One id only: `setgroups` denied, then the maps written directly.
    Single,
}

/// The uid and gid maps of a run's user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap {
    pub uids: Vec<Range>,
    pub gids: Vec<Range>,
    pub writer: Writer,
    /// Why only one id is mapped, for the warning (with [`Writer::Single`]).
    pub why_single: Option<String>,
}

impl IdMap {
    /// The map for this process, as the module doc describes.
    pub fn for_this_process() -> IdMap {
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        if uid == 0 {
            let sub = |file: &str| {
                fs::read_to_string(file)
                    .ok()
                    .and_then(|t| subordinate(&t, "strata", None))
            };
            let (u, g) = match (sub("/etc/subuid"), sub("/etc/subgid")) {
                (Some(u), Some(g)) => (u, g),
                _ => ((FOREIGN_BASE, FULL), (FOREIGN_BASE, FULL)),
            };
            let full = |(outside, count): (u32, u32)| {
                vec![Range {
                    inside: 0,
                    outside,
                    count,
                }]
            };
            return IdMap {
                uids: full(u),
                gids: full(g),
                writer: Writer::Direct,
                why_single: None,
            };
        }
        let name = user_name(uid);
        let helpers = find("newuidmap").is_some() && find("newgidmap").is_some();
        let sub = |file: &str, id: u32| {
            fs::read_to_string(file)
                .ok()
                .and_then(|t| subordinate(&t, name.as_deref().unwrap_or(""), Some(id)))
        };
        let why = match (sub("/etc/subuid", uid), sub("/etc/subgid", gid)) {
            (Some(u), Some(g)) if helpers => {
                let two = |own: u32, (outside, count): (u32, u32)| {
                    vec![
                        Range {
                            inside: 0,
                            outside: own,
                            count: 1,
                        },
                        Range {
                            inside: 1,
                            outside,
                            count: count.min(FULL - 1),
                        },
                    ]
                };
                return IdMap {
                    uids: two(uid, u),
                    gids: two(gid, g),
                    writer: Writer::Helpers,
                    why_single: None,
                };
            }
            (Some(_), Some(_)) => {
                "newuidmap and newgidmap are not installed (Debian's package uidmap)".to_owned()
            }
            _ => format!(
                "/etc/subuid and /etc/subgid give the user {} no range (add one, e.g. `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {}`)",
                name.as_deref().unwrap_or("?"),
                name.as_deref().unwrap_or("USER"),
            ),
        };
        let one = |id: u32| {
            vec![Range {
                inside: 0,
                outside: id,
                count: 1,
            }]
        };
        IdMap {
            uids: one(uid),
            gids: one(gid),
            writer: Writer::Single,
            why_single: Some(why),
        }
    }

    /// Whether every id of an image maps (not just root).
    pub fn is_full(&self) -> bool {
        self.writer != Writer::Single
    }

    /// The host uid that stands for the image's `uid`.
    pub fn host_uid(&self, uid: u32) -> Option<u32> {
        to_outside(&self.uids, uid)
    }

    /// The host gid that stands for the image's `gid`.
    pub fn host_gid(&self, gid: u32) -> Option<u32> {
        to_outside(&self.gids, gid)
    }

    /// The image's uid for the host's `uid`, if mapped.
    pub fn image_uid(&self, uid: u32) -> Option<u32> {
        to_inside(&self.uids, uid)
    }

    /// The image's gid for the host's `gid`, if mapped.
    pub fn image_gid(&self, gid: u32) -> Option<u32> {
        to_inside(&self.gids, gid)
    }

    /// Writes the maps of the user namespace that process `pid` is in.
    pub fn write(&self, pid: u32) -> Result<(), Error> {
        let proc = Path::new("/proc").join(pid.to_string());
        let text = |ranges: &[Range]| {
            ranges
                .iter()
                .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count))
                .collect::<String>()
        };
        let put = |name: &str, text: &str| {
            let path = proc.join(name);
            fs::write(&path, text).map_err(|e| {
                Error::Sandbox(format!(
                    "cannot write {}: {e} (map {text:?})",
                    path.display()
                ))
            })
        };
        match self.writer {
            Writer::Direct => {
                put("uid_map", &text(&self.uids))?;
                put("gid_map", &text(&self.gids))
            }
            Writer::Single => {
                put("setgroups", "deny")?;
                put("uid_map", &text(&self.uids))?;
                put("gid_map", &text(&self.gids))
            }
            Writer::Helpers => {
                for (tool, ranges) in [("newuidmap", &self.uids), ("newgidmap", &self.gids)] {
                    let mut cmd = Command::new(find(tool).unwrap_or_else(|| tool.into()));
                    cmd.arg(pid.to_string());
                    for r in ranges {
                        cmd.args([
                            r.inside.to_string(),
                            r.outside.to_string(),
                            r.count.to_string(),
                        ]);
                    }
                    let out = cmd
                        .stdin(Stdio::null())
                        .output()
                        .map_err(|e| Error::Sandbox(format!("cannot start {tool}: {e}")))?;
                    if !out.status.success() {
                        return Err(Error::Sandbox(format!(
                            "{tool} refused the map {}: {}",
                            text(ranges).trim().replace('\n', ", "),
                            String::from_utf8_lossy(&out.stderr).trim()
                        )));
                    }
                }
                Ok(())
            }
        }
    }
}

fn to_outside(ranges: &[Range], id: u32) -> Option<u32> {
    ranges
        .iter()
        .find(|r| id >= r.inside && id - r.inside < r.count)
        .map(|r| r.outside + (id - r.inside))
}

fn to_inside(ranges: &[Range], id: u32) -> Option<u32> {
    ranges
        .iter()
        .find(|r| id >= r.outside && id - r.outside < r.count)
        .map(|r| r.inside + (id - r.outside))
}

/// The first range (`start`, `count`) that `/etc/subuid`-format `text` gives
/// to the user `name` (or to its numeric id), of at least [`FULL`] - 1 ids.
pub fn subordinate(text: &str, name: &str, id: Option<u32>) -> Option<(u32, u32)> {
    text.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let (who, start, count) = (f.next()?, f.next()?, f.next()?);
        let matches = (!name.is_empty() && who == name) || id.is_some_and(|i| who == i.to_string());
        let (start, count) = (start.parse::<u32>().ok()?, count.parse::<u32>().ok()?);
        (matches && count >= FULL - 1 && start.checked_add(count).is_some())
            .then_some((start, count.min(FULL)))
    })
}

/// The login name of `uid` from `/etc/passwd`.
fn user_name(uid: u32) -> Option<String> {
    let text = fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _ = f.next();
        (f.next()? == uid.to_string()).then(|| name.to_owned())
    })
}

/// A setuid helper by absolute path (never found through PATH).
fn find(name: &str) -> Option<std::path::PathBuf> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_are_found_by_name_or_id_and_must_be_full() {
        let text = "alice:100000:65536\nbob:200000:1000\n1001:300000:65536\n";
        assert_eq!(subordinate(text, "alice", None), Some((100000, 65536)));
        assert_eq!(subordinate(text, "bob", None), None, "too small");
        assert_eq!(
            subordinate(text, "carol", Some(1001)),
            Some((300000, 65536))
        );
        assert_eq!(subordinate(text, "", None), None);
        assert_eq!(subordinate("x:4294967295:65536\n", "x", None), None);
    }

    #[test]
    fn ids_translate_both_ways_and_root_is_never_the_hosts() {
        let m = IdMap {
            uids: vec![
                Range {
                    inside: 0,
                    outside: 1000,
                    count: 1,
                },
                Range {
                    inside: 1,
                    outside: 100000,
                    count: 65535,
                },
            ],
            gids: vec![Range {
                inside: 0,
                outside: FOREIGN_BASE,
                count: FULL,
            }],
            writer: Writer::Helpers,
            why_single: None,
        };
        assert_eq!(m.host_uid(0), Some(1000));
        assert_eq!(m.host_uid(1000), Some(100999));
        assert_eq!(m.image_uid(100999), Some(1000));
        assert_eq!(m.image_uid(0), None);
        assert_eq!(m.host_uid(65536), None);
        assert_eq!(m.host_gid(50), Some(FOREIGN_BASE + 50));
        assert_eq!(m.image_gid(FOREIGN_BASE + 65535), Some(65535));
        assert_eq!(m.image_gid(FOREIGN_BASE + 65536), None);
        if rustix::process::getuid().is_root() {
            let own = IdMap::for_this_process();
            assert!(own.is_full());
            assert_ne!(own.host_uid(0), Some(0));
            assert_ne!(own.host_gid(0), Some(0));
        }
    }
}
