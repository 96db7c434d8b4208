//! The rules for single values (paths, modes, owners, ports, names, signals):
//! each check takes the value as written and says what is wrong with it,
//! without spans; the parser puts the span on.

use crate::{Owner, OwnerId, Platform};

/// What is wrong with one value: the parts of a `SpecDiagnostic` but the span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub message: String,
    pub label: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(message: impl Into<String>, label: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            label: label.into(),
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

type Check<T = ()> = Result<T, Problem>;

/// A path inside the image: absolute, no `..`, no NUL.
pub(crate) fn image_path(s: &str) -> Check {
    if s.is_empty() {
        return Err(Problem::new("path must not be empty", "empty path")
            .help("paths in the image are absolute, like \"/app\""));
    }
    if s.contains('\0') {
        return Err(Problem::new(
            "path contains a NUL character",
            "NUL character",
        ));
    }
    // A path that starts with a build argument (`$DEST/x`) is checked
    // again once the argument is substituted (`apply_args`).
    if !s.starts_with('/') && !s.starts_with('$') {
        let rest = s.trim_start_matches("./");
        return Err(Problem::new("path must be absolute", "relative path")
            .help(format!("paths in the image start at its root: \"/{rest}\"")));
    }
    if s.split('/').any(|c| c == "..") {
        return Err(Problem::new("path must not contain `..`", "`..` component")
            .help("write the path from the image root, without `..`"));
    }
    Ok(())
}

/// A source path on the host (`add`/`copy` sources, `rootfs`): kept as written,
/// the planner resolves it relative to the spec file.
pub(crate) fn source_path(s: &str) -> Check {
    if s.is_empty() {
        return Err(Problem::new("source path must not be empty", "empty path")
            .help("source paths are relative to the spec file, like \"inputs/app.tar.gz\""));
    }
    if s.contains('\0') {
        return Err(Problem::new(
            "path contains a NUL character",
            "NUL character",
        ));
    }
    Ok(())
}

const SIZE_HELP: &str = "write a size as a number of bytes or with a unit: \"64GiB\", \"512MiB\" (B, KiB, MiB, GiB, TiB)";

/// A size in bytes written as a string: `"64GiB"`, `"512 MiB"`, `"1000"`,
/// `"100B"`. Binary units only, so that `GiB` never silently means 10⁹.
pub(crate) fn size(s: &str) -> Check<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        "TiB" => 40,
        other => {
            let message = if digits.is_empty() || !other.chars().all(|c| c.is_ascii_alphabetic()) {
                format!("`{s}` is not a size")
            } else {
                format!("unknown size unit `{other}`")
            };
            return Err(Problem::new(message, "not a size").help(SIZE_HELP));
        }
    };
    let n: u64 = digits
        .replace('_', "")
        .parse()
        .map_err(|_| Problem::new(format!("`{s}` is not a size"), "not a size").help(SIZE_HELP))?;
    let bytes = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| Problem::new("size out of range", "too large").help(SIZE_HELP))?;
    size_int(i128::from(bytes))
}

/// A size in bytes written as an integer: at least 1.
pub(crate) fn size_int(n: i128) -> Check<u64> {
    match u64::try_from(n) {
        Ok(n) if n > 0 => Ok(n),
        Ok(_) => Err(Problem::new("a size limit must be at least 1 byte", "zero").help(SIZE_HELP)),
        Err(_) if n < 0 => {
            Err(Problem::new("size must not be negative", "negative").help(SIZE_HELP))
        }
        Err(_) => Err(Problem::new("size out of range", "too large").help(SIZE_HELP)),
    }
}

/// A count limit: an integer from 1 to 2⁶⁴−1.
pub(crate) fn count(n: i128) -> Check<u64> {
    match u64::try_from(n) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(
            Problem::new("a count limit must be at least 1", "out of range")
                .help("write a whole number, such as max-entries=500000"),
        ),
    }
}

