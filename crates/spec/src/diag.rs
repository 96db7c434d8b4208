//! Diagnostics that point into a spec: the parser's own, and those found by
//! later stages (planner, builder) that only know a span.
//!
//! A [`Diagnostics`] is a `miette::Diagnostic`: a CLI renders it with colour by
//! handing it to miette, and every item comes out as its own report with the
//! spec's source. [`Diagnostics::render_plain`] gives the same reports without
//! colour at a fixed width, for snapshots and logs; `Display` gives one
//! `file:line:col: message` line per item, for `--json` and one-line logs.

use miette::{
    Diagnostic, LabeledSpan, MietteError, MietteSpanContents, NamedSource, SourceCode, SourceSpan,
    SpanContents,
};

/// One problem in a spec, located by span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecDiagnostic {
    /// The one-line message, lowercase, no final period.
    pub message: String,
    pub span: SourceSpan,
    /// The label drawn under the span (short; "here" when there is nothing better).
    pub label: String,
    /// A hint ("did you mean `layer`?").
    pub help: Option<String>,
}

impl SpecDiagnostic {
    pub fn new(message: impl Into<String>, span: SourceSpan, label: impl Into<String>) -> Self {
        SpecDiagnostic {
            message: message.into(),
            span,
            label: label.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Every problem found in one spec, with its source, ready for miette to render.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    pub src: NamedSource<String>,
    pub items: Vec<SpecDiagnostic>,
    /// The byte offset of each line's start: positions and snippets are
    /// found by binary search. Scanning the source from its start for each
    /// item (as `line_col` and miette's own `str` source do) made 10,000
    /// errors take minutes.
    lines: Vec<usize>,
}

impl Diagnostics {
    /// Collect `items` found in `source`. Spans are clamped into the source
    /// and onto character boundaries, so that a wrong span from any stage can
    /// never make rendering fail or panic.
    pub fn new(name: &str, source: &str, items: Vec<SpecDiagnostic>) -> Self {
        let items = items
            .into_iter()
            .map(|mut d| {
                d.span = clamp_span(source, d.span);
                d
            })
            .collect();
        let lines = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Diagnostics {
            src: NamedSource::new(name, source.to_owned()),
            items,
            lines,
        }
    }

    /// One problem; the common case for stages after parsing (a missing input
    /// file, a `from` cycle).
    pub fn single(name: &str, source: &str, item: SpecDiagnostic) -> Self {
        Diagnostics::new(name, source, vec![item])
    }

    /// The name the spec was read under.
    pub fn name(&self) -> &str {
        self.src.name()
    }

    /// The spec text.
    pub fn source(&self) -> &str {
        self.src.inner()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Add a problem (its span is clamped as in [`Diagnostics::new`]).
    pub fn push(&mut self, mut item: SpecDiagnostic) {
        item.span = clamp_span(self.src.inner(), item.span);
        self.items.push(item);
    }

    /// Line and column (both 1-based, the column in characters) of a byte offset in the source.
    pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(source, offset);
        let before = source.get(..offset).unwrap_or_default();
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before.get(line_start..).unwrap_or_default().chars().count() + 1;
        (line, col)
    }

    /// Render every item with miette's graphical handler, without colour, at
    /// a width of 100 columns, for snapshots and non-terminal output. Reports
    /// are separated by a blank line.
    pub fn render_plain(&self) -> String {
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100);
        let mut out = String::new();
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let item = Item { src: self, d };
            let mut one = String::new();
            if handler.render_report(&mut one, &item).is_err() {
                // A report miette cannot draw still deserves its line.
                one = format!("{}\n", self.line(d));
            }
            out.push_str(&one);
        }
        out
    }

    /// `file:line:col: message` for one item.
    fn line(&self, d: &SpecDiagnostic) -> String {
        let (line, col) = self.position(d.span.offset());
        format!("{}:{line}:{col}: {}", self.src.name(), d.message)
    }

