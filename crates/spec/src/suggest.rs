//! "Did you mean": the closest valid name to a misspelt one.

/// The candidate closest to `word`, if one is close enough to be what the
/// user meant. Case is ignored (`CMD` suggests `cmd`). Short words need a
/// close match: an edit distance of about one edit per three letters, or a
/// high Jaro-Winkler similarity for shared prefixes (`entry` -> `entrypoint`).
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_lowercase();
    if word.is_empty() {
        return None;
    }
    candidates
        .iter()
        .map(|&c| {
            let lower = c.to_lowercase();
            let lev = strsim::levenshtein(&word, &lower);
            let jw = strsim::jaro_winkler(&word, &lower);
            let budget = (lower.chars().count() / 3).clamp(1, 2);
            let close = lev <= budget || jw >= 0.9 || (word.len() >= 2 && lower.starts_with(&word));
            (c, lev, jw, close)
        })
        .filter(|&(_, _, _, close)| close)
        .min_by(|a, b| a.1.cmp(&b.1).then(b.2.total_cmp(&a.2)))
        .map(|(c, ..)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    const IMAGE: &[&str] = &[
        "from",
        "rootfs",
        "tag",
        "layer",
        "env",
        "cmd",
        "entrypoint",
        "workdir",
    ];

    #[test]
    fn close_names_are_suggested() {
        assert_eq!(did_you_mean("layr", IMAGE), Some("layer"));
        assert_eq!(did_you_mean("CMD", IMAGE), Some("cmd"));
        assert_eq!(did_you_mean("entry", IMAGE), Some("entrypoint"));
        assert_eq!(did_you_mean("workdri", IMAGE), Some("workdir"));
        assert_eq!(did_you_mean("mod", &["to", "mode", "owner"]), Some("mode"));
        assert_eq!(did_you_mean("gz", &["gzip", "zstd", "none"]), Some("gzip"));
    }

    #[test]
    fn far_names_are_not() {
        assert_eq!(did_you_mean("x", &["to", "mode", "owner"]), None);
        assert_eq!(did_you_mean("healthcheck", IMAGE), None);
        assert_eq!(did_you_mean("", IMAGE), None);
    }
}
