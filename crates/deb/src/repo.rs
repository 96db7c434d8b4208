//! A Debian repository reached over `http(s)://` or `file://`: its signed
//! `InRelease`, its `Packages` indexes checked against the Release hashes,
//! and its `.deb` files checked against the index hashes, all cached in a
//! directory by sha256.
//!
//! The cache (`DIR/sha256/HEX`) holds only files whose sha256 was checked
//! when they were fetched; a cached file is hashed again whenever it is
//! used, so a corrupted cache is refetched rather than trusted. Files are
//! written to a temporary name in the same directory and renamed, so a
//! killed fetch never leaves a partial file under a hash. `InRelease` is
//! never cached: it is what tells whether the indexes are current.
//!
//! HTTP runs on a private current-thread tokio runtime with reqwest and
//! rustls (ring), the stack `strata-registry` already uses.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::packages::{self, Package};
use crate::release::{self, Keyring, Release};
use crate::{Error, Sha256};

/// The most an `InRelease` may weigh (Debian's is about 150 kB).
const INRELEASE_MAX: u64 = 16 << 20;
/// The most a decompressed `Packages` index may weigh (bookworm's main for
/// amd64 is about 45 MB).
const INDEX_MAX: u64 = 1 << 30;

/// Where a repository is and which part of it to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The repository's root, as in a `deb` line (`http://HOST/debian`).
    pub url: String,
    pub suite: String,
    pub components: Vec<String>,
    /// The first is the native architecture.
    pub architectures: Vec<String>,
}

/// Fetches files, from a URL or the cache.
pub struct Fetcher {
    cache: PathBuf,
    rt: Option<(tokio::runtime::Runtime, reqwest::Client)>,
    /// Whether the network may be used (false: the cache only).
    pub online: bool,
}

impl Fetcher {
    /// A fetcher caching into `cache` (created if missing).
    pub fn new(cache: &Path) -> Result<Fetcher, Error> {
        fs::create_dir_all(cache.join("sha256")).map_err(|e| Error::Io {
            path: cache.to_owned(),
            source: e,
        })?;
        Ok(Fetcher {
            cache: cache.to_owned(),
            rt: None,
            online: true,
        })
    }