    /// The 0-based line holding byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.lines
            .partition_point(|&start| start <= offset)
            .saturating_sub(1)
    }

    /// [`Diagnostics::line_col`] by the line table: the same answer, in
    /// time that does not grow with the offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let source = self.src.inner();
        let offset = floor_char_boundary(source, offset);
        let line = self.line_of(offset);
        let start = self.lines.get(line).copied().unwrap_or(0);
        let col = source
            .get(start..offset)
            .unwrap_or_default()
            .chars()
            .count()
            + 1;
        (line + 1, col)
    }
}

/// The largest char boundary of `s` not above `offset`.
fn floor_char_boundary(s: &str, offset: usize) -> usize {
    let mut offset = offset.min(s.len());
    while !s.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The smallest char boundary of `s` not below `offset` (or the end).
fn ceil_char_boundary(s: &str, offset: usize) -> usize {
    let mut offset = offset.min(s.len());
    while !s.is_char_boundary(offset) {
        offset += 1;
    }
    offset
}

fn clamp_span(source: &str, span: SourceSpan) -> SourceSpan {
    let start = floor_char_boundary(source, span.offset());
    let end = ceil_char_boundary(source, span.offset().saturating_add(span.len())).max(start);
    SourceSpan::new(start.into(), end - start)
}

impl std::fmt::Display for Diagnostics {
    /// One line per problem: `file:line:col: message`, for logs and `--json`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            f.write_str(&self.line(d))?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Rendered by miette, a `Diagnostics` with one item is that item (the header
/// is its `file:line:col: message` line); with several, the header lists them
/// all, one line each, and every item follows as a related report with its own
/// snippet and help.
impl Diagnostic for Diagnostics {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        match self.items.as_slice() {
            [d] => Some(Box::new(std::iter::once(label_of(d)))),
            _ => None,
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        match self.items.as_slice() {
            [d] => d
                .help
                .as_ref()
                .map(|h| Box::new(h) as Box<dyn std::fmt::Display>),
            _ => None,
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.items.len() < 2 {
            return None;
        }
        // A `SpecDiagnostic` has no source of its own; miette draws related
        // reports with the parent's source, which is ours.
        Some(Box::new(self.items.iter().map(|d| d as &dyn Diagnostic)))
    }
}

fn label_of(d: &SpecDiagnostic) -> LabeledSpan {
    LabeledSpan::new_primary_with_span(Some(d.label.clone()), d.span)
}

impl std::fmt::Display for SpecDiagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecDiagnostic {}

/// A lone `SpecDiagnostic` has no source: miette renders it with the source
/// of the [`Diagnostics`] it is related to.
impl Diagnostic for SpecDiagnostic {
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(label_of(self))))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
}

/// The spec's text as miette reads it, a snippet at a time: the lines
/// around a span are cut out by the line table and handed to `str`'s own
/// reader, whose answer is moved back to the whole text's offsets and lines.
impl SourceCode for Diagnostics {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let source = self.src.inner();
        let start = span.offset().min(source.len());
        let end = start.saturating_add(span.len()).min(source.len());
        let first = self.line_of(start).saturating_sub(context_lines_before);
        let last = self.line_of(end).saturating_add(context_lines_after + 1);
        let lo = self.lines.get(first).copied().unwrap_or(0);
        let hi = self.lines.get(last + 1).copied().unwrap_or(source.len());
        let window = source.get(lo..hi).unwrap_or_default();
        let local = SourceSpan::new((start - lo).into(), end - start);
        let inner = window.read_span(&local, context_lines_before, context_lines_after)?;
        let found = inner.span();
        Ok(Box::new(MietteSpanContents::new_named(
            self.src.name().to_owned(),
            inner.data(),
            SourceSpan::new((found.offset() + lo).into(), found.len()),
            inner.line() + first,
            inner.column(),
            inner.line_count(),
        )))
    }
}

/// One item with its source, rendered on its own by [`Diagnostics::render_plain`].
#[derive(Debug)]
struct Item<'a> {
    src: &'a Diagnostics,
    d: &'a SpecDiagnostic,
}

impl std::fmt::Display for Item<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.d.message)
    }
}

impl std::error::Error for Item<'_> {}

