//! Layer compression: the codec, its settings, and the OCI media type it gives.

use crate::MediaType;

/// How a layer's tar stream is compressed. The codec, its implementation and
/// its level are part of the output contract: they decide the blob bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Compression {
    /// gzip via libdeflate, deflated in parallel in 1 MiB chunks, each a
    /// gzip member of its own (see `pgzip`); no file name, mtime 0.
    Gzip {
        level: u32,
    },
    /// zstd, always in multi-threaded mode (its single-threaded mode writes
    /// other bytes), in jobs of 2 MiB.
    Zstd {
        level: i32,
    },
    None,
}

impl Compression {
    /// Level 4: on the Debian tomcat corpus (405 MB of tar) libdeflate's
    /// level 4 in 1 MiB members writes 168.7 MB, between zlib's level 4
    /// (`pigz -4`: 170.6 MB) and level 6 (`pigz -6`, as `umoci repack` and
    /// `buildah commit` write: 166.9 MB); its level 6 is 2% smaller in 1.35
    /// times the CPU time. Specs that want the last percent say `level=6`
    /// (or 9).
    pub const DEFAULT_GZIP: Compression = Compression::Gzip { level: 4 };
    pub const DEFAULT_ZSTD: Compression = Compression::Zstd { level: 3 };

    pub fn media_type(&self) -> MediaType {
        match self {
            Compression::Gzip { .. } => MediaType::TarGzip,
            Compression::Zstd { .. } => MediaType::TarZstd,
            Compression::None => MediaType::Tar,
        }
    }

    /// A stable identity of the codec, its implementation and settings, for
    /// cache keys and lock files. Bump the implementation part when a
    /// dependency upgrade changes the compressed bytes.
    pub fn identity(&self) -> String {
        match self {
            // The chunking rules decide the bytes as much as the level:
            // bump `members1` when the member layout or the store rule of
            // `pgzip` change, the chunk size part with `pgzip::CHUNK`, and
            // the libdeflate part when an upgrade changes its output.
            Compression::Gzip { level } => {
                format!("gzip/libdeflate-1.26/{level}/members1-chunk1m")
            }
            Compression::Zstd { level } => format!("zstd/zstd-mt/{level}/job2m"),
            Compression::None => "none".to_owned(),
        }
    }
}

// `identity` spells out the chunk size of `pgzip` and the zstd job size.
const _: () = assert!(crate::pgzip::CHUNK == 1 << 20 && crate::build::ZSTD_JOB_SIZE == 2 << 20);
