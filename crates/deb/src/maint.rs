//! What maintainer scripts do, done declaratively: the effects of a
//! package's `postinst` that strata can know without running it.
//!
//! strata never runs a package's scripts. It recognizes, in the script's
//! text, the few commands whose effect is a file it can write itself:
//!
//! - `update-alternatives --install LINK NAME PATH PRIORITY [--slave LINK
//!   NAME PATH]...`: the links and dpkg's record of the alternative;
//! - `ucf [OPTIONS] SRC DEST`: the configuration file copied from the
//!   package's template (a fresh install, so the template as it is), and
//!   ucf's record of it (`/var/lib/ucf/hashfile`, `cache/`);
//! - `systemd-sysusers [FILE...]` and `systemd-tmpfiles --create [FILE...]`
//!   (debhelper adds them for packages shipping `sysusers.d`/`tmpfiles.d`
//!   files): the users and groups of those files, and their directories;
//! - `chown [-R] [-h] USER[:GROUP] PATH...`, `chmod [-R] MODE PATH...`
//!   (octal, or symbolic: `u+x`, `g-w,o=`, `a+rX`, applied to the path's
//!   own mode where strata knows it), `dpkg-statoverride --add USER GROUP
//!   OCTAL PATH` and `mkdir [-p] [-m OCTAL] PATH...`: owners and modes of
//!   what the package ships (tomcat's `/etc/tomcat10` files, its log and
//!   cache directories) and the directories a script makes (`/etc/.java`).
//!   A path with a glob is not recognized; `DPKG_ROOT` is empty, as for a
//!   normal install.
//! - files a script makes ([`Made`]): `touch PATH...`, a literal written
//!   to a file (`: > F`, `> F`, `echo WORDS > F`, `>> F`), and `cp [-r|-a|-p]
//!   SRC DEST` of what the package ships (tomcat10's default `ROOT`
//!   webapp), with the mode `umask` gives (tracked through the script).
//!
//! Words are expanded from literal assignments (`VAR="a b"`) and `for NAME
//! in WORDS; do ... done` loops, the two forms these scripts use to name
//! the files; a command with a word that needs anything else (a command
//! substitution, a positional parameter, `${X:+...}`) is not recognized,
//! except that `systemd-sysusers` and `systemd-tmpfiles` keep their literal
//! file names.
//!
//! Conditions are read as a fresh install's `postinst configure ""` takes
//! them: `if`/`elif`/`else`, `case "$1" in configure)`, `&&` and `||`, with
//! the tests `[ -z "$2" ]`, `[ "$1" = configure ]`, `dpkg
//! --compare-versions "$2" lt-nl V` and the like evaluated. A command in a
//! branch a fresh install does not take is not done. A file test (`[ -f
//! X ]`) counts either way: what it guards happens only where needed, and
//! so do the effects. Any other condition is unknown: the commands it
//! guards count for the effects above the files (as before), but a file is
//! made only where the script surely runs the command (not in a function
//! body, a `while` loop or an unknown branch).
//!
//! Hand-written, not a shell parser crate: a parser gives a syntax tree but
//! no evaluation, and what is needed here is a conservative recognizer of
//! a few command shapes that refuses anything it cannot expand exactly.
//!
//! Users and groups ([`Users`]) start from `base-passwd`'s master files (what
//! its preinst copies to `/etc`) and gain those of `sysusers.d` files, with
//! ids allocated as `systemd-sysusers` allocates them: a fixed id if the
//! line gives one, else the highest free system id (999 down) that is free
//! as both a uid and a gid. `/etc/shadow` and `/etc/gshadow` are written as
//! `shadowconfig on` (passwd's postinst) leaves them: no password, no
//! aging date, so the files are the same on any day.

use std::collections::BTreeMap;

/// One `update-alternatives --install`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    /// The generic name (`awk`).
    pub name: String,
    /// The link (`/usr/bin/awk`).
    pub link: String,
    /// The choice (`/usr/bin/mawk`).
    pub path: String,
    pub priority: i64,
    /// `(link, name, path)` of each `--slave`.
    pub slaves: Vec<(String, String, String)>,
}

/// One `ucf SRC DEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UcfCopy {
    pub src: String,
    pub dest: String,
}

/// What strata recognized in a `postinst`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    pub alternatives: Vec<Alternative>,
    pub ucf: Vec<UcfCopy>,
    /// `systemd-sysusers` runs: the files it names (empty: all of them).
    pub sysusers: Option<Vec<String>>,
    /// `systemd-tmpfiles --create` runs: the files it names (empty: all).
    pub tmpfiles: Option<Vec<String>>,
    /// `chown`, `chmod` and `dpkg-statoverride --add`, in script order.
    pub perms: Vec<Perm>,
    /// `mkdir`: the directories a script makes, with `-m`'s mode.
    pub mkdirs: Vec<(String, Option<u32>)>,
    /// The files a script makes (`touch`, a redirection, `cp`), in script
    /// order, each with how many of [`Effects::perms`] came before it (the
    /// owners and modes set before a file is made do not apply to it).
    pub made: Vec<(usize, Made)>,
}

/// A file a postinst makes, in a fresh install only (see [`postinst`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Made {
    /// `touch PATH`: an empty file where there is none (an existing one
    /// only gets a new time).
    Touch { path: String, mode: u32 },
    /// `: > PATH`, `> PATH`, `echo WORDS > PATH` (literal words):
    /// the file with `content`; with `append` (`>>`), only where there is
    /// none.
    Write {
        path: String,
        content: String,
        mode: u32,
        append: bool,
    },
    /// `cp [-r|-R|-a|-p|-d] SRC DEST`: `SRC` (with `recursive`, the tree
    /// below it) at `DEST`, or in `DEST` when that is a directory; modes
    /// kept as they are less `umask` unless `preserve`, owned by root
    /// unless `preserve`.
    Copy {
        src: String,
        dest: String,
        recursive: bool,
        preserve: bool,
        umask: u32,
    },
}

/// One `chown`/`chmod`/`dpkg-statoverride --add` of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Perm {
    /// Absolute, without a trailing `/`.
    pub path: String,
    pub user: Option<String>,
    pub group: Option<String>,
    pub mode: Option<u32>,
    pub recursive: bool,
    /// From `dpkg-statoverride --add`: dpkg records it in
    /// `/var/lib/dpkg/statoverride`.
    pub statoverride: bool,
    /// A symbolic `chmod` mode (`u+x`, `g-w,o=`, `a+rX`), applied to the
    /// mode a path has (`mode` is then unset).
    pub symbolic: Option<Symbolic>,
}

/// A symbolic mode of `chmod`: clauses `[ugoa]*[-+=][rwxXst]*`, comma
/// separated, applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbolic {
    clauses: Vec<(u32, char, String)>,
}

impl Symbolic {
    /// Reads `MODE`; `None` for anything else (a copy `g=u`, no operator).
    pub fn parse(m: &str) -> Option<Symbolic> {
        let mut clauses = Vec::new();
        for c in m.split(',') {
            let at = c.find(['+', '-', '='])?;
            let (who, rest) = c.split_at(at);
            let mut mask = 0;
            for w in who.chars() {
                mask |= match w {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    'a' => 0o7777,
                    _ => return None,
                };
            }
            let mut chars = rest.chars();
            let op = chars.next()?;
            let perms: String = chars.collect();
            if !perms.chars().all(|p| "rwxXst".contains(p)) {
                return None;
            }
            // No who: `a`, less the umask; scripts run with 022, and
            // `+x` then means 0111 all the same, so the umask is not
            // applied to the bits 022 leaves.
            clauses.push((if who.is_empty() { 0 } else { mask }, op, perms));
        }
        (!clauses.is_empty()).then_some(Symbolic { clauses })
    }

    /// The mode `mode` becomes (of a directory when `dir`).
    pub fn apply(&self, mode: u32, dir: bool) -> u32 {
        let mut m = mode & 0o7777;
        for (who, op, perms) in &self.clauses {
            // No who: all, less the umask 022 (as chmod does).
            let (who, umask) = if *who == 0 {
                (0o7777, 0o022)
            } else {
                (*who, 0)
            };
            let mut bits = 0;
            for p in perms.chars() {
                bits |= match p {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' if dir || m & 0o111 != 0 => 0o111,
                    's' => 0o6000,
                    't' => 0o1000,
                    _ => 0,
                };
            }
            let bits = bits & who & !umask;
            match op {
                '+' => m |= bits,
                '-' => m &= !bits,
                _ => {
                    // `=` clears what `who` covers (but a directory keeps
                    // its set-id bits, as GNU chmod does), then sets.
                    let keep = if dir { 0o6000 } else { 0 };
                    m = (m & !(who & 0o777 | (who & 0o7000 & !keep))) | bits;
                }
            }
        }
        m
    }
}

/// A part of a shell word.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    /// `$NAME` or `${NAME}`; `quoted` when inside double quotes (not split).
    Var {
        name: String,
        quoted: bool,
    },
    /// Anything that needs running the shell to know.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(Vec<Part>),
    /// A command separator: newline, `;`, `;;`, `&&`, `||`, `|`, `&`, `(`,
    /// `)`.
    Sep(Sep),
}

/// What ends a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    /// A newline or `;`.
    Next,
    /// `;;`, the end of a `case` arm.
    Arm,
    And,
    Or,
    Pipe,
    Background,
    Open,
    Close,
}

