//! The OCI whiteout names: how a layer's tar says that a path of the layers
//! below is deleted (`DIR/.wh.NAME`) or that a directory's lower contents are
//! hidden (`DIR/.wh..wh..opq`). The writer (`strata_layer`'s tree), the
//! readers (`strata_layer::read`, `strata diff`) and the union applier all
//! take the names from here. What the markers do to a stack of layers is
//! [`LowerView::apply`](crate::LowerView::apply).

/// The prefix of a whiteout's file name.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";

/// The file name of an opaque-directory marker.
pub const OPAQUE_NAME: &[u8] = b".wh..wh..opq";

/// Whether a name is reserved for whiteouts: it could not be told apart from
/// one in the tar, so no real entry may have it.
pub fn is_reserved(name: &[u8]) -> bool {
    name.starts_with(WHITEOUT_PREFIX)
}

/// What a file name in a layer's tar stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker<'a> {
    /// An ordinary entry.
    Plain,
    /// `.wh..wh..opq`: the directory holding it is opaque.
    Opaque,
    /// `.wh.NAME`: NAME, a sibling of the marker, is deleted.
    Whiteout(&'a [u8]),
}

/// Reads a file name (the last component of a tar entry's path).
///
/// Err for `.wh..` and `.wh...`, which would delete the directory holding
/// the marker or its parent: outside the directory the marker lives in.
pub fn classify(name: &[u8]) -> Result<Marker<'_>, &'static str> {
    if name == OPAQUE_NAME {
        return Ok(Marker::Opaque);
    }
    match name.strip_prefix(WHITEOUT_PREFIX) {
        Some(b"." | b"..") => Err("a whiteout of `.` or `..` escapes its directory"),
        Some(deleted) if !deleted.is_empty() => Ok(Marker::Whiteout(deleted)),
        _ => Ok(Marker::Plain),
    }
}

/// The file name of the whiteout that deletes `name`.
pub fn whiteout_name(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(WHITEOUT_PREFIX.len() + name.len());
    out.extend_from_slice(WHITEOUT_PREFIX);
    out.extend_from_slice(name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_classify_and_round_trip() {
        assert_eq!(classify(b"motd"), Ok(Marker::Plain));
        assert_eq!(classify(b".wh..wh..opq"), Ok(Marker::Opaque));
        assert_eq!(
            classify(&whiteout_name(b"motd")),
            Ok(Marker::Whiteout(b"motd".as_slice()))
        );
        assert_eq!(classify(b".wh."), Ok(Marker::Plain));
        assert!(classify(b".wh..").is_err());
        assert!(classify(b".wh...").is_err());
        assert!(is_reserved(b".wh.x") && !is_reserved(b"x.wh."));
    }
}
