//! `.deb` archives (deb(5)): an `ar` archive of `debian-binary`, a
//! compressed `control.tar` and a compressed `data.tar`.
//!
//! Nothing here is extracted onto the host: [`DebFile::copy_data`] copies
//! the data member's bytes, still compressed, to a file that the layer
//! builder then ingests as any input tarball (with its checks against
//! hostile names and bombs), and [`DebFile::control`] reads the few control
//! members strata needs into memory, bounded by [`CONTROL_MAX`]. Callers
//! hand this module only files whose sha256 matched their signed index.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::Error;

/// The most a decompressed `control.tar` may hold: real ones are a few
/// kilobytes to a few hundred (large `md5sums`).
pub const CONTROL_MAX: u64 = 64 << 20;

/// The most a file read out of a data archive by [`DebFile::scan_data`]
/// may weigh (a CA certificate is a few kilobytes).
pub const WANTED_MAX: u64 = 1 << 20;

/// Files read out of an archive, by path.
pub type Files = std::collections::BTreeMap<String, Vec<u8>>;

/// Entries' [`EntryMeta`], by path.
pub type Metas = BTreeMap<String, EntryMeta>;

/// An entry of a data archive as [`DebFile::scan_data_meta`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    pub kind: EntryKind,
    /// The permission bits.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// A symlink's target.
    pub link: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// A hard link, device or fifo: not copied by the effects strata does.
    Other,
}

/// One member of the `ar` archive.
#[derive(Debug, Clone)]
struct Member {
    name: String,
    offset: u64,
    size: u64,
}

/// An opened `.deb`: where its members lie.
pub struct DebFile {
    name: String,
    file: File,
    control: Member,
    data: Member,
}

/// The control members strata uses.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// `control`: the package's own paragraph.
    pub control: String,
    /// `conffiles`, `md5sums`, `postinst`, ... by member name.
    pub files: std::collections::BTreeMap<String, Vec<u8>>,
}