fn tokenize(script: &str) -> Vec<Token> {
    let s: Vec<char> = script.replace("\\\n", "").chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut parts: Vec<Part> = Vec::new();
    let mut lit = String::new();
    let mut in_word = false;
    fn flush_lit(lit: &mut String, parts: &mut Vec<Part>) {
        if !lit.is_empty() {
            parts.push(Part::Lit(std::mem::take(lit)));
        }
    }
    fn end_word(lit: &mut String, parts: &mut Vec<Part>, out: &mut Vec<Token>, in_word: &mut bool) {
        flush_lit(lit, parts);
        if *in_word {
            out.push(Token::Word(std::mem::take(parts)));
        }
        *in_word = false;
    }
    // Reads `$...` at `s[i] == '$'`; returns the part and the next index.
    fn dollar(s: &[char], i: usize, quoted: bool) -> (Part, usize) {
        let name_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
        match s.get(i + 1) {
            Some('{') => {
                let mut j = i + 2;
                let mut depth = 1;
                while j < s.len() && depth > 0 {
                    match s[j] {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                let inner: String = s[i + 2..j.saturating_sub(1).max(i + 2)].iter().collect();
                let simple = !inner.is_empty()
                    && inner.chars().all(name_char)
                    && !inner.starts_with(|c: char| c.is_ascii_digit());
                if simple {
                    (
                        Part::Var {
                            name: inner,
                            quoted,
                        },
                        j,
                    )
                } else {
                    (Part::Unknown, j)
                }
            }
            Some('(') => {
                let mut j = i + 2;
                let mut depth = 1;
                while j < s.len() && depth > 0 {
                    match s[j] {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                (Part::Unknown, j)
            }
            Some(&c) if c.is_ascii_digit() => (
                Part::Var {
                    name: c.to_string(),
                    quoted,
                },
                i + 2,
            ),
            Some(&c) if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i + 1;
                while j < s.len() && name_char(s[j]) {
                    j += 1;
                }
                (
                    Part::Var {
                        name: s[i + 1..j].iter().collect(),
                        quoted,
                    },
                    j,
                )
            }
            Some(_) => (Part::Unknown, i + 2),
            None => (Part::Lit("$".into()), i + 1),
        }
    }
    while i < s.len() {
        let c = s[i];
        match c {
            '#' if !in_word => {
                while i < s.len() && s[i] != '\n' {
                    i += 1;
                }
            }
            ' ' | '\t' => {
                end_word(&mut lit, &mut parts, &mut out, &mut in_word);
                i += 1;
            }
            '\n' | ';' | '&' | '|' | '(' | ')' => {
                end_word(&mut lit, &mut parts, &mut out, &mut in_word);
                let twice = s.get(i + 1) == Some(&c);
                let (sep, len) = match c {
                    ';' if twice => (Sep::Arm, 2),
                    '&' if twice => (Sep::And, 2),
                    '|' if twice => (Sep::Or, 2),
                    '&' => (Sep::Background, 1),
                    '|' => (Sep::Pipe, 1),
                    '(' => (Sep::Open, 1),
                    ')' => (Sep::Close, 1),
                    _ => (Sep::Next, 1),
                };
                out.push(Token::Sep(sep));
                i += len;
            }
            '\'' => {
                in_word = true;
                i += 1;
                while i < s.len() && s[i] != '\'' {
                    lit.push(s[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < s.len() && s[i] != '"' {
                    match s[i] {
                        '\\' if i + 1 < s.len() => {
                            lit.push(s[i + 1]);
                            i += 2;
                        }
                        '$' => {
                            flush_lit(&mut lit, &mut parts);
                            let (p, j) = dollar(&s, i, true);
                            parts.push(p);
                            i = j;
                        }
                        '`' => {
                            flush_lit(&mut lit, &mut parts);
                            parts.push(Part::Unknown);
                            i += 1;
                            while i < s.len() && s[i] != '`' {
                                i += 1;
                            }
                            i += 1;
                        }
                        ch => {
                            lit.push(ch);
                            i += 1;
                        }
                    }
                }
                i += 1;
            }
            '\\' => {
                in_word = true;
                if let Some(&n) = s.get(i + 1) {
                    lit.push(n);
                }
                i += 2;
            }
            '$' => {
                in_word = true;
                flush_lit(&mut lit, &mut parts);
                let (p, j) = dollar(&s, i, false);
                parts.push(p);
                i = j;
            }
            '`' => {
                in_word = true;
                flush_lit(&mut lit, &mut parts);
                parts.push(Part::Unknown);
                i += 1;
                while i < s.len() && s[i] != '`' {
                    i += 1;
                }
                i += 1;
            }
            ch => {
                in_word = true;
                lit.push(ch);
                i += 1;
            }
        }
    }
    end_word(&mut lit, &mut parts, &mut out, &mut in_word);
    out
}

/// One simple command: its words and what ended it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cmd {
    words: Vec<Vec<Part>>,
    end: Sep,
}

/// The simple commands of a script, in order. A separator with no words
/// before it ends no command, except that `;;` and `)` are kept on the
/// command before them (a `case` arm's end and label).
fn commands(tokens: &[Token]) -> Vec<Cmd> {
    let mut out: Vec<Cmd> = Vec::new();
    let mut cur = Vec::new();
    for t in tokens {
        match t {
            Token::Word(w) => cur.push(w.clone()),
            Token::Sep(sep) => {
                if !cur.is_empty() {
                    out.push(Cmd {
                        words: std::mem::take(&mut cur),
                        end: *sep,
                    });
                } else if matches!(sep, Sep::Arm | Sep::Close)
                    && let Some(last) = out.last_mut()
                    && last.end == Sep::Next
                {
                    last.end = *sep;
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(Cmd {
            words: cur,
            end: Sep::Next,
        });
    }
    out
}

fn literal(w: &[Part]) -> Option<&str> {
    match w {
        [Part::Lit(s)] => Some(s),
        _ => None,
    }
}

/// Words that start a command without being it.
const PREFIXES: [&str; 8] = ["then", "do", "else", "if", "elif", "while", "until", "!"];

/// Expands words with `vars` (`None`: unknown); `None` if any part is
/// unknown.
fn expand(words: &[Vec<Part>], vars: &BTreeMap<String, Option<String>>) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for w in words {
        let mut fields: Vec<String> = vec![String::new()];
        for p in w {
            match p {
                Part::Lit(s) => fields.last_mut()?.push_str(s),
                Part::Var { name, quoted } => {
                    let v = vars.get(name)?.as_ref()?;
                    if *quoted {
                        fields.last_mut()?.push_str(v);
                    } else {
                        let mut split = v.split_whitespace();
                        if let Some(first) = split.next() {
                            fields.last_mut()?.push_str(first);
                        }
                        for f in split {
                            fields.push(f.to_owned());
                        }
                    }
                }
                Part::Unknown => return None,
            }
        }
        // A word of no parts is `""` or `''`: one empty field.
        let quoted_empty = w.is_empty()
            || w.iter()
                .any(|p| matches!(p, Part::Lit(_)) || matches!(p, Part::Var { quoted: true, .. }));
        for f in fields {
            if !f.is_empty() || quoted_empty {
                out.push(f);
            }
        }
    }
    Some(out)
}

/// The effects of a `postinst` script's text.
pub fn postinst(script: &str) -> Effects {
    let cmds = commands(&tokenize(script));
    let mut effects = Effects::default();
    let mut vars = BTreeMap::new();
    // A normal install, not one into another root.
    vars.insert("DPKG_ROOT".to_owned(), Some(String::new()));
    let mut state = State {
        umask: 0o022,
        flow: Flow::default(),
        removed: Default::default(),
    };
    run(&cmds, &mut vars, &mut effects, &mut state, 0);
    effects.made.retain(|(_, m)| match m {
        Made::Touch { path, .. } | Made::Write { path, .. } => !state.removed.contains(path),
        Made::Copy { dest, .. } => !state.removed.contains(dest),
    });
    effects
}

/// Whether a command runs in a fresh install's `postinst configure`, as far
/// as the script's conditions tell ([`Flow`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    True,
    False,
    /// A test of whether a file exists: the commands it guards (`[ -d X ]
    /// || mkdir X`, `if [ ! -f X ]; then touch X`) do what they do only
    /// when needed, and so do their declarative effects; counted as run
    /// either way.
    Either,
    Unknown,
}

impl Truth {
    fn runs(self) -> bool {
        matches!(self, Truth::True | Truth::Either)
    }

    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            t => t,
        }
    }

    fn and(self, o: Truth) -> Truth {
        use Truth::*;
        match (self, o) {
            (False, _) | (_, False) => False,
            (Unknown, _) | (_, Unknown) => Unknown,
            (Either, _) | (_, Either) => Either,
            (True, True) => True,
        }
    }

    fn or(self, o: Truth) -> Truth {
        use Truth::*;
        match (self, o) {
            (True, _) | (_, True) => True,
            (Unknown, _) | (_, Unknown) => Unknown,
            (Either, _) | (_, Either) => Either,
            (False, False) => False,
        }
    }
}

/// One enclosing construct of the command being read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    /// `if`/`elif`/`else`: the branch being read, and whether an earlier
    /// branch was taken.
    If { branch: Truth, taken: Truth },
    /// `case WORD in`: the subject as a fresh install has it (`None`:
    /// unknown), the arm being read, whether an earlier arm matched, and
    /// whether the next command is an arm's label.
    Case {
        subject: Option<String>,
        arm: Truth,
        matched: Truth,
        label_next: bool,
    },
    /// A `{ ... }` group, `Unknown` for a function's body (it runs when
    /// called, which is not followed).
    Group(Truth),
    /// A `while`/`until` loop: its body runs any number of times.
    Loop,
}

/// The constructs around the command being read.
#[derive(Debug, Clone, Default)]
struct Flow {
    frames: Vec<Frame>,
    /// The last command defined a function: the next `{` is its body.
    function_next: bool,
    /// How the command before the current one ended, and its truth
    /// (`a && b`, `a || b`).
    chain: Option<(Sep, Truth)>,
}

impl Flow {
    /// Whether the current command runs, by its enclosing constructs and
    /// the `&&`/`||` chain before it.
    fn live(&self) -> Truth {
        let mut t = Truth::True;
        for f in &self.frames {
            t = t.and(match f {
                Frame::If { branch, .. } => *branch,
                Frame::Case { arm, .. } => *arm,
                Frame::Group(g) => *g,
                Frame::Loop => Truth::Unknown,
            });
        }
        match self.chain {
            Some((Sep::And, prev)) => t.and(prev),
            Some((Sep::Or, prev)) => t.and(prev.not()),
            _ => t,
        }
    }
}

struct State {
    umask: u32,
    flow: Flow,
    /// What `rm` names anywhere in the script.
    removed: std::collections::BTreeSet<String>,
}

/// The values a fresh install's `postinst configure` is called with, for
/// conditions only (a command's own words never use them).
fn condition_vars(vars: &BTreeMap<String, Option<String>>) -> BTreeMap<String, Option<String>> {
    let mut v = vars.clone();
    v.insert("1".into(), Some("configure".into()));
    v.insert("2".into(), Some(String::new()));
    v
}

/// The truth of a condition command (`[ ... ]`, `test`, `dpkg
/// --compare-versions`, `true`) in a fresh install; anything else is
/// `Unknown`.
fn test_truth(words: &[Vec<Part>], vars: &BTreeMap<String, Option<String>>) -> Truth {
    let cv = condition_vars(vars);
    let Some(w) = expand(words, &cv) else {
        return Truth::Unknown;
    };
    let w: Vec<&str> = w.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["!", rest @ ..] => test_words(rest).not(),
        _ => test_words(&w),
    }
}

fn test_words(w: &[&str]) -> Truth {
    let inner: &[&str] = match w {
        ["[", inner @ .., "]"] => inner,
        ["test", inner @ ..] => inner,
        ["true"] | [":"] => return Truth::True,
        ["false"] => return Truth::False,
        ["dpkg", "--compare-versions", a, op, b] => return compare_versions(a, op, b),
        _ => return Truth::Unknown,
    };
    match inner {
        ["!", rest @ ..] => test_words(&[&["["][..], rest, &["]"][..]].concat()).not(),
        ["-z", x] => bool_truth(x.is_empty()),
        ["-n", x] => bool_truth(!x.is_empty()),
        [a, "=" | "==", b] => bool_truth(a == b),
        [a, "!=", b] => bool_truth(a != b),
        ["-f" | "-d" | "-e" | "-L" | "-h" | "-s" | "-r", p] if p.starts_with('/') => Truth::Either,
        _ => Truth::Unknown,
    }
}

fn bool_truth(b: bool) -> Truth {
    if b { Truth::True } else { Truth::False }
}

/// `dpkg --compare-versions A OP B` with `A` the empty version a fresh
/// install passes as `$2`: dpkg takes it as earlier than any version,
/// except for the `-nl` operators, which take it as later.
fn compare_versions(a: &str, op: &str, b: &str) -> Truth {
    if !a.is_empty() || b.is_empty() {
        return Truth::Unknown;
    }
    match op {
        "lt" | "le" | "<<" | "<=" | "<" | "ne" | "gt-nl" | "ge-nl" => Truth::True,
        "gt" | "ge" | ">>" | ">=" | ">" | "eq" | "lt-nl" | "le-nl" => Truth::False,
        _ => Truth::Unknown,
    }
}

/// The truth of `if`'s condition: `cmds`, each ended by `&&`, `||` or `;`.
fn condition_truth(cmds: &[Cmd], vars: &BTreeMap<String, Option<String>>) -> Truth {
    let mut acc: Option<Truth> = None;
    let mut joiner = Sep::Next;
    for c in cmds {
        let t = match test_truth(&c.words, vars) {
            Truth::Unknown if is_effect_command(&c.words) => Truth::True,
            t => t,
        };
        acc = Some(match (acc, joiner) {
            (None, _) => t,
            (Some(a), Sep::And) => a.and(t),
            (Some(a), Sep::Or) => a.or(t),
            (Some(_), _) => t,
        });
        joiner = c.end;
    }
    acc.unwrap_or(Truth::Unknown)
}

/// Whether `label` (a `case` pattern) matches `subject`: `Unknown` for a
/// glob other than `*`.
fn label_matches(label: &str, subject: &Option<String>) -> Truth {
    if label == "*" {
        return Truth::True;
    }
    let Some(subject) = subject else {
        return Truth::Unknown;
    };
    if label.contains(['*', '?', '[']) {
        return Truth::Unknown;
    }
    bool_truth(label == subject)
}

/// Evaluates `cmds` (a loop body when `depth > 0`).
fn run(
    cmds: &[Cmd],
    vars: &mut BTreeMap<String, Option<String>>,
    effects: &mut Effects,
    state: &mut State,
    depth: usize,
) {
    let mut i = 0;
    while i < cmds.len() {
        // `a && b`, `a || b`: only right after such a command.
        if i == 0 || !matches!(cmds[i - 1].end, Sep::And | Sep::Or | Sep::Pipe) {
            state.flow.chain = None;
        }
        let cmd = &cmds[i];
        i += 1;
        let mut words: &[Vec<Part>] = &cmd.words;
        // A `case` arm's label: `configure)`, `abort-upgrade|abort-remove)`.
        if let Some(Frame::Case {
            label_next: true, ..
        }) = state.flow.frames.last()
            && words.first().and_then(|w| literal(w)) != Some("esac")
        {
            let mut labels: Vec<String> = words
                .iter()
                .map(|w| literal(w).unwrap_or("\u{0}").to_owned())
                .collect();
            let mut end = cmd.end;
            while end == Sep::Pipe && i < cmds.len() {
                labels.extend(
                    cmds[i]
                        .words
                        .iter()
                        .map(|w| literal(w).unwrap_or("\u{0}").to_owned()),
                );
                end = cmds[i].end;
                i += 1;
            }
            if let Some(Frame::Case {
                subject,
                arm,
                matched,
                label_next,
            }) = state.flow.frames.last_mut()
            {
                let m = labels
                    .iter()
                    .map(|l| label_matches(l.trim_start_matches('('), subject))
                    .fold(Truth::False, Truth::or);
                *arm = matched.not().and(m);
                *matched = matched.or(m);
                *label_next = false;
            }
            continue;
        }
        // Control words, then the command they start.
        while let Some(first) = words.first().and_then(|w| literal(w)) {
            match first {
                "if" | "elif" => {
                    // The condition runs to the command that starts with `then`.
                    let mut cond = Vec::new();
                    if words.len() > 1 {
                        cond.push(Cmd {
                            words: words[1..].to_vec(),
                            end: cmd.end,
                        });
                    }
                    while i < cmds.len()
                        && cmds[i].words.first().and_then(|w| literal(w)) != Some("then")
                    {
                        cond.push(cmds[i].clone());
                        i += 1;
                    }
                    // The condition's commands run too (`if mkdir X; then`).
                    for c in &cond {
                        run_simple(c, vars, effects, state, depth);
                    }
                    let c = condition_truth(&cond, vars);
                    if first == "if" {
                        state.flow.frames.push(Frame::If {
                            branch: c,
                            taken: c,
                        });
                    } else if let Some(Frame::If { branch, taken }) = state.flow.frames.last_mut() {
                        *branch = taken.not().and(c);
                        *taken = taken.or(c);
                    }
                    // The `then` command is read next, with the frame set.
                    state.flow.chain = None;
                    words = &[];
                }
                "else" => {
                    if let Some(Frame::If { branch, taken }) = state.flow.frames.last_mut() {
                        *branch = taken.not();
                        *taken = Truth::True;
                    }
                    words = &words[1..];
                }
                "fi" | "esac" | "done" | "}" => {
                    let pop = matches!(
                        (first, state.flow.frames.last()),
                        ("fi", Some(Frame::If { .. }))
                            | ("esac", Some(Frame::Case { .. }))
                            | ("done", Some(Frame::Loop))
                            | ("}", Some(Frame::Group(_)))
                    );
                    if pop {
                        state.flow.frames.pop();
                    }
                    words = &words[1..];
                }
                "{" => {
                    let g = if state.flow.function_next {
                        Truth::Unknown
                    } else {
                        Truth::True
                    };
                    state.flow.function_next = false;
                    state.flow.frames.push(Frame::Group(g));
                    words = &words[1..];
                }
                "case" => {
                    let subject = words
                        .get(1)
                        .and_then(|w| expand(std::slice::from_ref(w), &condition_vars(vars)))
                        .and_then(|v| v.into_iter().next());
                    state.flow.frames.push(Frame::Case {
                        subject,
                        arm: Truth::False,
                        matched: Truth::False,
                        label_next: true,
                    });
                    words = &[];
                }
                "while" | "until" => {
                    state.flow.frames.push(Frame::Loop);
                    words = &[];
                }
                w if PREFIXES.contains(&w) => words = &words[1..],
                _ => break,
            }
        }
        if cmd.end == Sep::Arm
            && let Some(Frame::Case { label_next, .. }) = state.flow.frames.last_mut()
        {
            *label_next = true;
        }
        let Some(first) = words.first() else {
            if cmd.end == Sep::Arm {
                state.flow.chain = None;
            }
            continue;
        };
        let name = literal(first);
        if name == Some("for")
            && depth < 4
            && let Some(var) = words.get(1).and_then(|w| literal(w))
        {
            // The body runs to the matching `done`.
            let start = i;
            let mut level = 1;
            while i < cmds.len() {
                let head = cmds[i]
                    .words
                    .iter()
                    .find_map(|w| literal(w).filter(|s| !matches!(*s, "then" | "else" | "do")));
                match head {
                    Some("for" | "while" | "until") => level += 1,
                    Some("done") => level -= 1,
                    _ => {}
                }
                if level == 0 {
                    break;
                }
                i += 1;
            }
            let body = &cmds[start..i.min(cmds.len())];
            i += 1;
            let list = if words.get(2).and_then(|w| literal(w)) == Some("in") {
                expand(&words[3..], vars)
            } else {
                None
            };
            // The body is read with what encloses the loop.
            let outer = std::mem::take(&mut state.flow.frames);
            let live = {
                let f = Flow {
                    frames: outer.clone(),
                    ..Default::default()
                };
                f.live()
            };
            state.flow.frames = vec![Frame::Group(live)];
            match list {
                Some(values) => {
                    for v in values {
                        vars.insert(var.to_owned(), Some(v));
                        run(body, vars, effects, state, depth + 1);
                    }
                }
                None => {
                    vars.insert(var.to_owned(), None);
                    run(body, vars, effects, state, depth + 1);
                }
            }
            state.flow.frames = outer;
            state.flow.chain = None;
            vars.remove(var);
            continue;
        }
        // What follows `done`, `fi`, `esac` or `}` (`done < in > out`)
        // redirects the construct, not a command of its own.
        let closing = words.len() < cmd.words.len()
            && matches!(literal(&cmd.words[0]), Some("done" | "fi" | "esac" | "}"));
        if closing {
            continue;
        }
        let simple = Cmd {
            words: words.to_vec(),
            end: cmd.end,
        };
        // `NAME()`: a function definition; its body is the next group.
        if words.len() == 1 && cmd.end == Sep::Open {
            state.flow.function_next = true;
            continue;
        }
        run_simple(&simple, vars, effects, state, depth);
        after_command(state, &simple, vars);
    }
}

/// Records how `cmd` ended, for the command after it (`&&`, `||`).
fn after_command(state: &mut State, cmd: &Cmd, vars: &BTreeMap<String, Option<String>>) {
    state.flow.chain = match cmd.end {
        Sep::And | Sep::Or => {
            let t = match test_truth(&cmd.words, vars) {
                // A command that is not a test: assumed to succeed when it
                // is one strata recognizes, unknown otherwise.
                Truth::Unknown if is_effect_command(&cmd.words) => Truth::True,
                t => t,
            };
            Some((cmd.end, t))
        }
        Sep::Pipe => state.flow.chain,
        _ => None,
    };
}

fn is_effect_command(words: &[Vec<Part>]) -> bool {
    matches!(
        words.first().and_then(|w| literal(w)),
        Some("mkdir" | "chown" | "chmod" | "touch" | "cp" | "ucf" | "update-alternatives")
    )
}

/// Evaluates one simple command (its control words already read).
fn run_simple(
    cmd: &Cmd,
    vars: &mut BTreeMap<String, Option<String>>,
    effects: &mut Effects,
    state: &mut State,
    _depth: usize,
) {
    let words: &[Vec<Part>] = &cmd.words;
    // A path the script may remove (in any branch, in a function it
    // calls): a file it makes there is left out (ca-certificates-java's
    // `fresh`, made, read and removed by the same configure).
    if words.first().and_then(|w| literal(w)) == Some("rm")
        && let Some(w) = expand(&words[1..], vars)
    {
        state.removed.extend(w.iter().filter_map(|p| plain_path(p)));
    }
    let live = state.flow.live();
    // Commands that would not run in a fresh install do nothing.
    if live == Truth::False {
        return;
    }
    // Assignments only: `A=1 B="x y"`.
    let assignments: Vec<(String, Vec<Part>)> = words
        .iter()
        .map_while(|w| {
            let Some(Part::Lit(s)) = w.first() else {
                return None;
            };
            let (n, v) = s.split_once('=')?;
            let ok = !n.is_empty()
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !n.starts_with(|c: char| c.is_ascii_digit());
            let mut parts = w.clone();
            parts[0] = Part::Lit(v.to_owned());
            ok.then(|| (n.to_owned(), parts))
        })
        .collect();
    if !assignments.is_empty() && assignments.len() == words.len() {
        for (n, parts) in assignments {
            let value = expand(std::slice::from_ref(&parts), vars).map(|v| v.join(" "));
            vars.insert(n, value);
        }
        return;
    }
    // Files a command makes: only when it surely runs.
    if live.runs()
        && let Some(w) = expand(words, vars)
    {
        if let Some(m) = umask_of(&w) {
            state.umask = m;
            return;
        }
        let made = made_by(&w, state.umask);
        if !made.is_empty() {
            let at = effects.perms.len();
            effects.made.extend(made.into_iter().map(|m| (at, m)));
            return;
        }
    }
    let name = words.first().and_then(|w| literal(w));
    match name {
        Some("update-alternatives") => {
            if let Some(w) = expand(&words[1..], vars)
                && let Some(a) = alternative(&w)
            {
                effects.alternatives.push(a);
            }
        }
        Some("ucf") => {
            if let Some(w) = expand(&words[1..], vars)
                && let Some(u) = ucf(&w)
            {
                effects.ucf.push(u);
            }
        }
        Some("chown" | "chmod" | "dpkg-statoverride" | "mkdir") => {
            if let Some(w) = expand(&words[1..], vars) {
                let w = without_redirections(&w);
                match name {
                    Some("chown") => effects.perms.extend(chown(&w)),
                    Some("chmod") => effects.perms.extend(chmod(&w)),
                    Some("mkdir") => effects.mkdirs.extend(mkdir(&w)),
                    _ => effects.perms.extend(statoverride(&w)),
                }
            }
        }
        Some("systemd-sysusers") => {
            let files = conf_names(&words[1..]);
            effects.sysusers.get_or_insert_default().extend(files);
        }
        Some("systemd-tmpfiles") => {
            let create = words[1..].iter().any(|w| literal(w) == Some("--create"));
            if create {
                let files = conf_names(&words[1..]);
                effects.tmpfiles.get_or_insert_default().extend(files);
            }
        }
        _ => {}
    }
}

/// `umask OCTAL`.
fn umask_of(w: &[String]) -> Option<u32> {
    match w {
        [u, m] if u == "umask" => octal(m).filter(|m| *m <= 0o777),
        _ => None,
    }
}

/// The files a command makes: `touch PATH...`, a command that writes a
/// literal (or nothing) to a file (`: > F`, `> F`, `echo WORDS > F`,
/// `>> F`), `cp [OPTIONS] SRC DEST`. Empty for anything else.
fn made_by(w: &[String], umask: u32) -> Vec<Made> {
    let file_mode = 0o666 & !umask;
    // Redirections: the last of stdout wins; others must go nowhere.
    let mut target: Option<(String, bool)> = None;
    let mut words = Vec::new();
    let mut it = w.iter();
    while let Some(x) = it.next() {
        let digits = x.len() - x.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (fd, rest) = x.split_at(digits);
        if !(rest.starts_with('>') || rest.starts_with('<')) {
            words.push(x.as_str());
            continue;
        }
        let op_len = rest.len() - rest.trim_start_matches(['>', '<', '&', '|']).len();
        let (op, attached) = rest.split_at(op_len);
        let to = if attached.is_empty() && !op.ends_with('&') {
            match it.next() {
                Some(t) => t.as_str(),
                None => return Vec::new(),
            }
        } else {
            attached
        };
        match (fd, op) {
            ("" | "1", ">" | ">|" | ">>") => {
                if to == "/dev/null" {
                    target = None;
                    continue;
                }
                let Some(p) = plain_path(to) else {
                    return Vec::new();
                };
                target = Some((p, op == ">>"));
            }
            // stderr anywhere, or stdout joined to it: no file.
            ("2", ">" | ">>") | ("2", ">&") | (_, "<") => {}
            _ => return Vec::new(),
        }
    }
    if let Some((path, append)) = target {
        let content = match words.as_slice() {
            [] | [":"] | ["true"] => String::new(),
            ["echo", rest @ ..] => {
                let (newline, rest) = match rest {
                    ["-n", r @ ..] => (false, r),
                    r => (true, r),
                };
                // dash's echo reads backslashes: only plain words.
                if rest.iter().any(|r| r.contains('\\') || r.starts_with('-')) {
                    return Vec::new();
                }
                let mut c = rest.join(" ");
                if newline {
                    c.push('\n');
                }
                c
            }
            _ => return Vec::new(),
        };
        return vec![Made::Write {
            path,
            content,
            mode: file_mode,
            append,
        }];
    }
    match words.as_slice() {
        ["touch", args @ ..] => {
            let mut paths = Vec::new();
            for a in args {
                match *a {
                    "-a" | "-m" => {}
                    a if a.starts_with('-') => return Vec::new(),
                    a => match plain_path(a) {
                        Some(p) => paths.push(p),
                        None => return Vec::new(),
                    },
                }
            }
            paths
                .into_iter()
                .map(|path| Made::Touch {
                    path,
                    mode: file_mode,
                })
                .collect()
        }
        ["cp", args @ ..] => {
            let (mut recursive, mut preserve) = (false, false);
            let mut operands = Vec::new();
            for a in args {
                match *a {
                    "--recursive" => recursive = true,
                    "--archive" => (recursive, preserve) = (true, true),
                    "--preserve" | "--no-dereference" | "--force" | "--verbose" => {
                        preserve |= *a == "--preserve"
                    }
                    a if a.starts_with("--") => return Vec::new(),
                    a if a.starts_with('-') && a.len() > 1 => {
                        for c in a[1..].chars() {
                            match c {
                                'r' | 'R' => recursive = true,
                                'a' => (recursive, preserve) = (true, true),
                                'p' => preserve = true,
                                'd' | 'P' | 'f' | 'v' | 'Z' => {}
                                _ => return Vec::new(),
                            }
                        }
                    }
                    a => match plain_path(a) {
                        Some(p) => operands.push(p),
                        None => return Vec::new(),
                    },
                }
            }
            let [src, dest] = <[String; 2]>::try_from(operands).unwrap_or_default();
            if src.is_empty() {
                return Vec::new();
            }
            vec![Made::Copy {
                src,
                dest,
                recursive,
                preserve,
                umask,
            }]
        }
        _ => Vec::new(),
    }
}

/// The words of a command without its redirections (`2> /dev/null`,
/// `>/dev/null`, `2>&1`).
fn without_redirections(w: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = w.iter();
    while let Some(x) = it.next() {
        let op_len = x.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let rest = &x[x.len() - op_len..];
        if rest.starts_with('>') || rest.starts_with('<') {
            let target = rest.trim_start_matches(['>', '<', '&']);
            if target.is_empty() && !rest.ends_with('&') {
                // The target is the next word.
                it.next();
            }
            continue;
        }
        out.push(x.clone());
    }
    out
}

/// An absolute path without `..`, `.`, globs or a trailing `/`.
fn plain_path(p: &str) -> Option<String> {
    let p = p.trim_end_matches('/');
    let ok = p.starts_with('/')
        && !p
            .split('/')
            .skip(1)
            .any(|c| c.is_empty() || c == ".." || c == ".")
        && !p.contains(['*', '?', '[', '{', '~']);
    ok.then(|| p.to_owned())
}

fn octal(m: &str) -> Option<u32> {
    (!m.is_empty() && m.len() <= 4 && m.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        .then(|| u32::from_str_radix(m, 8).ok())
        .flatten()
}

/// `OPTIONS... FIRST PATH...` of `chown`/`chmod`: the first operand, the
/// paths and `-R`; `None` at an option it does not know.
fn operands<'w>(w: &'w [String], known: &[&str]) -> Option<(&'w str, Vec<String>, bool)> {
    let mut recursive = false;
    let mut rest = Vec::new();
    let mut options = true;
    for x in w {
        if options && x == "--" {
            options = false;
        } else if options && x.starts_with("--") {
            match x.as_str() {
                "--recursive" => recursive = true,
                o if known.contains(&o) => {}
                _ => return None,
            }
        } else if options && x.starts_with('-') && x.len() > 1 {
            for c in x[1..].chars() {
                match c {
                    'R' => recursive = true,
                    c if known.iter().any(|k| k.len() == 2 && k.ends_with(c)) => {}
                    _ => return None,
                }
            }
        } else {
            rest.push(x.as_str());
        }
    }
    let (first, paths) = rest.split_first()?;
    let paths: Option<Vec<String>> = paths.iter().map(|p| plain_path(p)).collect();
    let paths = paths.filter(|p| !p.is_empty())?;
    Some((first, paths, recursive))
}

/// [`operands`] for `chmod`, whose mode may start with `-` (`-w`): a word
/// that reads as a symbolic mode is the mode, not an option.
fn operands_chmod<'w>(w: &'w [String], known: &[&str]) -> Option<(&'w str, Vec<String>, bool)> {
    let at = w
        .iter()
        .position(|x| !x.starts_with('-') || Symbolic::parse(x).is_some())?;
    let (opts, rest) = w.split_at(at);
    let (recursive, _) = {
        let mut r = false;
        for o in opts {
            match o.as_str() {
                "-R" | "--recursive" => r = true,
                o if known.contains(&o) => {}
                _ => return None,
            }
        }
        (r, ())
    };
    let (first, paths) = rest.split_first()?;
    let paths: Option<Vec<String>> = paths.iter().map(|p| plain_path(p)).collect();
    let paths = paths.filter(|p| !p.is_empty())?;
    Some((first, paths, recursive))
}

/// `USER`, `USER:GROUP`, `USER.GROUP` or `:GROUP`.
fn owner_spec(o: &str) -> Option<(Option<String>, Option<String>)> {
    let (u, g) = match o.split_once([':', '.']) {
        Some((u, g)) => (u, Some(g)),
        None => (o, None),
    };
    // `USER:` is the user's login group, which would need its entry.
    if g == Some("") {
        return None;
    }
    let name = |n: &str| -> Option<Option<String>> {
        match n {
            "" => Some(None),
            n if valid_name(n) || n.bytes().all(|b| b.is_ascii_digit()) => Some(Some(n.to_owned())),
            _ => None,
        }
    };
    let user = name(u)?;
    let group = match g {
        Some(g) => name(g)?,
        None => None,
    };
    (user.is_some() || group.is_some()).then_some((user, group))
}

fn chown(w: &[String]) -> Vec<Perm> {
    let known = [
        "-h",
        "-f",
        "-v",
        "-c",
        "-P",
        "--no-dereference",
        "--quiet",
        "--silent",
        "--verbose",
    ];
    let Some((spec, paths, recursive)) = operands(w, &known) else {
        return Vec::new();
    };
    let Some((user, group)) = owner_spec(spec) else {
        return Vec::new();
    };
    paths
        .into_iter()
        .map(|path| Perm {
            path,
            user: user.clone(),
            group: group.clone(),
            mode: None,
            recursive,
            statoverride: false,
            symbolic: None,
        })
        .collect()
}

fn chmod(w: &[String]) -> Vec<Perm> {
    let known = ["-f", "-v", "-c", "--quiet", "--silent", "--verbose"];
    let Some((mode, paths, recursive)) = operands_chmod(w, &known) else {
        return Vec::new();
    };
    let (mode, symbolic) = match octal(mode) {
        Some(m) => (Some(m), None),
        None => match Symbolic::parse(mode) {
            Some(s) => (None, Some(s)),
            None => return Vec::new(),
        },
    };
    paths
        .into_iter()
        .map(|path| Perm {
            path,
            user: None,
            group: None,
            mode,
            recursive,
            statoverride: false,
            symbolic: symbolic.clone(),
        })
        .collect()
}

/// `dpkg-statoverride [--update] [--force...] --add USER GROUP MODE PATH`.
fn statoverride(w: &[String]) -> Vec<Perm> {
    if !w.iter().any(|x| x == "--add") {
        return Vec::new();
    }
    let mut positional = Vec::new();
    for x in w {
        match x.as_str() {
            "--add" | "--update" | "--quiet" | "--force" => {}
            o if o.starts_with("--force-") || o.starts_with("--no-force-") => {}
            o if o.starts_with('-') => return Vec::new(),
            _ => positional.push(x.as_str()),
        }
    }
    let [user, group, mode, path] = positional.as_slice() else {
        return Vec::new();
    };
    let (Some((Some(user), None)), Some((Some(group), None)), Some(mode), Some(path)) = (
        owner_spec(user),
        owner_spec(group),
        octal(mode),
        plain_path(path),
    ) else {
        return Vec::new();
    };
    vec![Perm {
        path,
        user: Some(user),
        group: Some(group),
        mode: Some(mode),
        recursive: false,
        statoverride: true,
        symbolic: None,
    }]
}

/// `mkdir [-p] [-m MODE] PATH...`.
fn mkdir(w: &[String]) -> Vec<(String, Option<u32>)> {
    let mut mode = None;
    let mut paths = Vec::new();
    let mut it = w.iter();
    while let Some(x) = it.next() {
        match x.as_str() {
            "-p" | "--parents" => {}
            "-m" | "--mode" => match it.next().and_then(|m| octal(m)) {
                Some(m) => mode = Some(m),
                None => return Vec::new(),
            },
            o if o.starts_with("--mode=") => match octal(&o["--mode=".len()..]) {
                Some(m) => mode = Some(m),
                None => return Vec::new(),
            },
            o if o.starts_with("-m") => match octal(&o[2..]) {
                Some(m) => mode = Some(m),
                None => return Vec::new(),
            },
            o if o.starts_with('-') => return Vec::new(),
            p => match plain_path(p) {
                Some(p) => paths.push(p),
                None => return Vec::new(),
            },
        }
    }
    paths.into_iter().map(|p| (p, mode)).collect()
}

/// The literal `NAME.conf` words of a command.
fn conf_names(words: &[Vec<Part>]) -> Vec<String> {
    words
        .iter()
        .filter_map(|w| literal(w))
        .filter(|s| s.ends_with(".conf") && !s.starts_with('-') && !s.contains('/'))
        .map(str::to_owned)
        .collect()
}

fn alternative(w: &[String]) -> Option<Alternative> {
    let at = w.iter().position(|x| x == "--install")?;
    let [link, name, path, priority] = w.get(at + 1..at + 5)? else {
        return None;
    };
    let mut a = Alternative {
        name: name.clone(),
        link: link.clone(),
        path: path.clone(),
        priority: priority.parse().ok()?,
        slaves: Vec::new(),
    };
    let mut rest = &w[at + 5..];
    while let [flag, l, n, p, tail @ ..] = rest {
        if flag != "--slave" {
            break;
        }
        a.slaves.push((l.clone(), n.clone(), p.clone()));
        rest = tail;
    }
    let ok = |s: &str| s.starts_with('/') && !s.split('/').any(|c| c == "..");
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
    };
    let good = ok(&a.link)
        && ok(&a.path)
        && name_ok(&a.name)
        && a.slaves
            .iter()
            .all(|(l, n, p)| ok(l) && ok(p) && name_ok(n));
    good.then_some(a)
}

