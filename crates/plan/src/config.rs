//! Image config resolution: inheritance from the `from` base, and `$VAR`
//! expansion in `env` values, as Docker does it.

use strata_layer::ImageConfig;

/// The config of an image: its base's (or a fresh one with the default `PATH`),
/// then its own nodes on top.
///
/// Each `env` value is expanded against every value before it, in spec order
/// (the base's environment first), so `env A=1 B="$A"` gives `B=1` (Docker
/// would expand `$A` in one `ENV` line against the old value; spelling the
/// order out is clearer in a spec). A later value of a variable replaces the
/// earlier one in place. As in Docker, setting `entrypoint` clears an inherited
/// `cmd`; labels, ports and volumes accumulate; the rest replaces.
pub fn resolve(
    parent: Option<&ImageConfig>,
    own: &strata_spec::ImageConfig,
    epoch: u64,
    default_path: &str,
) -> ImageConfig {
    let mut c = match parent {
        Some(p) => p.clone(),
        None => ImageConfig {
            env: vec![format!("PATH={default_path}")],
            os: "linux".to_owned(),
            architecture: "amd64".to_owned(),
            ..ImageConfig::default()
        },
    };
    c.created = epoch;

    for (k, v) in &own.env {
        let value = expand(&v.value, &c.env);
        set_env(&mut c.env, &k.value, &value);
    }
    if let Some(ep) = &own.entrypoint {
        c.entrypoint = Some(ep.value.clone());
        if own.cmd.is_none() {
            c.cmd = None;
        }
    }
    if let Some(cmd) = &own.cmd {
        c.cmd = Some(cmd.value.clone());
    }
    if let Some(w) = &own.workdir {
        c.workdir = Some(w.value.clone());
    }
    if let Some(u) = &own.user {
        c.user = Some(u.value.clone());
    }
    c.exposed_ports
        .extend(own.expose.iter().map(|p| p.value.clone()));
    c.volumes
        .extend(own.volumes.iter().map(|v| v.value.clone()));
    c.labels
        .extend(own.labels.iter().map(|(k, v)| (k.clone(), v.value.clone())));
    if let Some(s) = &own.stop_signal {
        c.stop_signal = Some(s.value.clone());
    }
    if let Some(a) = &own.author {
        c.author = Some(a.value.clone());
    }
    if let Some(h) = &own.healthcheck {
        let h = &h.value;
        c.healthcheck = Some(strata_layer::Healthcheck {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            retries: h.retries,
        });
    }
    if let Some(s) = &own.shell {
        c.shell = Some(s.value.clone());
    }
    if let Some(p) = &own.platform {
        c.os = p.value.os.clone();
        c.architecture = p.value.architecture.clone();
        c.variant = p.value.variant.clone();
    }
    c
}

fn get_env<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .find_map(|kv| kv.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|kv| kv.strip_prefix(key).is_some_and(|r| r.starts_with('=')))
    {
        Some(slot) => *slot = entry,
        None => env.push(entry),
    }
}

/// Expand `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alternative}` against
/// `env`; `\$` is a literal `$`; an unset variable expands to nothing.
pub fn expand(s: &str, env: &[String]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices().peekable();
    while let Some((i, ch)) = chars.next() {
        match ch {
            '\\' if s[i + 1..].starts_with('$') => {
                out.push('$');
                chars.next();
            }
            '$' => {
                let rest = &s[i + 1..];
                if let Some(body) = rest.strip_prefix('{') {
                    let Some(end) = body.find('}') else {
                        out.push_str(&s[i..]);
                        break;
                    };
                    let inner = &body[..end];
                    let value = if let Some((name, default)) = inner.split_once(":-") {
                        get_env(env, name)
                            .filter(|v| !v.is_empty())
                            .map_or_else(|| expand(default, env), str::to_owned)
                    } else if let Some((name, alt)) = inner.split_once(":+") {
                        get_env(env, name)
                            .filter(|v| !v.is_empty())
                            .map_or_else(String::new, |_| expand(alt, env))
                    } else {
                        get_env(env, inner).unwrap_or("").to_owned()
                    };
                    out.push_str(&value);
                    // Skip `{inner}` in the iterator.
                    let skip_to = i + 1 + 1 + end + 1;
                    while chars.peek().is_some_and(|&(j, _)| j < skip_to) {
                        chars.next();
                    }
                } else {
                    let name_len = rest
                        .char_indices()
                        .take_while(|&(j, c)| {
                            c == '_' || c.is_ascii_alphabetic() || (j > 0 && c.is_ascii_digit())
                        })
                        .count();
                    if name_len == 0 {
                        out.push('$');
                        continue;
                    }
                    out.push_str(get_env(env, &rest[..name_len]).unwrap_or(""));
                    for _ in 0..name_len {
                        chars.next();
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[&str]) -> Vec<String> {
        pairs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn expands_like_docker() {
        let e = env(&["PATH=/bin", "JAVA_HOME=/jdk", "EMPTY="]);
        assert_eq!(expand("$PATH:$JAVA_HOME/bin", &e), "/bin:/jdk/bin");
        assert_eq!(expand("${JAVA_HOME}x", &e), "/jdkx");
        assert_eq!(expand("$UNSET-a", &e), "-a");
        assert_eq!(expand("${UNSET:-dflt}", &e), "dflt");
        assert_eq!(expand("${EMPTY:-dflt}", &e), "dflt");
        assert_eq!(expand("${JAVA_HOME:+set}", &e), "set");
        assert_eq!(expand("${UNSET:+set}", &e), "");
        assert_eq!(expand(r"\$PATH", &e), "$PATH");
        assert_eq!(
            expand("cost $5 and $", &e),
            "cost $5 and $",
            "not a name: literal"
        );
        assert_eq!(expand("${unterminated", &e), "${unterminated");
        assert_eq!(expand("é$JAVA_HOME€", &e), "é/jdk€");
    }

    #[test]
    fn set_env_replaces_in_place_and_matches_whole_names() {
        let mut e = env(&["PATH=/bin", "PATHX=1"]);
        set_env(&mut e, "PATH", "/usr/bin");
        set_env(&mut e, "NEW", "v");
        assert_eq!(e, env(&["PATH=/usr/bin", "PATHX=1", "NEW=v"]));
        assert_eq!(get_env(&e, "PATHX"), Some("1"));
        assert_eq!(get_env(&e, "PAT"), None);
    }
}