/// The help every mode problem ends with. `digits` are the user's digits when
/// they look like an octal mode written without its `0o`.
fn mode_help(digits: Option<&str>) -> String {
    format!(
        "write modes as octal numbers: mode=0o{}",
        digits.unwrap_or("644")
    )
}

/// `digits` as a plausible octal mode (`"644"`, `"0755"`), without leading zeros.
fn octal_digits(s: &str) -> Option<&str> {
    let trimmed = s.trim_start_matches("0o").trim_start_matches('0');
    let digits = if trimmed.is_empty() && !s.is_empty() {
        "0"
    } else {
        trimmed
    };
    let fits = u32::from_str_radix(digits, 8).is_ok_and(|m| m <= 0o7777);
    (fits && !digits.is_empty()).then_some(digits)
}

/// `mode=0o644`: an integer written in octal, 0 to 0o7777. `repr` is the
/// integer as written; a mode in decimal is refused because `mode=644` would
/// silently mean 0o1204.
pub(crate) fn mode(value: i128, repr: &str) -> Check<u32> {
    let repr = repr.trim_start_matches('+');
    let out_of_range = || {
        Problem::new("mode out of range", "not within 0o0..=0o7777")
            .help("a mode holds permission bits only, e.g. mode=0o644 or mode=0o4755")
    };
    if value < 0 {
        return Err(out_of_range());
    }
    if !repr.starts_with("0o") {
        // 420 and 493 are 0o644 and 0o755 in decimal, as JSON and Go write
        // them; any other number is more likely octal digits without `0o`.
        let common = [
            0o644, 0o755, 0o600, 0o700, 0o640, 0o750, 0o664, 0o775, 0o444, 0o555, 0o777,
        ];
        let help = match u32::try_from(value) {
            Ok(v) if common.contains(&v) => {
                format!("write modes as octal numbers: mode=0o{v:o} (decimal {v})")
            }
            Ok(v) => match octal_digits(repr) {
                Some(d) => mode_help(Some(d)),
                None if v <= 0o7777 => format!("write modes as octal numbers: mode=0o{v:o}"),
                None => mode_help(None),
            },
            Err(_) => mode_help(None),
        };
        return Err(Problem::new(
            "mode must be written in octal",
            format!("`{repr}` is not octal"),
        )
        .help(help));
    }
    match u32::try_from(value) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err(out_of_range()),
    }
}

/// A mode written as a string (`mode="644"`).
pub(crate) fn mode_from_string(s: &str) -> Problem {
    Problem::new("mode must be a number", "a string").help(mode_help(octal_digits(s)))
}

const OWNER_FORM: &str =
    "owner takes ids or names: owner=\"1000:1000\", owner=1000, owner=\"app:app\" or owner=\"app\"";

/// One side of an owner: a number, or a user or group name (a letter or
/// `_` first, then letters, digits, `_`, `-`, `.`, and an optional final
/// `$`, as `useradd` accepts them).
fn id(s: &str, which: &str) -> Check<OwnerId> {
    if s.is_empty() {
        return Err(Problem::new(
            "owner must be `USER:GROUP` or `USER`",
            format!("empty {which}"),
        )
        .help(OWNER_FORM));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u32>().map(OwnerId::Id).map_err(|_| {
            Problem::new(format!("{which} out of range"), "not a 32-bit id")
                .help("ids go from 0 to 4294967295")
        });
    }
    let body = s.strip_suffix('$').unwrap_or(s);
    let name_ok = body
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && s.len() <= 256;
    if !name_ok {
        let what = if which == "uid" { "user" } else { "group" };
        return Err(Problem::new(
            format!("`{s}` is neither a numeric {which} nor a {what} name"),
            format!("not a {what}"),
        )
        .help(OWNER_FORM));
    }
    Ok(OwnerId::Name(s.to_owned()))
}

