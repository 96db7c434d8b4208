//! The media types of layer blobs.

/// The OCI media type of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MediaType {
    Tar,
    TarGzip,
    TarZstd,
}

impl MediaType {
    pub fn as_str(&self) -> &'static str {
        match self {
            MediaType::Tar => "application/vnd.oci.image.layer.v1.tar",
            MediaType::TarGzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            MediaType::TarZstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// The layer media type a descriptor names: the OCI ones, and Docker's
    /// schema 2 names for the same bytes.
    pub fn parse(s: &str) -> Option<MediaType> {
        match s {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Some(MediaType::Tar),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Some(MediaType::TarGzip),
            "application/vnd.oci.image.layer.v1.tar+zstd" => Some(MediaType::TarZstd),
            _ => None,
        }
    }
}

impl std::fmt::Display for MediaType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for MediaType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Read from the media type strings [`MediaType::parse`] knows; anything else
/// is an error, never a default.
impl<'de> serde::Deserialize<'de> for MediaType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        MediaType::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not a layer media type: {s:?}")))
    }
}