impl DebFile {
    /// Opens a `.deb`; `name` is what errors call it (the package's file name).
    pub fn open(path: &Path, name: &str) -> Result<DebFile, Error> {
        let bad = |reason: String| Error::BadDeb {
            deb: name.to_owned(),
            reason,
        };
        let io = |e: io::Error| Error::Io {
            path: path.to_owned(),
            source: e,
        };
        let mut file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut magic = [0u8; 8];
        file.read_exact(&mut magic)
            .map_err(|_| bad("shorter than an ar header".into()))?;
        if &magic != b"!<arch>\n" {
            return Err(bad("not an ar archive".into()));
        }
        let mut members = Vec::new();
        let mut pos = 8u64;
        while pos < len {
            if members.len() >= 16 {
                return Err(bad("more members than a .deb has".into()));
            }
            let mut h = [0u8; 60];
            file.seek(SeekFrom::Start(pos)).map_err(io)?;
            file.read_exact(&mut h)
                .map_err(|_| bad(format!("a truncated member header at byte {pos}")))?;
            if &h[58..60] != b"`\n" {
                return Err(bad(format!("a bad member header at byte {pos}")));
            }
            let name = std::str::from_utf8(&h[..16])
                .map_err(|_| bad("a member name is not ASCII".into()))?
                .trim_end()
                .trim_end_matches('/')
                .to_owned();
            let size = std::str::from_utf8(&h[48..58])
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| bad(format!("member {name:?}: a bad size")))?;
            let offset = pos + 60;
            if offset.checked_add(size).is_none_or(|end| end > len) {
                return Err(bad(format!(
                    "member {name:?} runs past the end of the file"
                )));
            }
            members.push(Member { name, offset, size });
            // Members are padded to an even offset.
            pos = offset + size + (size & 1);
        }
        let first = members
            .first()
            .ok_or_else(|| bad("an empty archive".into()))?;
        if first.name != "debian-binary" {
            return Err(bad("the first member is not debian-binary".into()));
        }
        let mut version = vec![0u8; first.size.min(16) as usize];
        file.seek(SeekFrom::Start(first.offset)).map_err(io)?;
        file.read_exact(&mut version).map_err(io)?;
        if !version.starts_with(b"2.") {
            return Err(bad(format!(
                "format {:?} is not 2.x",
                String::from_utf8_lossy(&version).trim()
            )));
        }
        let find = |prefix: &str| -> Result<Member, Error> {
            let mut it = members.iter().filter(|m| {
                m.name == prefix
                    || m.name
                        .strip_prefix(prefix)
                        .is_some_and(|ext| [".gz", ".xz", ".zst", ".bz2"].contains(&ext))
            });
            let m = it
                .next()
                .ok_or_else(|| bad(format!("no {prefix} member")))?;
            if it.next().is_some() {
                return Err(bad(format!("two {prefix} members")));
            }
            Ok(m.clone())
        };
        let control = find("control.tar")?;
        let data = find("data.tar")?;
        Ok(DebFile {
            name: name.to_owned(),
            file,
            control,
            data,
        })
    }

    /// Copies the data member, as stored (compressed), to `out`; returns
    /// its size.
    pub fn copy_data(&mut self, out: &mut impl io::Write) -> Result<u64, Error> {
        self.file
            .seek(SeekFrom::Start(self.data.offset))
            .map_err(|e| self.io(e))?;
        let mut r = (&self.file).take(self.data.size);
        io::copy(&mut r, out).map_err(|e| self.io(e))
    }

    /// Writes the data member decompressed (a plain tar) to `out`, at most
    /// `max` bytes; returns its size. A plain tar is what the layer
    /// builder reads in place, so a warm build decompresses nothing.
    pub fn decompress_data(&mut self, out: &mut impl io::Write, max: u64) -> Result<u64, Error> {
        let name = format!("{}: {}", self.name, self.data.name);
        let mut reader = self.data_reader()?.take(max + 1);
        let n = io::copy(&mut reader, out).map_err(|e| Error::BadDeb {
            deb: name.clone(),
            reason: e.to_string(),
        })?;
        if n > max {
            return Err(Error::BadDeb {
                deb: name,
                reason: format!("unpacks to more than {max} bytes"),
            });
        }
        Ok(n)
    }

    /// The data member, decompressed as a stream.
    fn data_reader(&mut self) -> Result<Box<dyn Read + '_>, Error> {
        self.file
            .seek(SeekFrom::Start(self.data.offset))
            .map_err(|e| self.io(e))?;
        let raw = (&self.file).take(self.data.size);
        let bad = |reason: String| Error::BadDeb {
            deb: self.name.clone(),
            reason: format!("{}: {reason}", self.data.name),
        };
        Ok(match self.data_compression() {
            "" => Box::new(raw),
            "xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(raw)),
            "gz" => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            "zst" => {
                Box::new(zstd::stream::read::Decoder::new(raw).map_err(|e| bad(e.to_string()))?)
            }
            other => return Err(bad(format!("unsupported compression {other:?}"))),
        })
    }

    /// The data member's compression, from its name: `xz`, `zst`, `gz`,
    /// `bz2`, or empty for a plain tar.
    pub fn data_compression(&self) -> &str {
        self.data.name.strip_prefix("data.tar.").unwrap_or("")
    }

    /// The paths the data archive holds, as dpkg lists them in
    /// `info/PKG.list`: `/.` for the root, then each path absolute and
    /// without a trailing `/`, in archive order. At most `max_entries`;
    /// the archive is decompressed as a stream and only its headers are
    /// read.
    pub fn data_paths(&mut self, max_entries: usize) -> Result<Vec<String>, Error> {
        self.scan_data(max_entries, |_| false)
            .map(|(paths, _)| paths)
    }

    /// Like [`DebFile::data_paths`], also returning the content of the
    /// regular files whose path `want` picks (at most [`WANTED_MAX`] bytes
    /// each), by path.
    pub fn scan_data(
        &mut self,
        max_entries: usize,
        want: impl Fn(&str) -> bool,
    ) -> Result<(Vec<String>, Files), Error> {
        let (paths, files, _) = self.scan_data_meta(max_entries, want, |_| false)?;
        Ok((paths, files))
    }

    /// [`DebFile::scan_data`], also returning the kind, mode, owner and
    /// link target of the entries whose path `want_meta` picks.
    pub fn scan_data_meta(
        &mut self,
        max_entries: usize,
        want: impl Fn(&str) -> bool,
        want_meta: impl Fn(&str) -> bool,
    ) -> Result<(Vec<String>, Files, Metas), Error> {
        let mut metas = BTreeMap::new();
        let (deb, member) = (self.name.clone(), self.data.name.clone());
        let bad = |reason: String| Error::BadDeb {
            deb: deb.clone(),
            reason: format!("{member}: {reason}"),
        };
        let reader = self.data_reader()?;
        let mut out = Vec::new();
        let mut files = std::collections::BTreeMap::new();
        let mut ar = tar::Archive::new(reader);
        for e in ar.entries().map_err(|e| bad(e.to_string()))? {
            let mut e = e.map_err(|e| bad(e.to_string()))?;
            if out.len() >= max_entries {
                return Err(bad(format!("more than {max_entries} entries")));
            }
            let raw = e.path_bytes().into_owned();
            let text = String::from_utf8_lossy(&raw);
            let t = text.trim_start_matches('.').trim_matches('/');
            let path = if t.is_empty() {
                "/.".to_owned()
            } else {
                format!("/{t}")
            };
            if e.header().entry_type().is_file() && want(&path) {
                let mut buf = Vec::new();
                (&mut e)
                    .take(WANTED_MAX + 1)
                    .read_to_end(&mut buf)
                    .map_err(|e| bad(e.to_string()))?;
                if buf.len() as u64 > WANTED_MAX {
                    return Err(bad(format!("{path} is larger than {WANTED_MAX} bytes")));
                }
                files.insert(path.clone(), buf);
            }
            if want_meta(&path) {
                let h = e.header();
                let t = h.entry_type();
                let kind = if t.is_file() {
                    EntryKind::File
                } else if t.is_dir() {
                    EntryKind::Dir
                } else if t.is_symlink() {
                    EntryKind::Symlink
                } else {
                    EntryKind::Other
                };
                let link = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned());
                metas.insert(
                    path.clone(),
                    EntryMeta {
                        kind,
                        mode: h.mode().map_err(|e| bad(e.to_string()))? & 0o7777,
                        uid: h.uid().map_err(|e| bad(e.to_string()))?,
                        gid: h.gid().map_err(|e| bad(e.to_string()))?,
                        link: if kind == EntryKind::Symlink {
                            link
                        } else {
                            None
                        },
                    },
                );
            }
            out.push(path);
        }
        Ok((out, files, metas))
    }

    /// Reads the control members.
    pub fn control(&mut self) -> Result<Control, Error> {
        let m = self.control.clone();
        self.file
            .seek(SeekFrom::Start(m.offset))
            .map_err(|e| self.io(e))?;
        let raw = (&self.file).take(m.size);
        let ext = m.name.strip_prefix("control.tar").unwrap_or("");
        let plain =
            crate::repo::decompress(raw, ext, CONTROL_MAX).map_err(|reason| Error::BadDeb {
                deb: self.name.clone(),
                reason: format!("{}: {reason}", m.name),
            })?;
        let bad = |reason: String| Error::BadDeb {
            deb: self.name.clone(),
            reason: format!("{}: {reason}", m.name),
        };
        let mut out = Control::default();
        let mut ar = tar::Archive::new(plain.as_slice());
        for e in ar.entries().map_err(|e| bad(e.to_string()))? {
            let mut e = e.map_err(|e| bad(e.to_string()))?;
            if !e.header().entry_type().is_file() {
                continue;
            }
            let path = e.path_bytes().into_owned();
            let name = String::from_utf8_lossy(&path)
                .trim_start_matches("./")
                .to_owned();
            if name.contains('/') {
                continue;
            }
            let mut buf = Vec::new();
            e.read_to_end(&mut buf).map_err(|e| bad(e.to_string()))?;
            out.files.insert(name, buf);
        }
        let control = out
            .files
            .remove("control")
            .ok_or_else(|| bad("no control file".into()))?;
        out.control =
            String::from_utf8(control).map_err(|_| bad("the control file is not UTF-8".into()))?;
        Ok(out)
    }

    fn io(&self, e: io::Error) -> Error {
        Error::BadDeb {
            deb: self.name.clone(),
            reason: e.to_string(),
        }
    }
}