/// `owner="USER:GROUP"` or `owner="USER"`: for a numeric user the gid is
/// the uid; for a name, the group is left to the user's primary group.
pub(crate) fn owner(s: &str) -> Check<Owner> {
    let mut parts = s.split(':');
    let user = id(parts.next().unwrap_or_default(), "uid")?;
    let group = match parts.next() {
        Some(g) => Some(id(g, "gid")?),
        None => match &user {
            OwnerId::Id(n) => Some(OwnerId::Id(*n)),
            OwnerId::Name(_) => None,
        },
    };
    if parts.next().is_some() {
        return Err(
            Problem::new("owner must be `USER:GROUP` or `USER`", "too many `:`").help(OWNER_FORM),
        );
    }
    Ok(Owner { user, group })
}

/// `owner=1000`.
pub(crate) fn owner_int(value: i128) -> Check<Owner> {
    match u32::try_from(value) {
        Ok(uid) => Ok(Owner::ids(uid, uid)),
        Err(_) => {
            Err(Problem::new("uid out of range", "not a 32-bit id")
                .help("ids go from 0 to 4294967295"))
        }
    }
}

const PORT_HELP: &str =
    "ports are 1 to 65535, optionally with /tcp, /udp or /sctp: 8080, \"53/udp\"";

/// A port number from 1 to 65535.
pub(crate) fn port_number(value: i128) -> Check<u16> {
    match u16::try_from(value) {
        Ok(p) if p >= 1 => Ok(p),
        _ => Err(Problem::new("port out of range", "not within 1..=65535").help(PORT_HELP)),
    }
}

/// `expose "53/udp"`, normalised to `PORT/PROTO` with a lowercase protocol.
pub(crate) fn port(s: &str) -> Check<String> {
    let (num, proto) = match s.split_once('/') {
        Some((n, p)) => (n, p.to_ascii_lowercase()),
        None => (s, "tcp".to_owned()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(Problem::new(
            format!("unknown protocol `{proto}`"),
            "not tcp, udp or sctp",
        )
        .help(PORT_HELP));
    }
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        let label = if num.contains('-') {
            "port ranges are not supported"
        } else {
            "not a port number"
        };
        return Err(Problem::new("invalid port", label).help(PORT_HELP));
    }
    let n = num.parse::<i128>().unwrap_or(i128::MAX);
    let p = port_number(n)?;
    Ok(format!("{p}/{proto}"))
}

/// A `from` value: an image of the spec, or an external base (the form only;
/// the reference itself is checked when it is resolved).
pub(crate) fn base_name(s: &str) -> Check {
    match crate::ExternalBase::parse(s) {
        None => image_name(s),
        Some(crate::ExternalBase::Oci { path, tag }) => {
            if path.is_empty() {
                return Err(Problem::new("`oci:` names no layout directory", "no path")
                    .help("write `from \"oci:path/to/layout:TAG\"`"));
            }
            if tag.as_deref() == Some("") {
                return Err(Problem::new("the tag after `:` is empty", "empty tag")
                    .help("write `from \"oci:path/to/layout:TAG\"`, or leave out `:` for a layout with one image"));
            }
            Ok(())
        }
        Some(crate::ExternalBase::Registry(r)) => {
            let rest = &r["docker://".len()..];
            if !rest.contains('/') || rest.chars().any(char::is_whitespace) {
                return Err(Problem::new(format!("`{r}` is not a registry reference"), "bad reference")
                    .help("write `from \"docker://HOST/REPO:TAG\"` or `from \"docker://HOST/REPO@sha256:HEX\"`"));
            }
            Ok(())
        }
    }
}

