//! The tar format at the byte level: a writer of canonical ustar headers (with
//! a PAX extended header only when a field does not fit) and a reader of
//! ustar, GNU and PAX archives that reports where each entry's data lies.
//!
//! Both are written here rather than taken from the `tar` crate because the
//! bytes are part of our output contract (invariant 1), and because PAX
//! records must be parsed by their length prefix: the `tar` crate splits them
//! at newlines, which breaks binary xattr values such as `security.capability`.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

pub(crate) const BLOCK: u64 = 512;

/// Typeflags we write or read.
pub(crate) mod kind {
    pub const FILE: u8 = b'0';
    pub const OLD_FILE: u8 = 0;
    pub const HARDLINK: u8 = b'1';
    pub const SYMLINK: u8 = b'2';
    pub const CHAR: u8 = b'3';
    pub const BLOCK: u8 = b'4';
    pub const DIR: u8 = b'5';
    pub const FIFO: u8 = b'6';
    pub const CONTIGUOUS: u8 = b'7';
    pub const PAX: u8 = b'x';
    pub const PAX_GLOBAL: u8 = b'g';
    pub const GNU_LONGNAME: u8 = b'L';
    pub const GNU_LONGLINK: u8 = b'K';
}

/// The largest values the ustar octal fields hold (7 and 11 digits).
const MAX_OCTAL_7: u64 = 0o7777777;
const MAX_OCTAL_11: u64 = 0o77777777777;
const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;
/// Extended headers (PAX records, GNU long names) larger than this in total
/// for one entry are refused: memory stays bounded whatever an input archive
/// claims, and no real name or xattr set comes near it.
const MAX_EXTENSION: u64 = 16 << 20;

/// What one tar entry's header says, before it is encoded.
pub(crate) struct Header<'a> {
    /// The member name as the tar stores it (directories end in `/`).
    pub name: &'a [u8],
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: u64,
    /// Symlink target or hardlink name; empty otherwise.
    pub link: &'a [u8],
    /// (major, minor) for device nodes.
    pub device: Option<(u32, u32)>,
    /// Sorted by name.
    pub xattrs: &'a [(String, Vec<u8>)],
}

/// Writes `h` as one ustar header block, preceded by a PAX extended header
/// when some field does not fit ustar: a name that cannot be split into
/// prefix and name, a link over 100 bytes, a size of 8 GiB or more, an id or
/// mtime too large for its octal field, or xattrs. Returns the bytes written.
pub(crate) fn write_header(w: &mut dyn Write, h: &Header<'_>) -> io::Result<u64> {
    let mut pax: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let split = split_name(h.name);
    if split.is_none() {
        pax.insert("path".into(), h.name.to_vec());
    }
    if h.link.len() > NAME_LEN {
        pax.insert("linkpath".into(), h.link.to_vec());
    }
    if h.size > MAX_OCTAL_11 {
        pax.insert("size".into(), h.size.to_string().into_bytes());
    }
    if u64::from(h.uid) > MAX_OCTAL_7 {
        pax.insert("uid".into(), h.uid.to_string().into_bytes());
    }
    if u64::from(h.gid) > MAX_OCTAL_7 {
        pax.insert("gid".into(), h.gid.to_string().into_bytes());
    }
    if h.mtime > MAX_OCTAL_11 {
        pax.insert("mtime".into(), h.mtime.to_string().into_bytes());
    }
    for (name, value) in h.xattrs {
        pax.insert(format!("SCHILY.xattr.{name}"), value.clone());
    }

    let mut written = 0;
    if !pax.is_empty() {
        let data = pax_records(&pax);
        // Readers ignore this name; Go's archive/tar uses the same shape, and a
        // fixed one keeps the bytes independent of the writing process.
        let mut name = b"PaxHeaders.0/".to_vec();
        let base = h.name.strip_suffix(b"/").unwrap_or(h.name);
        let base = base.rsplit(|&b| b == b'/').next().unwrap_or(base);
        name.extend_from_slice(base);
        name.truncate(NAME_LEN);
        let block = encode(&Header {
            name: &name,
            typeflag: kind::PAX,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: data.len() as u64,
            mtime: h.mtime.min(MAX_OCTAL_11),
            link: b"",
            device: None,
            xattrs: &[],
        })?;
        w.write_all(&block)?;
        w.write_all(&data)?;
        written += BLOCK + data.len() as u64 + pad(w, data.len() as u64)?;
    }
    w.write_all(&encode(h)?)?;
    Ok(written + BLOCK)
}