fn ucf(w: &[String]) -> Option<UcfCopy> {
    let mut positional = Vec::new();
    let mut it = w.iter();
    while let Some(x) = it.next() {
        match x.as_str() {
            "-p" | "--purge" => return None,
            "-s" | "--src-dir" | "--debconf-template" | "--state-dir" => {
                it.next();
            }
            o if o.starts_with('-') => {}
            _ => positional.push(x.clone()),
        }
    }
    let [src, dest] = positional.as_slice() else {
        return None;
    };
    let ok = |s: &str| s.starts_with('/') && !s.split('/').any(|c| c == ".." || c == ".");
    (ok(src) && ok(dest)).then(|| UcfCopy {
        src: src.clone(),
        dest: dest.clone(),
    })
}

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PwEntry {
    name: String,
    /// The password field of the master file (`*`, `!*`).
    password: String,
    uid: u32,
    gid: u32,
    gecos: String,
    home: String,
    shell: String,
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GrEntry {
    name: String,
    password: String,
    gid: u32,
    members: Vec<String>,
}

/// The system's users and groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    users: Vec<PwEntry>,
    groups: Vec<GrEntry>,
}

/// The system id range `systemd-sysusers` allocates from, top down.
const SYSTEM_ID_MAX: u32 = 999;
const SYSTEM_ID_MIN: u32 = 100;