/// An image name: it names an output directory and the repository of a
/// docker-archive tag, so it follows docker's rules for a name component.
pub(crate) fn image_name(s: &str) -> Check {
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    let ends_ok = s
        .bytes()
        .next()
        .zip(s.bytes().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    if s.is_empty() {
        return Err(Problem::new("image name must not be empty", "empty name")
            .help("image names are lowercase, like `tomcat`"));
    }
    if s.len() > 128 || !ok_chars || !ends_ok || s.contains("..") {
        let lower = s.to_ascii_lowercase();
        let mut p = Problem::new(format!("invalid image name `{s}`"), "not a valid image name").help(
            "image names are lowercase letters and digits, with `.`, `_` or `-` between them (at most 128)",
        );
        if lower != s && image_name(&lower).is_ok() {
            p = p.help(format!("image names are lowercase: `{lower}`"));
        }
        return Err(p);
    }
    Ok(())
}

/// A layer name: letters, digits, `_`, `.`, `-`, not starting with `.` or `-`.
pub(crate) fn layer_name(s: &str) -> Check {
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    let first_ok = s
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if s.is_empty() {
        return Err(Problem::new("layer name must not be empty", "empty name")
            .help("name layers after what they hold, like `jdk`"));
    }
    if s.len() > 128 || !ok_chars || !first_ok {
        return Err(
            Problem::new(format!("invalid layer name `{s}`"), "not a valid layer name").help(
                "layer names are letters, digits, `_`, `.` and `-`, starting with a letter, digit or `_` (at most 128)",
            ),
        );
    }
    Ok(())
}

/// A docker tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(crate) fn tag(s: &str) -> Check {
    let first_ok = s
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let rest_ok = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if s.is_empty() {
        return Err(Problem::new("tag must not be empty", "empty tag")
            .help("leave `tag` out for the default, `latest`"));
    }
    if !first_ok || !rest_ok || s.len() > 128 {
        return Err(Problem::new(format!("invalid tag `{s}`"), "not a valid docker tag").help(
            "a tag is letters, digits, `_`, `.` and `-`, not starting with `.` or `-` (at most 128)",
        ));
    }
    Ok(())
}

/// `user "name"`, `user "uid"`, `user "uid:gid"` (names are the image's own,
/// resolved by the runtime).
pub(crate) fn user(s: &str) -> Check {
    let help = "write a user, optionally with a group: user \"nobody\" or user \"1000:1000\"";
    if s.is_empty() {
        return Err(Problem::new("user must not be empty", "empty user").help(help));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            Problem::new("invalid user", "contains a space or control character").help(help),
        );
    }
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(Problem::new("invalid user", "not `USER` or `USER:GROUP`").help(help));
    }
    Ok(())
}

/// The Linux signal names, without `SIG`.
const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV",
    "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
    "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS", "RTMIN", "RTMAX",
];

/// `SIGRTMIN+3` / `SIGRTMAX-2`: real-time signals by offset.
fn realtime(name: &str) -> bool {
    let offset = name
        .strip_prefix("RTMIN+")
        .or_else(|| name.strip_prefix("RTMAX-"));
    offset.is_some_and(|n| n.parse::<u8>().is_ok_and(|n| n <= 30))
}

/// `stop-signal "SIGTERM"` or `stop-signal "15"`: a Linux signal name, as
/// runtimes parse it, or a number.
pub(crate) fn signal(s: &str) -> Check {
    if let Some(name) = s.strip_prefix("SIG") {
        if SIGNALS.contains(&name) || realtime(name) {
            return Ok(());
        }
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return signal_number(s.parse::<i128>().unwrap_or(i128::MAX)).map(|_| ());
    }
    let upper = s.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let p = Problem::new(format!("invalid stop signal `{s}`"), "not a signal");
    match crate::suggest::did_you_mean(bare, SIGNALS) {
        Some(name) => Err(p.help(format!("did you mean \"SIG{name}\"?"))),
        None => Err(p.help("write a signal name like \"SIGTERM\" or a number like \"15\"")),
    }
}

/// A signal number, 1 to 64 (the Linux range, real-time signals included).
pub(crate) fn signal_number(n: i128) -> Check<u8> {
    match u8::try_from(n) {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err(Problem::new("signal out of range", "not within 1..=64")
            .help("write a signal name like \"SIGTERM\" or a number like \"15\"")),
    }
}

