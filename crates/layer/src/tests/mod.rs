//! Tests of the crate: helpers to make jobs, archives and blobs, and the
//! test modules by theme.

mod archives;
mod attr;
mod delete;
mod determinism;
mod format;
mod fuzz;
mod host;
mod hostile;
mod inplace;
mod paths;
mod pgzip;
mod race;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::ustar::{self, Header};
use crate::{BuildOutput, Compression, Error, ImagePath, JobOp, LayerJob, LowerView, build};

pub(crate) const EPOCH: u64 = 1_700_000_000;

pub(crate) fn p(s: &str) -> ImagePath {
    ImagePath::parse_abs(s).expect("a valid test path")
}

pub(crate) fn job(ops: Vec<JobOp>, compression: Compression) -> LayerJob {
    LayerJob {
        ops,
        epoch: EPOCH,
        compression,
        limits: crate::Limits::DEFAULT,
    }
}

/// Builds `ops` (uncompressed) on `lower`; the output and the blob.
pub(crate) fn build_on(
    ops: Vec<JobOp>,
    lower: &LowerView,
) -> Result<(BuildOutput, Vec<u8>), Error> {
    build_job(&job(ops, Compression::None), lower)
}

pub(crate) fn build_job(
    job: &LayerJob,
    lower: &LowerView,
) -> Result<(BuildOutput, Vec<u8>), Error> {
    let mut blob = Vec::new();
    let out = build(job, lower, &mut blob, &|_| {})?;
    Ok((out, blob))
}

pub(crate) fn build_ok(ops: Vec<JobOp>) -> (BuildOutput, Vec<u8>) {
    build_on(ops, &LowerView::new()).expect("the layer builds")
}

/// The listing's text form, line by line.
pub(crate) fn lines(out: &BuildOutput) -> Vec<String> {
    out.listing.entries.iter().map(|e| e.line()).collect()
}

/// The error message of a build that must fail.
pub(crate) fn fails(ops: Vec<JobOp>) -> (Error, String) {
    let e = build_on(ops, &LowerView::new()).expect_err("the build must fail");
    let msg = e.to_string();
    (e, msg)
}

pub(crate) fn file(path: &str, content: &[u8]) -> JobOp {
    JobOp::File {
        path: p(path),
        content: content.to_vec(),
        mode: None,
        owner: None,
    }
}

pub(crate) fn mkdir(path: &str) -> JobOp {
    JobOp::Mkdir {
        path: p(path),
        mode: None,
        owner: None,
    }
}

pub(crate) fn delete(path: &str) -> JobOp {
    JobOp::Delete { path: p(path) }
}

pub(crate) fn unpack(archive: &Path, to: &str) -> JobOp {
    JobOp::Unpack {
        archive: crate::HostInput::open(archive).unwrap(),
        to: p(to),
        owner: None,
        mode: None,
    }
}

/// One member of a hand-made archive; names are written exactly as given,
/// so hostile archives can be made.
pub(crate) struct Member<'a> {
    pub name: &'a [u8],
    pub typeflag: u8,
    pub mode: u32,
    pub data: &'a [u8],
    pub link: &'a [u8],
    pub device: Option<(u32, u32)>,
    pub xattrs: Vec<(String, Vec<u8>)>,
    pub uid: u32,
}

impl<'a> Member<'a> {
    pub fn file(name: &'a str, data: &'a [u8]) -> Self {
        Member::raw(name.as_bytes(), ustar::kind::FILE, data, b"")
    }
    pub fn dir(name: &'a str) -> Self {
        let mut m = Member::raw(name.as_bytes(), ustar::kind::DIR, b"", b"");
        m.mode = 0o755;
        m
    }
    pub fn symlink(name: &'a str, target: &'a str) -> Self {
        let mut m = Member::raw(
            name.as_bytes(),
            ustar::kind::SYMLINK,
            b"",
            target.as_bytes(),
        );
        m.mode = 0o777;
        m
    }
    pub fn hardlink(name: &'a str, target: &'a str) -> Self {
        Member::raw(
            name.as_bytes(),
            ustar::kind::HARDLINK,
            b"",
            target.as_bytes(),
        )
    }
    pub fn raw(name: &'a [u8], typeflag: u8, data: &'a [u8], link: &'a [u8]) -> Self {
        Member {
            name,
            typeflag,
            mode: 0o644,
            data,
            link,
            device: None,
            xattrs: Vec::new(),
            uid: 1000,
        }
    }
}

/// A plain tar of `members`, in the given order, with a random-ish mtime
/// and user names so that normalisation is exercised.
pub(crate) fn tar_of(members: &[Member<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        ustar::write_header(
            &mut out,
            &Header {
                name: m.name,
                typeflag: m.typeflag,
                mode: m.mode,
                uid: m.uid,
                gid: 1000,
                size: m.data.len() as u64,
                mtime: 1_234_567_890,
                link: m.link,
                device: m.device,
                xattrs: &m.xattrs,
            },
        )
        .expect("a header");
        out.extend_from_slice(m.data);
        ustar::pad(&mut out, m.data.len() as u64).expect("padding");
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

pub(crate) fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

pub(crate) fn xz(bytes: &[u8]) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
    e.write_all(bytes).expect("xz");
    e.finish().expect("xz")
}

pub(crate) fn zst(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 1).expect("zstd")
}

pub(crate) fn bz2(bytes: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(bytes).expect("bzip2");
    e.finish().expect("bzip2")
}

/// Writes `bytes` to `dir/name`.
pub(crate) fn put_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("a test file");
    path
}

/// The member names and typeflags of a plain tar, read by the `tar` crate
/// (an implementation other than ours).
pub(crate) fn tar_names(tar_bytes: &[u8]) -> Vec<(String, char)> {
    let mut a = tar::Archive::new(tar_bytes);
    a.entries()
        .expect("a tar")
        .map(|e| {
            let e = e.expect("an entry");
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            (name, char::from(e.header().entry_type().as_byte()))
        })
        .collect()
}

/// The union view of one layer made of `ops`.
pub(crate) fn lower_of(ops: Vec<JobOp>) -> LowerView {
    let mut lower = LowerView::new();
    lower.apply(&build_ok(ops).0.listing);
    lower
}