    fn client(&mut self, url: &str) -> Result<&(tokio::runtime::Runtime, reqwest::Client), Error> {
        if self.rt.is_none() {
            let fail = |reason: String| Error::Fetch {
                url: url.to_owned(),
                reason,
            };
            // rustls needs a process-wide provider; another part of strata
            // may have installed it already, which is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| fail(e.to_string()))?;
            let client = reqwest::Client::builder()
                .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| fail(e.to_string()))?;
            self.rt = Some((rt, client));
        }
        Ok(self.rt.as_ref().expect("set above"))
    }

    /// The bytes at `url`, at most `max` of them.
    pub fn get(&mut self, url: &str, max: u64) -> Result<Vec<u8>, Error> {
        let mut buf = Vec::new();
        self.get_into(url, max, &mut buf)?;
        Ok(buf)
    }

    /// Streams the bytes at `url` into `out`, at most `max` of them;
    /// returns how many there were.
    pub fn get_into(&mut self, url: &str, max: u64, out: &mut impl Write) -> Result<u64, Error> {
        let fail = |reason: String| Error::Fetch {
            url: url.to_owned(),
            reason,
        };
        let too_big = || fail(format!("larger than the {max} bytes expected"));
        if let Some(path) = url.strip_prefix("file://") {
            let f = fs::File::open(path).map_err(|e| fail(e.to_string()))?;
            let n = io::copy(&mut f.take(max + 1), out).map_err(|e| fail(e.to_string()))?;
            return if n > max { Err(too_big()) } else { Ok(n) };
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(fail(
                "only http://, https:// and file:// URLs are supported".into(),
            ));
        }
        if !self.online {
            return Err(fail("offline, and the cache does not hold it".into()));
        }
        let (rt, client) = self.client(url)?;
        rt.block_on(async {
            let mut resp = client
                .get(url)
                .send()
                .await
                .map_err(|e| fail(e.to_string()))?;
            if !resp.status().is_success() {
                return Err(fail(format!("HTTP {}", resp.status())));
            }
            let mut n = 0u64;
            while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
                n += chunk.len() as u64;
                if n > max {
                    return Err(too_big());
                }
                out.write_all(&chunk).map_err(|e| fail(e.to_string()))?;
            }
            Ok(n)
        })
    }

    /// The cache path of a file with this hash.
    pub fn cache_path(&self, sha256: &Sha256) -> PathBuf {
        self.cache.join("sha256").join(sha256.hex())
    }

    /// The cached file of `sha256` if the cache holds it intact.
    pub fn cached(&self, sha256: &Sha256, size: u64) -> Option<PathBuf> {
        let p = self.cache_path(sha256);
        let meta = fs::metadata(&p).ok()?;
        if meta.len() != size {
            return None;
        }
        let found = hash_file(&p).ok()?;
        (found == *sha256).then_some(p)
    }

    /// A file of known hash and size: from the cache, else fetched from
    /// each URL in turn, checked and cached. `name` is what errors call it.
    pub fn fetch_verified(
        &mut self,
        name: &str,
        urls: &[String],
        sha256: &Sha256,
        size: u64,
    ) -> Result<PathBuf, Error> {
        if let Some(p) = self.cached(sha256, size) {
            return Ok(p);
        }
        let dest = self.cache_path(sha256);
        let dir = self.cache.join("sha256");
        let io = |e: io::Error| Error::Io {
            path: dest.clone(),
            source: e,
        };
        let mut last = None;
        for url in urls {
            // Streamed to a temporary file beside its final name, hashed on
            // the way: memory stays small whatever the package's size.
            let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
            let mut w = HashingWriter::new(io::BufWriter::new(tmp));
            match self.get_into(url, size, &mut w) {
                Ok(n) => {
                    let (inner, found) = w.finish();
                    let tmp = inner.into_inner().map_err(|e| io(e.into_error()))?;
                    if found != *sha256 || n != size {
                        return Err(Error::BadHash {
                            file: name.to_owned(),
                            expected: *sha256,
                            expected_size: size,
                            found,
                            found_size: n,
                        });
                    }
                    tmp.as_file().sync_all().map_err(io)?;
                    tmp.persist(&dest).map_err(|e| io(e.error))?;
                    return Ok(dest);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Fetch {
            url: name.to_owned(),
            reason: "no URL to fetch it from".into(),
        }))
    }
}