impl Users {
    /// From `base-passwd`'s `passwd.master` and `group.master`; lines that
    /// are not entries are skipped.
    pub fn from_masters(passwd: &str, group: &str) -> Users {
        let mut u = Users::default();
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let [name, pw, uid, gid, gecos, home, shell] = f.as_slice()
                && let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse())
                && valid_name(name)
            {
                u.users.push(PwEntry {
                    name: (*name).to_owned(),
                    password: (*pw).to_owned(),
                    uid,
                    gid,
                    gecos: (*gecos).to_owned(),
                    home: (*home).to_owned(),
                    shell: (*shell).to_owned(),
                });
            }
        }
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let [name, pw, gid, members] = f.as_slice()
                && let Ok(gid) = gid.parse()
                && valid_name(name)
            {
                u.groups.push(GrEntry {
                    name: (*name).to_owned(),
                    password: (*pw).to_owned(),
                    gid,
                    members: members
                        .split(',')
                        .filter(|m| !m.is_empty())
                        .map(str::to_owned)
                        .collect(),
                });
            }
        }
        u
    }

    pub fn uid(&self, name: &str) -> Option<u32> {
        if let Ok(n) = name.parse() {
            return Some(n);
        }
        self.users.iter().find(|u| u.name == name).map(|u| u.uid)
    }

    pub fn gid(&self, name: &str) -> Option<u32> {
        if let Ok(n) = name.parse() {
            return Some(n);
        }
        self.groups.iter().find(|g| g.name == name).map(|g| g.gid)
    }

    fn uid_free(&self, id: u32) -> bool {
        !self.users.iter().any(|u| u.uid == id)
    }

    fn gid_free(&self, id: u32) -> bool {
        !self.groups.iter().any(|g| g.gid == id)
    }

    /// The highest system id free by `free`.
    fn allocate(&self, free: impl Fn(u32) -> bool) -> Option<u32> {
        (SYSTEM_ID_MIN..=SYSTEM_ID_MAX).rev().find(|&i| free(i))
    }

    fn add_group(&mut self, name: &str, id: Option<u32>) -> Option<u32> {
        if let Some(g) = self.gid(name) {
            return Some(g);
        }
        let gid = match id {
            Some(i) if self.gid_free(i) => i,
            _ => self.allocate(|i| self.gid_free(i))?,
        };
        self.groups.push(GrEntry {
            name: name.to_owned(),
            password: "x".into(),
            gid,
            members: Vec::new(),
        });
        Some(gid)
    }

    /// Applies a `sysusers.d` file: `g NAME ID`, `u NAME ID[:GID] "GECOS"
    /// HOME SHELL` and `m USER GROUP` lines (`r` ranges are not kept); a
    /// name that exists is left as it is, as `systemd-sysusers` does.
    /// Groups are created before users, as it does.
    pub fn apply_sysusers(&mut self, conf: &str) {
        let lines: Vec<Vec<String>> = conf
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(|l| {
                let cmds = commands(&tokenize(l));
                cmds.into_iter()
                    .next()
                    .map(|c| {
                        c.words
                            .iter()
                            .map(|p| literal(p).unwrap_or("").to_owned())
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .filter(|w: &Vec<String>| w.len() >= 2 && valid_name(&w[1]))
            .collect();
        let field = |w: &Vec<String>, i: usize| -> Option<String> {
            w.get(i).filter(|s| *s != "-" && !s.is_empty()).cloned()
        };
        for w in lines.iter().filter(|w| w[0] == "g") {
            let id = field(w, 2).and_then(|s| s.parse().ok());
            self.add_group(&w[1], id);
        }
        for w in lines.iter().filter(|w| w[0] == "u") {
            let name = &w[1];
            if self.users.iter().any(|u| &u.name == name) {
                continue;
            }
            let (uid, gid) = match field(w, 2) {
                Some(id) => match id.split_once(':') {
                    Some((u, g)) => (u.parse().ok(), Some(g.to_owned())),
                    None => (id.parse().ok(), None),
                },
                None => (None, None),
            };
            let gid = match gid {
                Some(g) => match self.gid(&g) {
                    Some(g) => g,
                    None => continue,
                },
                None => match self.gid(name) {
                    Some(g) => g,
                    None => {
                        // One id for both, free as a uid and as a gid.
                        let want = uid.filter(|&u| self.uid_free(u) && self.gid_free(u));
                        let Some(id) = want
                            .or_else(|| self.allocate(|i| self.uid_free(i) && self.gid_free(i)))
                        else {
                            continue;
                        };
                        self.add_group(name, Some(id));
                        id
                    }
                },
            };
            let uid = match uid {
                Some(u) if self.uid_free(u) => u,
                _ if self.uid_free(gid) && gid <= SYSTEM_ID_MAX => gid,
                _ => match self.allocate(|i| self.uid_free(i)) {
                    Some(u) => u,
                    None => continue,
                },
            };
            self.users.push(PwEntry {
                name: name.clone(),
                password: "!*".into(),
                uid,
                gid,
                gecos: field(w, 3).unwrap_or_default(),
                home: field(w, 4).unwrap_or_else(|| "/".into()),
                shell: field(w, 5).unwrap_or_else(|| "/usr/sbin/nologin".into()),
            });
        }
        for w in lines.iter().filter(|w| w[0] == "m") {
            if let (Some(user), Some(group)) = (w.get(1), w.get(2))
                && let Some(g) = self.groups.iter_mut().find(|g| &g.name == group)
                && !g.members.contains(user)
            {
                g.members.push(user.clone());
            }
        }
    }

    /// `/etc/passwd`, the password in `/etc/shadow`.
    pub fn passwd(&self) -> String {
        self.users
            .iter()
            .map(|u| {
                format!(
                    "{}:x:{}:{}:{}:{}:{}\n",
                    u.name, u.uid, u.gid, u.gecos, u.home, u.shell
                )
            })
            .collect()
    }

    pub fn group(&self) -> String {
        self.groups
            .iter()
            .map(|g| format!("{}:x:{}:{}\n", g.name, g.gid, g.members.join(",")))
            .collect()
    }

    /// `/etc/shadow`: each user's master password field (`*`: no
    /// password; `!*`: locked), no change date, as `pwconv` would leave
    /// it but for the date.
    pub fn shadow(&self) -> String {
        self.users
            .iter()
            .map(|u| {
                let pw = if u.password == "x" || u.password.is_empty() {
                    "*"
                } else {
                    &u.password
                };
                format!("{}:{pw}::0:99999:7:::\n", u.name)
            })
            .collect()
    }

    pub fn gshadow(&self) -> String {
        self.groups
            .iter()
            .map(|g| format!("{}:*::{}\n", g.name, g.members.join(",")))
            .collect()
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 32
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        && !n.starts_with('-')
}

/// A directory a `tmpfiles.d` line creates (`d` or `D`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpDir {
    pub path: String,
    pub mode: u32,
    pub user: String,
    pub group: String,
}

/// The directories of a `tmpfiles.d` file that belong in an image: `d` and
/// `D` lines with a literal path (no `%` specifier, no glob) outside the
/// directories a container gets fresh (`/run`, `/tmp`, `/var/tmp`, `/dev`,
/// `/proc`, `/sys`). Other line types are not written.
pub fn tmpfiles_dirs(conf: &str) -> Vec<TmpDir> {
    let mut out = Vec::new();
    for line in conf.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let Some(kind) = w.first() else { continue };
        if !matches!(kind.trim_end_matches(['!', '-']), "d" | "D") {
            continue;
        }
        let Some(path) = w.get(1) else { continue };
        let runtime = ["/run", "/tmp", "/var/tmp", "/dev", "/proc", "/sys"]
            .iter()
            .any(|r| *path == *r || path.starts_with(&format!("{r}/")));
        if !path.starts_with('/')
            || runtime
            || path.contains(['%', '*', '?', '['])
            || path.split('/').any(|c| c == ".." || c == ".")
        {
            continue;
        }
        let field = |i: usize| {
            w.get(i)
                .map(|s| s.trim_start_matches(':'))
                .filter(|s| *s != "-")
        };
        let mode = match field(2) {
            None => 0o755,
            Some(m) => match u32::from_str_radix(m, 8) {
                Ok(m) if m <= 0o7777 => m,
                _ => continue,
            },
        };
        out.push(TmpDir {
            path: (*path).to_owned(),
            mode,
            user: field(3).unwrap_or("root").to_owned(),
            group: field(4).unwrap_or("root").to_owned(),
        });
    }
    out
}

/// The owners and modes a `tmpfiles.d` file sets on existing paths: `z`
/// (`Z`: recursively) lines with a literal path outside the runtime
/// directories, as [`Perm`]s (`-` fields leave that part as it is). ACL
/// and attribute lines (`a`, `h`) are not written.
pub fn tmpfiles_adjust(conf: &str) -> Vec<Perm> {
    let mut out = Vec::new();
    for line in conf.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let Some(kind) = w.first() else { continue };
        let recursive = match kind.trim_end_matches(['!', '-']) {
            "z" => false,
            "Z" => true,
            _ => continue,
        };
        let Some(path) = w.get(1).and_then(|p| plain_path(p)) else {
            continue;
        };
        let runtime = ["/run", "/tmp", "/var/tmp", "/dev", "/proc", "/sys"]
            .iter()
            .any(|r| path == *r || path.starts_with(&format!("{r}/")));
        if runtime || path.contains('%') {
            continue;
        }
        let field = |i: usize| {
            w.get(i)
                .map(|s| s.trim_start_matches(':'))
                .filter(|s| *s != "-")
        };
        let mode = match field(2) {
            None => None,
            Some(m) => match octal(m) {
                Some(m) => Some(m),
                None => continue,
            },
        };
        let name = |i: usize| field(i).filter(|n| valid_name(n)).map(str::to_owned);
        out.push(Perm {
            path,
            user: name(3),
            group: name(4),
            mode,
            recursive,
            statoverride: false,
            symbolic: None,
        });
    }
    out
}

/// dpkg's record of an alternative (`/var/lib/dpkg/alternatives/NAME`) in
/// auto mode, its choices sorted by path. All choices must have the same
/// name and link.
pub fn alternatives_record(choices: &[Alternative]) -> Option<String> {
    let first = choices.first()?;
    // The slave names, in the order of the first choice that has each.
    let mut slaves: Vec<(String, String)> = Vec::new();
    for c in choices {
        for (l, n, _) in &c.slaves {
            if !slaves.iter().any(|(sn, _)| sn == n) {
                slaves.push((n.clone(), l.clone()));
            }
        }
    }
    let mut s = format!("auto\n{}\n", first.link);
    for (n, l) in &slaves {
        s.push_str(&format!("{n}\n{l}\n"));
    }
    s.push('\n');
    let mut sorted: Vec<&Alternative> = choices.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for c in sorted {
        s.push_str(&format!("{}\n{}\n", c.path, c.priority));
        for (n, _) in &slaves {
            let p = c
                .slaves
                .iter()
                .find(|(_, sn, _)| sn == n)
                .map(|(_, _, p)| p.as_str())
                .unwrap_or("");
            s.push_str(p);
            s.push('\n');
        }
    }
    s.push('\n');
    Some(s)
}

/// The choice auto mode picks: the highest priority, then the first path.
pub fn best(choices: &[Alternative]) -> Option<&Alternative> {
    choices
        .iter()
        .max_by(|a, b| a.priority.cmp(&b.priority).then(b.path.cmp(&a.path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOMCAT: &str = r#"#!/bin/sh
set -e
TOMCAT_USER="tomcat"
CONFFILES="tomcat-users.xml web.xml server.xml"
case "$1" in
    configure)
	# Create the tomcat user as defined in /usr/lib/sysusers.d/tomcat10.conf
	systemd-sysusers

	for conffile in $CONFFILES;
	do
		ucf --debconf-ok --three-way /usr/share/tomcat10/etc/$conffile /etc/tomcat10/$conffile
		if [ -f "/etc/tomcat10/$conffile" ]; then
			chown root:$TOMCAT_GROUP /etc/tomcat10/$conffile
		fi
	done
	ucf --debconf-ok --three-way /usr/share/tomcat10/default.template /etc/default/tomcat10
	ucf --purge /etc/old
	ucf /usr/share/x/$(uname) /etc/x
    ;;
esac
if [ "$1" = "configure" ] ; then
	if [ -x "$(command -v systemd-tmpfiles)" ]; then
		systemd-tmpfiles ${DPKG_ROOT:+--root="$DPKG_ROOT"} --create tomcat10.conf >/dev/null || true
	fi
fi
"#;

    #[test]
    fn ucf_in_a_loop_and_the_systemd_helpers_are_recognized() {
        let e = postinst(TOMCAT);
        let ucf: Vec<(&str, &str)> = e
            .ucf
            .iter()
            .map(|u| (u.src.as_str(), u.dest.as_str()))
            .collect();
        assert_eq!(
            ucf,
            [
                (
                    "/usr/share/tomcat10/etc/tomcat-users.xml",
                    "/etc/tomcat10/tomcat-users.xml"
                ),
                ("/usr/share/tomcat10/etc/web.xml", "/etc/tomcat10/web.xml"),
                (
                    "/usr/share/tomcat10/etc/server.xml",
                    "/etc/tomcat10/server.xml"
                ),
                (
                    "/usr/share/tomcat10/default.template",
                    "/etc/default/tomcat10"
                ),
            ]
        );
        assert_eq!(e.sysusers, Some(vec![]));
        assert_eq!(e.tmpfiles, Some(vec!["tomcat10.conf".to_owned()]));
    }

    #[test]
    fn alternatives_with_slaves_across_continued_lines() {
        let e = postinst(
            "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n        update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n            --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz \\\n            --slave /usr/bin/nawk nawk /usr/bin/mawk\nfi\nupdate-alternatives --remove rename /usr/bin/prename\nupdate-alternatives --install /usr/bin/x x /usr/bin/../x 5\n",
        );
        assert_eq!(
            e.alternatives,
            [Alternative {
                name: "awk".into(),
                link: "/usr/bin/awk".into(),
                path: "/usr/bin/mawk".into(),
                priority: 5,
                slaves: vec![
                    (
                        "/usr/share/man/man1/awk.1.gz".into(),
                        "awk.1.gz".into(),
                        "/usr/share/man/man1/mawk.1.gz".into()
                    ),
                    (
                        "/usr/bin/nawk".into(),
                        "nawk".into(),
                        "/usr/bin/mawk".into()
                    ),
                ],
            }]
        );
        let rec = alternatives_record(&e.alternatives).unwrap();
        assert_eq!(
            rec,
            "auto\n/usr/bin/awk\nawk.1.gz\n/usr/share/man/man1/awk.1.gz\nnawk\n/usr/bin/nawk\n\n/usr/bin/mawk\n5\n/usr/share/man/man1/mawk.1.gz\n/usr/bin/mawk\n\n"
        );
    }

    #[test]
    fn sysusers_allocate_as_systemd_does_and_keep_existing_names() {
        let mut u = Users::from_masters(
            "root:*:0:0:root:/root:/bin/bash\n_apt:*:42:65534::/nonexistent:/usr/sbin/nologin\n",
            "root:*:0:\nadm:*:4:\nnogroup:*:65534:\n",
        );
        u.apply_sysusers(
            "g systemd-journal - -\nu systemd-network - \"systemd Network Management\"\n",
        );
        u.apply_sysusers(
            "#Type Name ID GECOS Home Shell\nu     tomcat   -   \"Apache Tomcat\"   /var/lib/tomcat  /usr/sbin/nologin\nu root 5 \"not again\"\nm tomcat adm\n",
        );
        assert_eq!(
            u.passwd(),
            "root:x:0:0:root:/root:/bin/bash\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\nsystemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin\ntomcat:x:997:997:Apache Tomcat:/var/lib/tomcat:/usr/sbin/nologin\n"
        );
        assert_eq!(
            u.group(),
            "root:x:0:\nadm:x:4:tomcat\nnogroup:x:65534:\nsystemd-journal:x:999:\nsystemd-network:x:998:\ntomcat:x:997:\n"
        );
        assert_eq!(u.shadow().lines().last(), Some("tomcat:!*::0:99999:7:::"));
        assert_eq!(u.shadow().lines().next(), Some("root:*::0:99999:7:::"));
        assert_eq!(u.uid("tomcat"), Some(997));
        assert_eq!(u.gid("adm"), Some(4));
    }

    #[test]
    fn tmpfiles_keep_image_directories_only() {
        let d = tmpfiles_dirs(
            "# comment\nd /var/log/tomcat10 2770 tomcat adm  -\nd /run/x 0755 root root -\nD /tmp 1777 root root -\nd- /root :0700 root :root -\nd /var/lib/%m 0755\nf /var/log/wtmp 0664 root utmp -\nd /var/lib/private - - -\n",
        );
        let got: Vec<(&str, u32, &str, &str)> = d
            .iter()
            .map(|t| (t.path.as_str(), t.mode, t.user.as_str(), t.group.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("/var/log/tomcat10", 0o2770, "tomcat", "adm"),
                ("/root", 0o700, "root", "root"),
                ("/var/lib/private", 0o755, "root", "root"),
            ]
        );
    }

    #[test]
    fn chown_chmod_statoverride_and_mkdir_are_recognized() {
        let script = r#"#!/bin/sh
TOMCAT_GROUP="tomcat"
logdir="/var/log/nginx"
for conffile in a.xml b.xml; do
    if [ -f "/etc/tomcat10/$conffile" ]; then
        chown root:$TOMCAT_GROUP /etc/tomcat10/$conffile
        chmod 640 /etc/tomcat10/$conffile
    fi
done
chown -Rh tomcat:adm /var/log/tomcat10/
if ! dpkg-statoverride --list "$logdir" >/dev/null; then
  chown root.adm $logdir
  chmod 0755 $logdir 2> /dev/null || true
fi
[ -d /etc/.java ] || mkdir -m 755 /etc/.java
mkdir -p "$DPKG_ROOT/var/log/journal"
dpkg-statoverride --update --add root crontab 2755 /usr/bin/crontab
chmod g+w /etc/x
chown "$2" "$DPKG_ROOT$1"
chown --reference=/a /b
chmod 644 /etc/*.conf
chown root:tomcat ../etc
"#;
        let e = postinst(script);
        let got: Vec<String> = e
            .perms
            .iter()
            .map(|p| {
                format!(
                    "{} {:?} {:?} {:?} {}{}",
                    p.path,
                    p.user,
                    p.group,
                    p.mode.map(|m| format!("{m:o}")),
                    p.recursive,
                    if p.statoverride { " override" } else { "" }
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                r#"/etc/tomcat10/a.xml Some("root") Some("tomcat") None false"#,
                r#"/etc/tomcat10/a.xml None None Some("640") false"#,
                r#"/etc/tomcat10/b.xml Some("root") Some("tomcat") None false"#,
                r#"/etc/tomcat10/b.xml None None Some("640") false"#,
                r#"/var/log/tomcat10 Some("tomcat") Some("adm") None true"#,
                r#"/var/log/nginx Some("root") Some("adm") None false"#,
                r#"/var/log/nginx None None Some("755") false"#,
                r#"/usr/bin/crontab Some("root") Some("crontab") Some("2755") false override"#,
                // Symbolic: the mode comes from the path's own.
                r#"/etc/x None None None false"#,
            ]
        );
        assert_eq!(
            e.mkdirs,
            [
                ("/etc/.java".to_owned(), Some(0o755)),
                ("/var/log/journal".to_owned(), None)
            ]
        );
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn tmpfiles_z_lines_adjust_existing_paths() {
        let conf = "z /var/log/journal 2755 root systemd-journal - -\nZ /var/lib/x - app -\nz /run/x 0700\na+ /var/log/journal - - - - group::r-x\nz /var/%m 0700\nd /var/y 0755\n";
        let got: Vec<(String, Option<u32>, Option<String>, Option<String>, bool)> =
            tmpfiles_adjust(conf)
                .into_iter()
                .map(|p| (p.path, p.mode, p.user, p.group, p.recursive))
                .collect();
        assert_eq!(
            got,
            [
                (
                    "/var/log/journal".into(),
                    Some(0o2755),
                    Some("root".into()),
                    Some("systemd-journal".into()),
                    false
                ),
                ("/var/lib/x".into(), None, Some("app".into()), None, true),
            ]
        );
    }

    #[test]
    fn files_made_in_a_fresh_install_only() {
        let script = r#"#!/bin/sh
set -e
fresh() {
    >/var/lib/x/fresh
    touch /var/lib/x/in-function
}
case "$1" in
    configure)
        if [ ! -f /etc/.java/.system.lock ]; then
            touch /etc/.java/.system.lock
        fi
        if [ -z "$2" ] || dpkg --compare-versions "$2" lt 0.99
        then
            if ! [ -f /etc/security/opasswd ]; then
                umask 066
                touch /etc/security/opasswd
                umask 022
            fi
        fi
        if dpkg --compare-versions "$2" lt-nl "20180516"; then
            touch /var/lib/x/upgrade-only
            chmod 0600 /etc/default/upgrade-only
        fi
        if [ "$2" = "" ] && [ ! -f /var/log/x/faillog ]; then
            touch /var/log/x/faillog
        fi
        if [ -n "$2" ]; then
            touch /var/lib/x/also-upgrade-only
        else
            : > /var/log/x/empty.log
        fi
        echo "hello world" > /etc/x/greeting
        echo -n plain >>/etc/x/appended
        echo "$UNKNOWN" > /etc/x/unknown
        echo done > /dev/null
        cat /etc/passwd.org > /etc/passwd
        [ -d /var/lib/x/ROOT ] || cp -r /usr/share/x/default_root /var/lib/x/ROOT
        cp -pZ /usr/share/x/shells /etc/shells || cp -p /usr/share/x/shells /etc/shells
        which java >/dev/null && touch /var/lib/x/unknown-chain
    ;;
    triggered)
        touch /var/lib/x/triggered
    ;;
esac
while read line; do
    touch /var/lib/x/in-loop
done < /etc/x/in > /etc/x/out
if [ "$1" = configure ]; then
    touch /var/lib/x/consumed
fi
consume() {
    rm -f /var/lib/x/consumed
}
if [ ! -d /usr/local/share/fonts ]; then
  if mkdir /usr/local/share/fonts 2>/dev/null ; then
    chmod 2775 /usr/local/share/fonts
  fi
fi
"#;
        let e = postinst(script);
        let made: Vec<&Made> = e.made.iter().map(|(_, m)| m).collect();
        let touch = |p: &str, mode: u32| Made::Touch {
            path: p.into(),
            mode,
        };
        let write = |p: &str, c: &str, append: bool| Made::Write {
            path: p.into(),
            content: c.into(),
            mode: 0o644,
            append,
        };
        assert_eq!(
            made,
            [
                &touch("/etc/.java/.system.lock", 0o644),
                &touch("/etc/security/opasswd", 0o600),
                &touch("/var/log/x/faillog", 0o644),
                &write("/var/log/x/empty.log", "", false),
                &write("/etc/x/greeting", "hello world\n", false),
                &write("/etc/x/appended", "plain", true),
                &Made::Copy {
                    src: "/usr/share/x/default_root".into(),
                    dest: "/var/lib/x/ROOT".into(),
                    recursive: true,
                    preserve: false,
                    umask: 0o022,
                },
                &Made::Copy {
                    src: "/usr/share/x/shells".into(),
                    dest: "/etc/shells".into(),
                    recursive: false,
                    preserve: true,
                    umask: 0o022,
                },
            ]
        );
        // A chmod in a branch a fresh install does not take is not done;
        // a mkdir that is a condition is.
        assert_eq!(e.mkdirs, [("/usr/local/share/fonts".to_owned(), None)]);
        let perms: Vec<&str> = e.perms.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(perms, ["/usr/local/share/fonts"]);
    }

    #[test]
    fn symbolic_chmod_modes() {
        let e = postinst("chmod u+x /a\nchmod -R g-w,o= /b\nchmod a+rX /c\nchmod g=u /d\n");
        let got: Vec<(&str, bool)> = e
            .perms
            .iter()
            .map(|p| (p.path.as_str(), p.recursive))
            .collect();
        assert_eq!(got, [("/a", false), ("/b", true), ("/c", false)]);
        let apply =
            |i: usize, mode: u32, dir: bool| e.perms[i].symbolic.as_ref().unwrap().apply(mode, dir);
        assert_eq!(apply(0, 0o644, false), 0o744);
        assert_eq!(apply(1, 0o775, true), 0o750);
        assert_eq!(apply(1, 0o664, false), 0o640);
        assert_eq!(apply(2, 0o600, false), 0o644);
        assert_eq!(apply(2, 0o700, false), 0o755);
        assert_eq!(apply(2, 0o700, true), 0o755);
        let s = Symbolic::parse("+x").unwrap();
        assert_eq!(s.apply(0o644, false), 0o755);
        assert!(Symbolic::parse("u+q").is_none() && Symbolic::parse("750").is_none());
    }
}