/// Zeros up to the next block boundary after `len` bytes of data.
pub(crate) fn pad(w: &mut dyn Write, len: u64) -> io::Result<u64> {
    let n = padding(len);
    w.write_all(&[0u8; BLOCK as usize][..n as usize])?;
    Ok(n)
}

pub(crate) fn padding(len: u64) -> u64 {
    (BLOCK - len % BLOCK) % BLOCK
}

/// The ustar block of `h` alone. Fields that do not fit (and are carried by
/// the PAX header instead) hold a truncated name or 0.
fn encode(h: &Header<'_>) -> io::Result<[u8; BLOCK as usize]> {
    let mut b = [0u8; BLOCK as usize];
    match split_name(h.name) {
        Some((prefix, name)) => {
            b[..name.len()].copy_from_slice(name);
            b[345..345 + prefix.len()].copy_from_slice(prefix);
        }
        None => {
            let n = h.name.len().min(NAME_LEN);
            b[..n].copy_from_slice(&h.name[..n]);
        }
    }
    octal(&mut b[100..108], u64::from(h.mode & 0o7777));
    octal(&mut b[108..116], capped(u64::from(h.uid), MAX_OCTAL_7));
    octal(&mut b[116..124], capped(u64::from(h.gid), MAX_OCTAL_7));
    octal(&mut b[124..136], capped(h.size, MAX_OCTAL_11));
    octal(&mut b[136..148], capped(h.mtime, MAX_OCTAL_11));
    b[156] = h.typeflag;
    if h.link.len() <= NAME_LEN {
        b[157..157 + h.link.len()].copy_from_slice(h.link);
    }
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    if let Some((major, minor)) = h.device {
        if u64::from(major) > MAX_OCTAL_7 || u64::from(minor) > MAX_OCTAL_7 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("device number {major},{minor} does not fit a tar header"),
            ));
        }
        octal(&mut b[329..337], u64::from(major));
        octal(&mut b[337..345], u64::from(minor));
    }
    b[148..156].fill(b' ');
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    octal(&mut b[148..155], sum);
    b[155] = b' ';
    Ok(b)
}

fn capped(v: u64, max: u64) -> u64 {
    if v > max { 0 } else { v }
}

/// Zero-padded octal digits filling all but the last byte of `field`, which
/// stays NUL.
fn octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
}

/// Splits a name into ustar's prefix and name fields as Go's archive/tar
/// does: the longest prefix (at most 155 bytes) ending at a `/` that leaves a
/// non-empty name of at most 100 bytes. `None` when no split works.
fn split_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= NAME_LEN {
        return Some((b"", name));
    }
    let mut limit = name.len().min(PREFIX_LEN + 1);
    if limit == name.len() && name[limit - 1] == b'/' {
        limit -= 1;
    }
    let i = name[..limit].iter().rposition(|&b| b == b'/')?;
    let rest = &name[i + 1..];
    if i == 0 || rest.is_empty() || rest.len() > NAME_LEN || i > PREFIX_LEN {
        return None;
    }
    Some((&name[..i], rest))
}

/// `LEN KEY=VALUE\n` records, where LEN counts the whole record.
fn pax_records(records: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let rest = key.len() + value.len() + 3; // space, `=`, newline
        let mut len = rest + 1;
        while rest + len.to_string().len() != len {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(len.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// PAX records as (key, value), in archive order.
pub(crate) type PaxRecords = Vec<(Vec<u8>, Vec<u8>)>;

/// One entry as an archive describes it, extension headers applied.
#[derive(Debug, Clone)]
pub(crate) struct RawEntry {
    pub name: Vec<u8>,
    pub typeflag: u8,
    pub mode: u64,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub link: Vec<u8>,
    pub device: (u64, u64),
    /// Seconds since the epoch (a PAX `mtime` record's whole seconds, else
    /// the header's; 0 when neither can be read: it never decides whether
    /// an entry is accepted).
    pub mtime: u64,
    /// The entry's own PAX records (not the global ones), in archive order.
    pub pax: PaxRecords,
    /// Offset of the entry's data from the start of the archive.
    pub data_offset: u64,
}

impl RawEntry {
    /// `SCHILY.xattr.*` records, sorted by name, later records winning.
    pub fn xattrs(&self) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.pax {
            if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                let name = String::from_utf8(name.to_vec())
                    .map_err(|_| "an xattr name is not UTF-8".to_owned())?;
                out.insert(name, v.clone());
            }
        }
        Ok(out.into_iter().collect())
    }
}

/// A source of archive bytes that can skip data it does not need.
pub(crate) trait Skip: Read {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let copied = io::copy(&mut self.take(n), &mut io::sink())?;
        if copied < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside an entry",
            ));
        }
        Ok(())
    }
}

