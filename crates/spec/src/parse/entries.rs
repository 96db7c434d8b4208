//! Reading one KDL node: its span, its arguments and properties checked
//! against what the node takes, and the common value kinds (strings,
//! booleans, modes, owners, names) with their problems reported.

use super::*;

impl Parser<'_> {
    /// The span of an entry's value: for a property, without `key=`.
    pub(super) fn value_span(&self, e: &KdlEntry) -> SourceSpan {
        let span = e.span();
        let Some(name) = e.name() else {
            return span;
        };
        let from = end(name.span());
        let to = end(span);
        let Some(eq) = self.src.get(from..to).and_then(|t| t.find('=')) else {
            return span;
        };
        let rest = self.src.get(from + eq + 1..to).unwrap_or_default();
        let skipped = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_whitespace() || c == '\\')
                .len();
        between(from + eq + 1 + skipped, to)
    }

    /// A value as the user wrote it (`0o644`, `#true`, `"x"`).
    pub(super) fn repr<'a>(&'a self, e: &'a KdlEntry) -> &'a str {
        match e.format() {
            Some(f) if !f.value_repr.is_empty() => &f.value_repr,
            _ => self.text(self.value_span(e)),
        }
    }

    /// The children block of a node, braces included.
    pub(super) fn children_span(&self, node: &KdlNode) -> SourceSpan {
        let from = end(head_span(node));
        let to = end(node.span());
        let text = self.src.get(from..to).unwrap_or_default();
        match (text.find('{'), text.rfind('}')) {
            (Some(open), Some(close)) if open <= close => between(from + open, from + close + 1),
            _ => node.span(),
        }
    }

    /// The node with its children block, without trailing space or comments.
    pub(super) fn node_span(&self, node: &KdlNode) -> SourceSpan {
        let head = head_span(node);
        if node.children().is_some() {
            between(head.offset(), end(self.children_span(node)).max(end(head)))
        } else {
            head
        }
    }

    // ---- checks every node shares ------------------------------------------

    /// Type annotations (`(u8)1`) mean nothing in a spec; a block where the
    /// node takes none is a mistake.
    pub(super) fn common(&mut self, node: &KdlNode, children_allowed: bool) {
        let types = node.ty().map(|t| t.span()).into_iter().chain(
            node.entries()
                .iter()
                .filter_map(|e| e.ty().map(|t| t.span())),
        );
        let types: Vec<SourceSpan> = types.collect();
        for span in types {
            // The identifier's span leaves out the parentheses around it.
            let before = self.src.get(..span.offset()).unwrap_or_default().trim_end();
            let after = self.src.get(end(span)..).unwrap_or_default();
            let span = match (before.strip_suffix('('), after.find(')')) {
                (Some(open), Some(c)) if after.get(..c).is_some_and(|t| t.trim().is_empty()) => {
                    between(open.len(), end(span) + c + 1)
                }
                _ => span,
            };
            let text = self.text(span).to_owned();
            self.push(
                SpecDiagnostic::new(
                    "type annotations are not used in strata specs",
                    span,
                    "type annotation",
                )
                .with_help(format!("remove `{text}`")),
            );
        }
        if !children_allowed && node.children().is_some() {
            let kind = node.name().value();
            self.push(
                SpecDiagnostic::new(
                    format!("`{kind}` takes no block"),
                    self.children_span(node),
                    "unexpected block",
                )
                .with_help(usage_help(kind)),
            );
        }
    }

    /// Split a node's entries into arguments and properties; report unknown
    /// and repeated properties.
    pub(super) fn entries<'n>(
        &mut self,
        node: &'n KdlNode,
        allowed: &[&'static str],
    ) -> Entries<'n> {
        let kind = node.name().value();
        let mut out = Entries {
            args: Vec::new(),
            props: BTreeMap::new(),
            suggested: Vec::new(),
        };
        for e in node.entries() {
            let Some(key) = e.name() else {
                out.args.push(e);
                continue;
            };
            let k = key.value();
            if !allowed.contains(&k) {
                let suggestion = did_you_mean(k, allowed);
                out.suggested.extend(suggestion);
                let help = match suggestion {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if kind == "symlink" && k == "mode" => {
                        "a symlink has no mode of its own".to_owned()
                    }
                    None if allowed.is_empty() => {
                        format!("`{kind}` takes no properties; {}", usage_help(kind))
                    }
                    None => format!(
                        "`{kind}` takes {}",
                        allowed
                            .iter()
                            .map(|a| format!("`{a}=`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.push(
                    SpecDiagnostic::new(
                        format!("unknown property `{k}` on `{kind}`"),
                        key.span(),
                        "unknown property",
                    )
                    .with_help(help),
                );
            } else if let Some(first) = out.props.get(k) {
                let line = self.line(first.span());
                self.push(
                    SpecDiagnostic::new(
                        format!("duplicate property `{k}`"),
                        key.span(),
                        format!("second `{k}`"),
                    )
                    .with_help(format!(
                        "`{k}` is already set on line {line}; remove one of them"
                    )),
                );
            } else {
                out.props.insert(k, e);
            }
        }
        out
    }

    /// Check the number of arguments. `names` are the required positional
    /// arguments (`variadic`: the last may repeat). Missing arguments are
    /// reported at the node name, extra ones together.
    pub(super) fn arity(
        &mut self,
        node: &KdlNode,
        args: &[&KdlEntry],
        names: &[&str],
        variadic: bool,
        extra_help: Option<String>,
    ) {
        let kind = node.name().value();
        if args.len() < names.len() {
            let missing = names.get(args.len()..).unwrap_or_default().join(" and ");
            let message = if variadic && names.len() == 1 {
                format!("`{kind}` needs at least one {missing}")
            } else {
                format!("`{kind}` needs its {missing}")
            };
            self.push(
                SpecDiagnostic::new(message, node.name().span(), format!("missing {missing}"))
                    .with_help(usage_help(kind)),
            );
        } else if !variadic && args.len() > names.len() {
            let extra = args.get(names.len()..).unwrap_or_default();
            let label = if extra.len() == 1 {
                "unexpected argument"
            } else {
                "unexpected arguments"
            };
            self.push(
                SpecDiagnostic::new(
                    format!("too many arguments to `{kind}`"),
                    entries_span(extra),
                    label,
                )
                .with_help(extra_help.unwrap_or_else(|| usage_help(kind))),
            );
        }
    }

    /// The common shape of a node with one argument and no block.
    pub(super) fn one_arg<'n>(
        &mut self,
        node: &'n KdlNode,
        name: &str,
        props: &[&'static str],
    ) -> (Option<&'n KdlEntry>, Entries<'n>) {
        self.common(node, false);
        let e = self.entries(node, props);
        self.arity(node, &e.args, &[name], false, None);
        (e.args.first().copied(), e)
    }

    /// Report a value of the wrong kind. `what` names it in the message.
    pub(super) fn wrong_type(&mut self, e: &KdlEntry, what: &str, expected: &str) {
        let found = kind_of(e.value());
        let mut d = SpecDiagnostic::new(
            format!("{what} must be {expected}, not {found}"),
            self.value_span(e),
            found,
        );
        if expected == "a string" && !matches!(e.value(), KdlValue::Null) {
            let repr = self.repr(e).trim_start_matches('#');
            let key = e
                .name()
                .map(|k| format!("{}=", k.value()))
                .unwrap_or_default();
            d = d.with_help(format!("quote it: `{key}\"{repr}\"`"));
        }
        self.push(d);
    }

    /// A string value; anything else is reported.
    pub(super) fn string(&mut self, e: &KdlEntry, what: &str) -> Option<Spanned<String>> {
        match e.value() {
            KdlValue::String(s) => Some(Spanned::new(s.clone(), self.value_span(e))),
            _ => {
                self.wrong_type(e, what, "a string");
                None
            }
        }
    }

    /// A boolean value (`#true`, `#false`); anything else is reported.
    pub(super) fn boolean(&mut self, e: &KdlEntry, what: &str) -> Option<Spanned<bool>> {
        match e.value() {
            KdlValue::Bool(b) => Some(Spanned::new(*b, self.value_span(e))),
            _ => {
                self.wrong_type(e, what, "a boolean (#true or #false)");
                None
            }
        }
    }

    /// A string value that passes `check`.
    /// The name of a `KIND NAME { ... }` node (image, layer, index): the
    /// node's common checks, exactly one argument, and `check` on it.
    pub(super) fn block_name(
        &mut self,
        node: &KdlNode,
        what: &str,
        check: impl FnOnce(&str) -> Result<(), Problem>,
    ) -> Option<Spanned<String>> {
        self.common(node, true);
        let e = self.entries(node, &[]);
        self.arity(node, &e.args, &["name"], false, None);
        e.args.first().and_then(|a| self.checked(a, what, check))
    }

    pub(super) fn checked(
        &mut self,
        e: &KdlEntry,
        what: &str,
        check: impl FnOnce(&str) -> Result<(), Problem>,
    ) -> Option<Spanned<String>> {
        let s = self.string(e, what)?;
        match check(&s.value) {
            Ok(()) => Some(s),
            Err(p) => {
                self.problem(s.span, p);
                None
            }
        }
    }

    /// A string or a non-negative integer, as a string (`user 1000`, `stop-signal 9`).
    pub(super) fn string_or_int(
        &mut self,
        e: &KdlEntry,
        what: &str,
        int: impl FnOnce(i128) -> Result<String, Problem>,
        check: impl FnOnce(&str) -> Result<(), Problem>,
    ) -> Option<Spanned<String>> {
        let span = self.value_span(e);
        let result = match e.value() {
            KdlValue::String(s) => check(s).map(|()| s.clone()),
            KdlValue::Integer(n) => int(*n),
            _ => {
                self.wrong_type(e, what, "a string or an integer");
                return None;
            }
        };
        self.settle(span, result)
    }

    /// `mode=0o644`.
    pub(super) fn mode(&mut self, e: &KdlEntry) -> Option<Spanned<u32>> {
        let span = self.value_span(e);
        let result = match e.value() {
            KdlValue::Integer(n) => values::mode(*n, self.repr(e)),
            KdlValue::String(s) => Err(values::mode_from_string(s)),
            v => Err(Problem::new("mode must be a number", kind_of(v))
                .help("write modes as octal numbers: mode=0o644")),
        };
        self.settle(span, result)
    }

    /// `owner="1000:1000"` or `owner=1000`.
    pub(super) fn owner(&mut self, e: &KdlEntry) -> Option<Spanned<Owner>> {
        let span = self.value_span(e);
        let result = match e.value() {
            KdlValue::Integer(n) => values::owner_int(*n),
            KdlValue::String(s) => values::owner(s),
            _ => {
                self.wrong_type(e, "`owner`", "a string or an integer");
                return None;
            }
        };
        self.settle(span, result)
    }

    /// A property the node cannot do without; reported at the node name.
    pub(super) fn required<'n>(
        &mut self,
        node: &KdlNode,
        e: &Entries<'n>,
        key: &str,
        what: &str,
    ) -> Option<&'n KdlEntry> {
        let found = e.prop(key);
        if found.is_none() && !e.suggested.contains(&key) {
            let kind = node.name().value();
            self.push(
                SpecDiagnostic::new(
                    format!("`{kind}` needs {what}"),
                    node.name().span(),
                    format!("missing `{key}=`"),
                )
                .with_help(usage_help(kind)),
            );
        }
        found
    }

    /// Whether `node` is the first of its single-valued kind in its scope;
    /// a second one is reported, and its value is checked but not kept.
    pub(super) fn first(
        &mut self,
        seen: &mut BTreeMap<&'static str, SourceSpan>,
        kind: &'static str,
        node: &KdlNode,
        scope: &str,
    ) -> bool {
        let span = head_span(node);
        if let Some(&first) = seen.get(kind) {
            let line = self.line(first);
            self.push(
                SpecDiagnostic::new(
                    format!("duplicate `{kind}`"),
                    span,
                    format!("second `{kind}`"),
                )
                .with_help(format!(
                    "`{kind}` is already set on line {line}; {scope} has one `{kind}`"
                )),
            );
            false
        } else {
            seen.insert(kind, span);
            true
        }
    }

    /// A node that does not belong where it is.
    pub(super) fn unknown(&mut self, node: &KdlNode, valid: &[&str], place: &str) {
        let kind = node.name().value();
        let help = alias(kind)
            .or_else(|| did_you_mean(kind, valid).map(|s| format!("did you mean `{s}`?")))
            .unwrap_or_else(|| format!("{place} takes: {}", valid.join(", ")));
        self.push(
            SpecDiagnostic::new(
                format!("unknown node `{kind}`"),
                node.name().span(),
                format!("not valid in {place}"),
            )
            .with_help(help),
        );
    }

    /// A known node in the wrong context.
    pub(super) fn misplaced(&mut self, node: &KdlNode, message: String, label: &str, help: String) {
        self.push(SpecDiagnostic::new(message, node.name().span(), label).with_help(help));
    }

    // ---- the top level -----------------------------------------------------
}