/// `platform "linux/amd64"` or `"linux/arm64/v8"`.
pub(crate) fn platform(s: &str) -> Check<Platform> {
    let parts: Vec<&str> = s.split('/').collect();
    let part_ok = |p: &&str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
    };
    match parts.as_slice() {
        [os, arch] | [os, arch, _] if parts.iter().all(part_ok) => Ok(Platform {
            os: (*os).to_owned(),
            architecture: (*arch).to_owned(),
            variant: parts.get(2).map(|v| (*v).to_owned()),
        }),
        _ => Err(
            Problem::new(format!("invalid platform `{s}`"), "not `os/arch[/variant]`").help(
                "write `os/arch` or `os/arch/variant` in lowercase, like \"linux/amd64\" or \"linux/arm64/v8\"",
            ),
        ),
    }
}

/// A key of `env`: non-empty, no `=` (it would split wrongly in `KEY=VALUE`), no NUL.
pub(crate) fn env_key(s: &str) -> Check {
    if s.is_empty() || s.contains('=') || s.contains('\0') {
        return Err(Problem::new(
            format!("invalid environment variable name `{s}`"),
            "invalid name",
        )
        .help("names are non-empty and contain no `=`, like JAVA_HOME"));
    }
    Ok(())
}

/// A key of `label` or `annotation`: non-empty.
pub(crate) fn map_key(s: &str, node: &str) -> Check {
    if s.is_empty() {
        return Err(
            Problem::new(format!("empty {node} key"), "empty key").help(format!(
                "write {node} keys in reverse domain notation, like org.opencontainers.image.title"
            )),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(image_path("/usr/local/").is_ok());
        assert!(image_path("/").is_ok());
        assert!(image_path("usr").is_err());
        assert!(image_path("/a/../b").is_err());
        assert!(image_path("/a/..").is_err());
        assert!(image_path("/a/..b").is_ok());
        assert!(image_path("/a\0").is_err());
        assert!(image_path("").is_err());
    }

    #[test]
    fn modes() {
        assert_eq!(mode(0o644, "0o644"), Ok(0o644));
        assert_eq!(mode(0o7777, "0o7777"), Ok(0o7777));
        assert!(mode(0o10000, "0o10000").is_err());
        assert!(mode(-1, "-0o1").is_err());
        let e = mode(644, "644").unwrap_err();
        assert_eq!(
            e.help.as_deref(),
            Some("write modes as octal numbers: mode=0o644")
        );
        let e = mode(420, "0x1a4").unwrap_err();
        assert_eq!(
            e.help.as_deref(),
            Some("write modes as octal numbers: mode=0o644 (decimal 420)")
        );
        let e = mode(1777, "1777").unwrap_err();
        assert_eq!(
            e.help.as_deref(),
            Some("write modes as octal numbers: mode=0o1777")
        );
        assert_eq!(
            mode(-0o644, "-0o644").unwrap_err().message,
            "mode out of range"
        );
        let e = mode_from_string("0755");
        assert_eq!(
            e.help.as_deref(),
            Some("write modes as octal numbers: mode=0o755")
        );
        let e = mode_from_string("rwx");
        assert_eq!(
            e.help.as_deref(),
            Some("write modes as octal numbers: mode=0o644")
        );
    }

    #[test]
    fn owners() {
        assert_eq!(owner("1000:100"), Ok(Owner::ids(1000, 100)));
        assert_eq!(owner("7"), Ok(Owner::ids(7, 7)));
        let name = |s: &str| OwnerId::Name(s.to_owned());
        assert_eq!(
            owner("root"),
            Ok(Owner {
                user: name("root"),
                group: None
            })
        );
        assert_eq!(
            owner("1000:staff"),
            Ok(Owner {
                user: OwnerId::Id(1000),
                group: Some(name("staff"))
            })
        );
        assert_eq!(
            owner("tomcat:tomcat").map(|o| o.to_string()),
            Ok("tomcat:tomcat".to_owned())
        );
        assert!(owner("1:2:3").is_err());
        assert!(owner(":1").is_err());
        assert!(owner("4294967296").is_err());
        assert!(owner("1abc").is_err());
        assert!(owner("a b").is_err());
        assert!(owner("app:").is_err());
        assert!(owner_int(-1).is_err());
        assert_eq!(owner_int(0), Ok(Owner::ids(0, 0)));
    }

    #[test]
    fn ports() {
        assert_eq!(port("53/UDP"), Ok("53/udp".to_owned()));
        assert_eq!(port("80"), Ok("80/tcp".to_owned()));
        assert!(port("0").is_err());
        assert!(port("65536").is_err());
        assert!(port("99999999999999999999999999999999999999999999").is_err());
        assert!(port("80/http").is_err());
        assert!(port("8000-8010").is_err());
        assert!(port("/tcp").is_err());
    }

    #[test]
    fn names_tags_signals_platforms() {
        assert!(image_name("hello-world").is_ok());
        assert!(image_name("a.b_c").is_ok());
        assert!(image_name("CentOS").is_err());
        assert!(image_name("-a").is_err());
        assert!(image_name("a..b").is_err());
        assert!(layer_name("JDK_8").is_ok());
        assert!(layer_name("..").is_err());
        assert!(layer_name("").is_err());
        assert!(tag("8.5").is_ok());
        assert!(tag(".x").is_err());
        assert!(tag(&"a".repeat(129)).is_err());
        assert!(signal("SIGRTMIN+3").is_ok());
        assert!(signal("9").is_ok());
        assert!(signal("0").is_err());
        assert!(signal("SIGKILL9").is_err());
        assert!(signal("SIGRTMAX-2").is_ok());
        assert_eq!(
            signal("SIGTREM").unwrap_err().help.as_deref(),
            Some("did you mean \"SIGTERM\"?")
        );
        assert_eq!(
            signal("term").unwrap_err().help.as_deref(),
            Some("did you mean \"SIGTERM\"?")
        );
        assert!(platform("linux/arm64/v8").is_ok());
        assert!(platform("linux").is_err());
        assert!(platform("linux//x").is_err());
        assert!(user("1000:1000").is_ok());
        assert!(user("a:b:c").is_err());
    }
}

/// Docker's `Test` array of a `healthcheck`: `CMD ARG...`, `CMD-SHELL
/// COMMAND` or `NONE`.
pub fn healthcheck_test(test: &[String]) -> Check {
    let help = "write Docker's test: `healthcheck \"CMD\" \"curl\" \"-f\" \"http://localhost/\"`, `healthcheck \"CMD-SHELL\" \"curl -f http://localhost/ || exit 1\"` or `healthcheck \"NONE\"`";
    match test {
        [] => Err(Problem::new("`healthcheck` needs a test", "no test").help(help)),
        [kind, rest @ ..] => match (kind.as_str(), rest.len()) {
            ("NONE", 0) | ("CMD-SHELL", 1) => Ok(()),
            ("CMD", n) if n > 0 => Ok(()),
            ("NONE", _) => Err(Problem::new(
                "`healthcheck \"NONE\"` takes no command",
                "NONE with a command",
            )
            .help(help)),
            ("CMD-SHELL", _) => Err(Problem::new(
                "`healthcheck \"CMD-SHELL\"` takes one command line",
                "not one command line",
            )
            .help("join the words into one string, which the image's shell runs")),
            ("CMD", _) => Err(Problem::new(
                "`healthcheck \"CMD\"` needs the command to run",
                "no command",
            )
            .help(help)),
            _ => {
                let p = Problem::new(
                    format!("a healthcheck test starts with CMD, CMD-SHELL or NONE, not {kind:?}"),
                    "unknown test kind",
                );
                Err(if rest.is_empty() {
                    p.help(format!(
                        "to run it with the image's shell, write `healthcheck \"CMD-SHELL\" {kind:?}`"
                    ))
                } else {
                    p.help(help)
                })
            }
        },
    }
}

/// A Go duration (`30s`, `1m30s`, `1.5h`, `500ms`), as Docker's
/// `HEALTHCHECK --interval=` takes it, in nanoseconds; at least 1ms, as
/// Docker requires.
///
/// Hand-written rather than taken from a crate: `humantime` and the like
/// read a different grammar (no fractions, other unit names), and a spec
/// must mean what the same text means to Docker.
pub fn duration(s: &str) -> Check<u64> {
    let bad = || {
        Problem::new(format!("{s:?} is not a duration"), "not a duration").help(
            "write a number and a unit, as Docker does: \"30s\", \"1m30s\", \"500ms\", \"1.5h\"",
        )
    };
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(bad());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        // The fraction, truncated to nanoseconds as Go does.
        let mut frac_ns: u128 = 0;
        let mut div: u128 = 1;
        for c in frac.chars().take(18) {
            frac_ns = frac_ns * 10 + u128::from(c.to_digit(10).ok_or_else(bad)?);
            div *= 10;
        }
        total = whole
            .checked_mul(scale)
            .and_then(|w| w.checked_add(frac_ns * scale / div))
            .and_then(|t| t.checked_add(total))
            .ok_or_else(bad)?;
        rest = tail;
    }
    let ns = u64::try_from(total)
        .ok()
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(bad)?;
    if ns < 1_000_000 {
        return Err(Problem::new(
            format!("{s:?} is shorter than 1ms"),
            "too short",
        )
        .help("Docker takes no health check duration under 1ms; leave the property out for its default"));
    }
    Ok(ns)
}

