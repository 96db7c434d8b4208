//! How an image's history names the layer of a spec that made each layer.
//!
//! The name is written into the config's history (`created_by`), which is
//! part of the image's bytes: changing the form changes every digest, so the
//! writer and the reader live side by side here and nowhere else.

/// The prefix of `created_by` for a layer a spec's `layer NAME` made.
const PREFIX: &str = "strata: layer ";

/// The history `created_by` of the layer named `layer` (`image/layer` or a
/// plain layer name).
pub fn created_by(layer: &str) -> String {
    format!("{PREFIX}{layer}")
}

/// The layer name a `created_by` written by [`created_by`] holds; `None` for
/// a history entry that some other tool wrote.
pub fn layer_name(created_by: &str) -> Option<&str> {
    created_by.strip_prefix(PREFIX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_round_trip() {
        assert_eq!(super::created_by("jdk"), "strata: layer jdk");
        assert_eq!(super::layer_name(&super::created_by("a/b")), Some("a/b"));
        assert_eq!(super::layer_name("/bin/sh -c #(nop) ADD"), None);
    }
}