impl Diagnostic for Item<'_> {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self.src)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.d.labels()
    }
    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.d.help()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_and_survives_bad_offsets() {
        let src = "ab\néx\n";
        assert_eq!(Diagnostics::line_col(src, 0), (1, 1));
        assert_eq!(Diagnostics::line_col(src, 3), (2, 1));
        assert_eq!(Diagnostics::line_col(src, 5), (2, 2));
        // Inside `é`, and past the end.
        assert_eq!(Diagnostics::line_col(src, 4), (2, 1));
        assert_eq!(Diagnostics::line_col(src, 99), (3, 1));
    }

    #[test]
    fn spans_are_clamped() {
        let d = Diagnostics::single(
            "x.kdl",
            "é",
            SpecDiagnostic::new("m", SourceSpan::new(1.into(), 50), "l"),
        );
        assert_eq!(d.items[0].span, SourceSpan::new(0.into(), 2));
        assert!(d.render_plain().contains("× m"));
    }

    #[test]
    fn display_is_one_line_per_item() {
        let d = Diagnostics::new(
            "x.kdl",
            "a\nbb\n",
            vec![
                SpecDiagnostic::new("first", SourceSpan::new(0.into(), 1), "l"),
                SpecDiagnostic::new("second", SourceSpan::new(3.into(), 1), "l"),
            ],
        );
        assert_eq!(d.to_string(), "x.kdl:1:1: first\nx.kdl:2:2: second");
    }

    #[test]
    fn miette_renders_every_item() {
        let d = Diagnostics::new(
            "x.kdl",
            "a\nbb\n",
            vec![
                SpecDiagnostic::new("first", SourceSpan::new(0.into(), 1), "one")
                    .with_help("help one"),
                SpecDiagnostic::new("second", SourceSpan::new(3.into(), 1), "two"),
            ],
        );
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .render_report(&mut out, &d)
            .unwrap();
        for want in ["first", "second", "one", "two", "help one", "x.kdl:2:2"] {
            assert!(out.contains(want), "{want:?} missing in\n{out}");
        }
    }

    /// Issue 16, item 7: 10,000 errors in a 10,000-line spec render in
    /// time linear in their number (each scanned the source from its start:
    /// minutes), and a snippet cut by the line table is the one miette
    /// draws from the whole text.
    #[test]
    fn many_errors_render_fast_and_the_same() {
        let text: String = (0..10_000).map(|i| format!("node{i} 1\n")).collect();
        let items: Vec<_> = (0..10_000)
            .map(|i| {
                let at = text.find(&format!("node{i} ")).unwrap();
                SpecDiagnostic::new(format!("bad {i}"), SourceSpan::new(at.into(), 4), "here")
            })
            .collect();
        let d = Diagnostics::new("big.kdl", &text, items);
        let started = std::time::Instant::now();
        let plain = d.render_plain();
        let lines = d.to_string();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
        assert!(
            lines.ends_with("big.kdl:10000:1: bad 9999"),
            "{}",
            &lines[lines.len() - 40..]
        );
        assert!(plain.contains("[big.kdl:9999:1]"));

        // The same report as miette draws it from the whole text.
        let last = d.items.last().unwrap().clone();
        let whole = Item2 {
            src: &d.src,
            d: &last,
        };
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100);
        let (mut a, mut b) = (String::new(), String::new());
        handler.render_report(&mut a, &whole).unwrap();
        handler
            .render_report(&mut b, &Item { src: &d, d: &last })
            .unwrap();
        assert_eq!(a, b);
    }

    /// An item drawn with miette's own reader of the whole text.
    #[derive(Debug)]
    struct Item2<'a> {
        src: &'a NamedSource<String>,
        d: &'a SpecDiagnostic,
    }
    impl std::fmt::Display for Item2<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.d.message)
        }
    }
    impl std::error::Error for Item2<'_> {}
    impl Diagnostic for Item2<'_> {
        fn source_code(&self) -> Option<&dyn SourceCode> {
            Some(self.src)
        }
        fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
            self.d.labels()
        }
    }
}