/// Why an archive could not be read: its bytes could not be read (which for
/// a compressed input usually means corrupt data), or they are not a tar.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(io::Error),
    Format(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::Format(s) => f.write_str(s),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Reads entries one after another. The data of the current entry may be
/// read through [`Reader::data`]; whatever is left of it is skipped by the
/// next call to [`Reader::next_entry`].
pub(crate) struct Reader<R> {
    r: R,
    pos: u64,
    /// Offset of the next header.
    next: u64,
}

impl<R: Skip> Reader<R> {
    pub fn new(r: R) -> Self {
        Reader { r, pos: 0, next: 0 }
    }

    fn read_block(&mut self) -> Result<Option<[u8; BLOCK as usize]>, ReadError> {
        let mut b = [0u8; BLOCK as usize];
        let mut got = 0;
        while got < b.len() {
            match self.r.read(&mut b[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.pos += got as u64;
        match got {
            0 => Ok(None),
            512 => Ok(Some(b)),
            _ => Err(ReadError::Format(
                "the archive ends inside a header".to_owned(),
            )),
        }
    }

    fn skip_to(&mut self, offset: u64) -> Result<(), ReadError> {
        if offset > self.pos {
            self.r.skip(offset - self.pos)?;
            self.pos = offset;
        }
        Ok(())
    }

    /// The data of an extension header, bounded in size together with the
    /// `used` bytes of the same entry's earlier extension headers.
    fn read_extension(&mut self, size: u64, used: &mut u64, at: u64) -> Result<Vec<u8>, ReadError> {
        *used = used.saturating_add(size);
        if *used > MAX_EXTENSION {
            return Err(ReadError::Format(format!(
                "the extended headers at offset {at} are larger than {} MiB",
                MAX_EXTENSION >> 20
            )));
        }
        let mut data = Vec::with_capacity(size as usize);
        (&mut self.r).take(size).read_to_end(&mut data)?;
        self.pos += data.len() as u64;
        if (data.len() as u64) < size {
            return Err(ReadError::Format(format!(
                "the archive ends inside the extended header at offset {at}"
            )));
        }
        Ok(data)
    }

    /// The next entry, or `None` at the end-of-archive marker (or at the end
    /// of the bytes, as GNU tar accepts).
    pub fn next_entry(&mut self) -> Result<Option<RawEntry>, ReadError> {
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Option<PaxRecords> = None;
        // Bytes of extension headers read for this entry so far.
        let mut ext_used = 0u64;
        loop {
            let next = self.next;
            self.skip_to(next)?;
            let header_at = self.pos;
            let Some(b) = self.read_block()? else {
                return if long_name.is_some() || long_link.is_some() || pax.is_some() {
                    Err(ReadError::Format(
                        "the archive ends after an extended header".to_owned(),
                    ))
                } else {
                    Ok(None)
                };
            };
            if b.iter().all(|&x| x == 0) {
                return Ok(None);
            }
            check_sum(&b, header_at)?;
            let typeflag = b[156];
            let bad = |what: &str| {
                ReadError::Format(format!("bad {what} in the header at offset {header_at}"))
            };
            let field = |r: std::ops::Range<usize>, what: &str| {
                number(&b[r]).ok_or_else(|| bad(&format!("{what} field")))
            };
            let header_size = field(124..136, "size")?;
            let extension = matches!(
                typeflag,
                kind::PAX | kind::PAX_GLOBAL | kind::GNU_LONGNAME | kind::GNU_LONGLINK
            );
            // PAX records describe the next real entry, never an extension
            // header between them and it.
            let size = match pax
                .as_ref()
                .filter(|_| !extension)
                .and_then(|p| pax_number(p, b"size"))
            {
                Some(Ok(n)) => n,
                Some(Err(())) => return Err(bad("pax size record")),
                None => header_size,
            };
            // Links, devices, fifos and directories have no data whatever
            // their size field says, as Go's archive/tar (and so Docker and
            // containerd) read them: a lying size cannot hide entries.
            let size = if header_only(typeflag) { 0 } else { size };
            let data_offset = self.pos;
            self.next = data_offset
                .checked_add(size)
                .and_then(|n| n.checked_add(padding(size)))
                .ok_or_else(|| bad("size (it overflows)"))?;
            match typeflag {
                kind::GNU_LONGNAME | kind::GNU_LONGLINK => {
                    let mut data = self.read_extension(size, &mut ext_used, header_at)?;
                    while data.last() == Some(&0) {
                        data.pop();
                    }
                    if typeflag == kind::GNU_LONGNAME {
                        long_name = Some(data);
                    } else {
                        long_link = Some(data);
                    }
                    continue;
                }
                kind::PAX => {
                    let data = self.read_extension(size, &mut ext_used, header_at)?;
                    let records = parse_pax(&data).map_err(|reason| {
                        ReadError::Format(format!(
                            "{reason} in the extended header at offset {header_at}"
                        ))
                    })?;
                    pax.get_or_insert_with(Vec::new).extend(records);
                    continue;
                }
                kind::PAX_GLOBAL => {
                    // Global records (usually only a comment) describe no
                    // entry; we keep nothing from them.
                    self.read_extension(size, &mut 0, header_at)?;
                    continue;
                }
                _ => {}
            }
            let posix = &b[257..263] == b"ustar\0";
            let gnu = &b[257..265] == b"ustar  \0";
            let mut name = cstr(&b[..100]).to_vec();
            if posix {
                let prefix = cstr(&b[345..500]);
                if !prefix.is_empty() {
                    let mut full = prefix.to_vec();
                    full.push(b'/');
                    full.extend_from_slice(&name);
                    name = full;
                }
            }
            let mut link = cstr(&b[157..257]).to_vec();
            let (mut uid, mut gid) = (field(108..116, "uid")?, field(116..124, "gid")?);
            let device = if posix || gnu {
                (field(329..337, "devmajor")?, field(337..345, "devminor")?)
            } else {
                (0, 0)
            };
            if let Some(n) = long_name.take() {
                name = n;
            }
            if let Some(l) = long_link.take() {
                link = l;
            }
            let pax = pax.take().unwrap_or_default();
            for (k, v) in &pax {
                match k.as_slice() {
                    b"path" => name = v.clone(),
                    b"linkpath" => link = v.clone(),
                    _ => {}
                }
            }
            if let Some(r) = pax_number(&pax, b"uid") {
                uid = r.map_err(|()| bad("pax uid record"))?;
            }
            if let Some(r) = pax_number(&pax, b"gid") {
                gid = r.map_err(|()| bad("pax gid record"))?;
            }
            let pax_mtime = pax
                .iter()
                .rev()
                .find(|(k, _)| k == b"mtime")
                .and_then(|(_, v)| {
                    let whole = v.split(|&c| c == b'.').next().unwrap_or_default();
                    std::str::from_utf8(whole).ok()?.parse().ok()
                });
            let mtime = pax_mtime.or_else(|| number(&b[136..148])).unwrap_or(0);
            return Ok(Some(RawEntry {
                name,
                typeflag,
                mode: field(100..108, "mode")?,
                uid,
                gid,
                size,
                link,
                device,
                mtime,
                pax,
                data_offset,
            }));
        }
    }

    /// Reads whatever follows the end-of-archive marker, so that a damaged
    /// compressed stream is noticed even after the tar's end.
    pub fn drain(&mut self) -> io::Result<u64> {
        io::copy(&mut self.r, &mut io::sink())
    }

    /// The data of the entry last returned, `size` bytes at most.
    pub fn data(&mut self, size: u64) -> impl Read + '_ {
        CountingTake {
            r: &mut self.r,
            pos: &mut self.pos,
            left: size,
        }
    }
}

struct CountingTake<'a, R> {
    r: &'a mut R,
    pos: &'a mut u64,
    left: u64,
}

impl<R: Read> Read for CountingTake<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if max == 0 {
            return Ok(0);
        }
        let n = self.r.read(&mut buf[..max])?;
        self.left -= n as u64;
        *self.pos += n as u64;
        Ok(n)
    }
}