/// A writer that hashes what passes through it.
struct HashingWriter<W> {
    inner: W,
    hash: sha2::Sha256,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        use sha2::Digest as _;
        HashingWriter {
            inner,
            hash: sha2::Sha256::new(),
        }
    }

    fn finish(self) -> (W, Sha256) {
        use sha2::Digest as _;
        (self.inner, Sha256(self.hash.finalize().into()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The sha256 of a file, streamed.
pub fn hash_file(path: &Path) -> io::Result<Sha256> {
    use sha2::Digest as _;
    let mut f = fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Sha256(h.finalize().into()))
}

/// Decompresses `r` by its file extension (`.xz`, `.gz`, `.zst`, `.bz2` is
/// refused, none is plain), refusing more than `max` bytes of output.
pub fn decompress(r: impl Read, ext: &str, max: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let res = match ext.trim_start_matches('.') {
        "" => r.take(max + 1).read_to_end(&mut out),
        "xz" => liblzma::read::XzDecoder::new_multi_decoder(r)
            .take(max + 1)
            .read_to_end(&mut out),
        "gz" => flate2::read::MultiGzDecoder::new(r)
            .take(max + 1)
            .read_to_end(&mut out),
        "zst" => zstd::stream::read::Decoder::new(r)
            .map_err(|e| e.to_string())?
            .take(max + 1)
            .read_to_end(&mut out),
        other => return Err(format!("unsupported compression {other:?}")),
    };
    res.map_err(|e| e.to_string())?;
    if out.len() as u64 > max {
        return Err(format!("decompresses to more than {max} bytes"));
    }
    Ok(out)
}

/// An opened repository: its verified Release and the packages of its
/// indexes.
pub struct Repository {
    pub source: Source,
    pub release: Release,
    /// Every package of every (component, architecture) index read, in
    /// that order.
    pub packages: Vec<Package>,
}

impl Source {
    fn suite_url(&self) -> String {
        format!("{}/dists/{}", self.url.trim_end_matches('/'), self.suite)
    }

    /// The URL of a file of the repository (a `.deb`'s `Filename`).
    pub fn file_url(&self, path: &str) -> String {
        format!("{}/{}", self.url.trim_end_matches('/'), path)
    }
}

impl Repository {
    /// Fetches and verifies `InRelease`, then each component's index for
    /// each architecture.
    pub fn open(
        source: &Source,
        keyring: &Keyring,
        fetcher: &mut Fetcher,
    ) -> Result<Repository, Error> {
        Repository::open_checked(source, keyring, fetcher, &release::Checks::default())
    }

    /// [`Repository::open`] with the `InRelease` checked as `checks` says
    /// (key expiry and `Valid-Until` at a given time, or no `Valid-Until`).
    pub fn open_checked(
        source: &Source,
        keyring: &Keyring,
        fetcher: &mut Fetcher,
        checks: &release::Checks,
    ) -> Result<Repository, Error> {
        Signed::fetch(source, keyring, fetcher, checks)?.load(fetcher)
    }

    /// The native architecture: the first one asked for.
    pub fn native(&self) -> &str {
        self.source
            .architectures
            .first()
            .map_or("amd64", String::as_str)
    }
}

/// A repository whose `InRelease` was fetched and verified, its indexes
/// not yet read: what they are ([`Signed::indexes`]) is known from the
/// Release's hashes, so a caller that has already resolved against
/// exactly these indexes need not read them again.
pub struct Signed {
    pub source: Source,
    pub release: Release,
    inrelease_url: String,
}

/// One `Packages` index a [`Signed`] repository reads: its path in the
/// suite and its hash and size from the verified Release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRef {
    /// Relative to the suite (`main/binary-amd64/Packages.xz`).
    pub path: String,
    pub sha256: Sha256,
    pub size: u64,
}

impl Signed {
    /// Fetches and verifies `InRelease` (never cached: it tells whether
    /// the indexes are current).
    pub fn fetch(
        source: &Source,
        keyring: &Keyring,
        fetcher: &mut Fetcher,
        checks: &release::Checks,
    ) -> Result<Signed, Error> {
        let inrelease_url = format!("{}/InRelease", source.suite_url());
        let bytes = fetcher.get(&inrelease_url, INRELEASE_MAX)?;
        let release = release::verify_inrelease_checked(&inrelease_url, &bytes, keyring, checks)?;
        Ok(Signed {
            source: source.clone(),
            release,
            inrelease_url,
        })
    }

    /// The index of each component for each architecture, in that order
    /// (xz preferred, then gz, zst, plain, as the Release lists them).
    pub fn indexes(&self) -> Result<Vec<IndexRef>, Error> {
        let mut out = Vec::new();
        for comp in &self.source.components {
            for arch in &self.source.architectures {
                let base = format!("{comp}/binary-{arch}/Packages");
                let Some((path, entry)) = ["xz", "gz", "zst", ""].iter().find_map(|ext| {
                    let p = if ext.is_empty() {
                        base.clone()
                    } else {
                        format!("{base}.{ext}")
                    };
                    self.release.files.get(&p).map(|e| (p, e.clone()))
                }) else {
                    return Err(Error::NoIndex {
                        release: self.inrelease_url.clone(),
                        index: base,
                        component: comp.clone(),
                        arch: arch.clone(),
                    });
                };
                out.push(IndexRef {
                    path,
                    sha256: entry.sha256,
                    size: entry.size,
                });
            }
        }
        Ok(out)
    }

    /// Reads every index (from the cache, else the mirror), each checked
    /// against the Release's hash.
    pub fn load(&self, fetcher: &mut Fetcher) -> Result<Repository, Error> {
        let suite = self.source.suite_url();
        let mut packages = Vec::new();
        for index in self.indexes()? {
            let IndexRef { path, sha256, size } = index;
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            let ext = match path.rsplit_once('.') {
                Some((_, e)) if ["xz", "gz", "zst"].contains(&e) => e,
                _ => "",
            };
            let mut urls = Vec::new();
            if self.release.acquire_by_hash {
                // By hash first: the file a mirror holds under its
                // hash cannot change while the mirror updates.
                urls.push(format!("{suite}/{dir}/by-hash/SHA256/{}", sha256.hex()));
            }
            urls.push(format!("{suite}/{path}"));
            let file = format!("{suite}/{path}");
            let cached = fetcher.fetch_verified(&file, &urls, &sha256, size)?;
            let f = fs::File::open(&cached).map_err(|e| Error::Io {
                path: cached.clone(),
                source: e,
            })?;
            let text = decompress(f, ext, INDEX_MAX).map_err(|reason| Error::Decompress {
                file: file.clone(),
                reason,
            })?;
            let text = String::from_utf8(text).map_err(|_| Error::Decompress {
                file: file.clone(),
                reason: "the index is not UTF-8".into(),
            })?;
            packages.extend(packages::parse_index(&file, &text)?);
        }
        Ok(Repository {
            source: self.source.clone(),
            release: self.release.clone(),
            packages,
        })
    }
}

/// Fetches a package's `.deb` (or takes it from the cache) and checks it
/// against `sha256` and `size`; `url` is where the mirror has it.
pub fn fetch_deb(
    fetcher: &mut Fetcher,
    package: &str,
    url: &str,
    sha256: &Sha256,
    size: u64,
) -> Result<PathBuf, Error> {
    fetcher
        .fetch_verified(url, &[url.to_owned()], sha256, size)
        .map_err(|e| match e {
            Error::Fetch { reason, .. } => Error::Unavailable {
                package: package.to_owned(),
                file: url.to_owned(),
                reason,
            },
            e => e,
        })
}

/// The repository URLs of the host's apt sources (`URIs:` of
/// `/etc/apt/sources.list.d/*.sources`, then `deb` lines of
/// `/etc/apt/sources.list` and `sources.list.d/*.list`), in that order,
/// without duplicates: the default mirror, so specs never name one.
pub fn host_mirrors(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |u: &str| {
        let u = u.trim_end_matches('/').to_owned();
        if (u.starts_with("http://") || u.starts_with("https://") || u.starts_with("file:/"))
            && !out.contains(&u)
        {
            out.push(u);
        }
    };
    let dir = root.join("etc/apt/sources.list.d");
    let mut entries: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    for p in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sources"))
    {
        let Ok(text) = fs::read_to_string(p) else {
            continue;
        };
        for line in text.lines() {
            if let Some((k, v)) = line.split_once(':')
                && k.trim().eq_ignore_ascii_case("URIs")
            {
                v.split_whitespace().for_each(&mut push);
            }
        }
    }
    let mut lists = vec![root.join("etc/apt/sources.list")];
    lists.extend(
        entries
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "list"))
            .cloned(),
    );
    for p in lists {
        let Ok(text) = fs::read_to_string(&p) else {
            continue;
        };
        for line in text.lines() {
            let mut words = line.split_whitespace().filter(|w| !w.starts_with('['));
            // `deb [opts] URL suite comp...`: options in brackets may
            // hold spaces; skip words until one that looks like a URL.
            if words.next() == Some("deb")
                && let Some(url) = line.split_whitespace().find(|w| w.contains("://"))
            {
                push(url);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_sources() {
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("etc/apt/sources.list.d");
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("a.sources"),
            "Types: deb\nURIs: http://mirror.invalid/debian/\nSuites: x\n",
        )
        .unwrap();
        fs::write(
            root.path().join("etc/apt/sources.list"),
            "# c\ndeb [signed-by=/k.gpg arch=amd64] http://other.invalid/debian x main\ndeb-src http://src.invalid/ x main\n",
        )
        .unwrap();
        assert_eq!(
            host_mirrors(root.path()),
            [
                "http://mirror.invalid/debian",
                "http://other.invalid/debian"
            ]
        );
    }

    #[test]
    fn decompress_bounds() {
        let big = vec![b'a'; 10_000];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&big).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            decompress(gz.as_slice(), "gz", 10_000).unwrap().len(),
            10_000
        );
        assert!(decompress(gz.as_slice(), "gz", 9_999).is_err());
        assert!(decompress(&b"garbage"[..], "xz", 100).is_err());
        assert!(decompress(&b"x"[..], "bz2", 100).is_err());
    }
}