/// `shell "/bin/bash" "-c"`: an absolute or bare executable, no newline in
/// any word (each word travels as a line to the sandbox).
pub fn shell(argv: &[String]) -> Check {
    match argv.first() {
        Some(exe) if exe.is_empty() => Err(Problem::new("the shell must not be empty", "empty")
            .help("name the shell: `shell \"/bin/bash\" \"-c\"`")),
        Some(_) if argv.iter().any(|w| w.contains(['\n', '\0'])) => Err(Problem::new(
            "a `shell` word must not contain a newline or NUL",
            "newline",
        )
        .help("each word of `shell` is one argument")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod health_tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(duration("500ms").unwrap(), 500_000_000);
        assert_eq!(duration(".5s").unwrap(), 500_000_000);
        assert_eq!(duration("1h2m3s4ms").unwrap(), 3_723_004_000_000);
        for bad in [
            "",
            "30",
            "s",
            "1x",
            "1..5s",
            ".s",
            "-1s",
            "1 s",
            "999999999999h",
        ] {
            assert!(duration(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(duration("999us").is_err(), "under 1ms");
    }

    #[test]
    fn healthcheck_tests() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(healthcheck_test(&v(&["NONE"])).is_ok());
        assert!(healthcheck_test(&v(&["CMD", "true"])).is_ok());
        assert!(healthcheck_test(&v(&["CMD-SHELL", "curl x || exit 1"])).is_ok());
        assert!(healthcheck_test(&v(&["CMD"])).is_err());
        assert!(healthcheck_test(&v(&["CMD-SHELL", "a", "b"])).is_err());
        assert!(healthcheck_test(&v(&["NONE", "x"])).is_err());
        assert!(healthcheck_test(&v(&["curl", "x"])).is_err());
    }
}

/// The patterns of `exclude=`: separated by blanks; a backslash keeps the
/// character after it in the pattern (with the backslash, which the
/// pattern reads as an escape), so `a\ b` is one pattern naming `a b`.
pub fn exclude_patterns(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            cur.push(c);
            if let Some(n) = chars.next() {
                cur.push(n);
            }
        } else if c.is_whitespace() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `checksum="sha256:HEX"`: 64 lowercase hex digits.
pub(crate) fn checksum(s: &str) -> Check {
    match s.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => Ok(()),
        _ => Err(Problem::new(format!("{s:?} is not a sha256 checksum"), "not sha256:HEX")
            .help("write checksum=\"sha256:\" and the 64 lowercase hex digits `sha256sum FILE` prints")),
    }
}
