//! Canonical JSON (RFC 8785): the only way this crate turns a value into bytes.
//!
//! `serde_json::to_vec` would keep the field order of each struct but the
//! iteration order of every `HashMap` inside `oci-spec`'s types, which changes
//! from run to run; the canonical form sorts every object's keys and drops all
//! insignificant whitespace, so the same value always gives the same bytes.

use canon_json::CanonJsonSerialize;
use serde::Serialize;

/// `value` as canonical JSON.
pub(crate) fn to_vec<T: Serialize>(value: &T) -> std::io::Result<Vec<u8>> {
    value.to_canon_json_vec()
}