/// The last value of a numeric PAX record: `None` if absent, `Err` if it is
/// not a decimal number. An empty value deletes the record, as POSIX says.
fn pax_number(pax: &[(Vec<u8>, Vec<u8>)], key: &[u8]) -> Option<Result<u64, ()>> {
    let (_, v) = pax.iter().rev().find(|(k, _)| k == key)?;
    if v.is_empty() {
        return None;
    }
    Some(
        std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(()),
    )
}

fn parse_pax(mut data: &[u8]) -> Result<PaxRecords, String> {
    let bad = || "malformed pax record".to_owned();
    let mut out = Vec::new();
    // Some writers pad the records with NULs.
    while !data.is_empty() && data[0] != 0 {
        let space = data.iter().position(|&b| b == b' ').ok_or_else(bad)?;
        let digits = &data[..space];
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let len: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(bad());
        }
        let record = &data[space + 1..len - 1];
        let eq = record.iter().position(|&b| b == b'=').ok_or_else(bad)?;
        out.push((record[..eq].to_vec(), record[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(out)
}

/// Typeflags whose entries never have data, whatever their size field says.
fn header_only(typeflag: u8) -> bool {
    matches!(
        typeflag,
        kind::HARDLINK | kind::SYMLINK | kind::CHAR | kind::BLOCK | kind::DIR | kind::FIFO
    )
}

fn cstr(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(i) => &field[..i],
        None => field,
    }
}

/// A numeric header field: octal digits (surrounded by spaces or NULs), or
/// GNU's base-256 form when the high bit of the first byte is set.
fn number(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        if field[0] & 0x40 != 0 {
            return None; // negative
        }
        let mut v: u64 = u64::from(field[0] & 0x3f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let s = field
        .iter()
        .skip_while(|&&b| b == b' ' || b == 0)
        .take_while(|&&b| b != b' ' && b != 0);
    let mut v: u64 = 0;
    for &b in s {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// Accepts the unsigned sum POSIX specifies and the signed one some old
/// writers used.
fn check_sum(b: &[u8; BLOCK as usize], at: u64) -> Result<(), ReadError> {
    let stored = number(&b[148..156]);
    let mut unsigned: i64 = 0;
    let mut signed: i64 = 0;
    for (i, &x) in b.iter().enumerate() {
        let x = if (148..156).contains(&i) { b' ' } else { x };
        unsigned += i64::from(x);
        signed += i64::from(x as i8);
    }
    match stored {
        Some(s) if s as i64 == unsigned || s as i64 == signed => Ok(()),
        _ => Err(ReadError::Format(format!(
            "header checksum mismatch at offset {at}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_follows_the_ustar_limits() {
        assert_eq!(split_name(b"a/b"), Some((&b""[..], &b"a/b"[..])));
        let long = [vec![b'd'; 120], b"/f".to_vec()].concat();
        assert_eq!(split_name(&long), Some((&long[..120], &b"f"[..])));
        // The name part alone is over 100 bytes: no split works.
        let long_leaf = [b"d/".to_vec(), vec![b'f'; 101]].concat();
        assert_eq!(split_name(&long_leaf), None);
        // A trailing slash is part of the name, never an empty name.
        let dir = [vec![b'd'; 101], b"/".to_vec()].concat();
        assert_eq!(split_name(&dir), None);
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        let mut m = BTreeMap::new();
        m.insert("path".to_owned(), vec![b'x'; 93]);
        let data = pax_records(&m);
        assert_eq!(&data[..4], b"103 ");
        assert_eq!(data.len(), 103);
        assert_eq!(
            parse_pax(&data).unwrap(),
            vec![(b"path".to_vec(), vec![b'x'; 93])]
        );
        // A binary value with a newline survives.
        m.insert("SCHILY.xattr.user.x".to_owned(), b"a\nb".to_vec());
        let back = parse_pax(&pax_records(&m)).unwrap();
        assert_eq!(back[0].1, b"a\nb");
    }

    #[test]
    fn fields_too_large_for_ustar_go_to_pax_and_back() {
        let mut out = Vec::new();
        let h = Header {
            name: b"big",
            typeflag: kind::FILE,
            mode: 0o644,
            uid: 4_000_000,
            gid: 5,
            size: 9 << 30,
            mtime: 1 << 40,
            link: b"",
            device: None,
            xattrs: &[],
        };
        write_header(&mut out, &h).unwrap();
        struct Bytes<'a>(&'a [u8]);
        impl Read for Bytes<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0.read(buf)
            }
        }
        impl Skip for Bytes<'_> {}
        let e = Reader::new(Bytes(&out)).next_entry().unwrap().unwrap();
        assert_eq!((e.size, e.uid, e.gid), (9 << 30, 4_000_000, 5));
        let keys: Vec<&[u8]> = e.pax.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, [&b"mtime"[..], b"size", b"uid"]);
        assert_eq!(e.data_offset, out.len() as u64);
    }

    #[test]
    fn numbers_in_octal_and_base_256() {
        assert_eq!(number(b"0000644\0"), Some(0o644));
        assert_eq!(number(b"  644 \0\0"), Some(0o644));
        assert_eq!(number(b"\0\0\0\0\0\0\0\0"), Some(0));
        assert_eq!(number(&[0x80, 0, 0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(number(b"0000899\0"), None);
    }
}
