//! Layer compression: the codec, its settings, and the OCI media type it gives.

use crate::MediaType;

/// How a layer's tar stream is compressed. The codec, its implementation and
/// its level are part of the output contract: they decide the blob bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Compression {
    /// gzip via flate2's zlib-rs backend, deflated in parallel in 128 KiB
    /// chunks (see `pgzip`); no file name, mtime 0.
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
    /// Level 4, not zlib's 6: on the bench's JDK-like tree it writes blobs
    /// the size `umoci repack` and `buildah commit` write (127.99 MB against
    /// 128.07 and 128.03; level 6: 126.03, 1.5% smaller) in 60% of level 6's
    /// CPU time. Specs that want the last percent say `level=6` (or 9).
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
            // bump `pgzip1` when the dictionary or the store rule of `pgzip`
            // change, and the chunk size part with `pgzip::CHUNK`.
            Compression::Gzip { level } => format!("gzip/flate2-zlib-rs/{level}/pgzip1-chunk128k"),
            Compression::Zstd { level } => format!("zstd/zstd-mt/{level}/job2m"),
            Compression::None => "none".to_owned(),
        }
    }
}

// `identity` spells out the chunk and dictionary sizes of `pgzip` and the
// zstd job size.
const _: () = assert!(
    crate::pgzip::CHUNK == 128 << 10
        && crate::pgzip::DICT == 32 << 10
        && crate::build::ZSTD_JOB_SIZE == 2 << 20
);
