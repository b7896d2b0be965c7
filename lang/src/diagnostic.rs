//! Diagnostics: what went wrong, where (file, byte span), why (a stable code, see [`crate::codes`])
//! and how to fix it, rendered like rustc's through `annotate-snippets`.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use annotate_snippets::renderer::DecorStyle;
use annotate_snippets::{AnnotationKind, Group, Level, Origin, Renderer, Snippet};

use crate::span::{Files, Span};
use crate::spec::SourcePath;

/// One error in a `.himg` source, with everything needed to render it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable code (`"H0012"`); [`crate::explain`] gives its meaning.
    pub code: &'static str,
    pub message: String,
    /// The file the primary span points into.
    pub file: SourcePath,
    /// Byte offsets into [`Diagnostic::source`].
    pub span: Range<usize>,
    /// Text under the carets.
    pub label: String,
    pub help: Option<String>,
    /// Further `= note:` lines.
    pub notes: Vec<String>,
    /// Other places that explain the error ("first defined here"), possibly in other files.
    pub secondary: Vec<SecondaryLabel>,
    /// The full text of [`Diagnostic::file`].
    pub source: Arc<str>,
}

/// A secondary place shown with a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondaryLabel {
    pub file: SourcePath,
    pub span: Range<usize>,
    pub label: String,
    pub source: Arc<str>,
}

impl SecondaryLabel {
    /// 1-based line and column (in characters) of the span's start.
    pub fn line_col(&self) -> (usize, usize) {
        line_col(&self.source, self.span.start)
    }

    /// 1-based line and column (in characters) of the span's end.
    pub fn end_line_col(&self) -> (usize, usize) {
        line_col(&self.source, self.span.end)
    }
}

/// The errors of one evaluation or formatting run, in the order they were found. Never empty when
/// returned as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostic {
    /// 1-based line and column (in characters) of the primary span's start.
    pub fn line_col(&self) -> (usize, usize) {
        line_col(&self.source, self.span.start)
    }

    /// 1-based line and column (in characters) of the primary span's end.
    pub fn end_line_col(&self) -> (usize, usize) {
        line_col(&self.source, self.span.end)
    }

    /// Plain-text rendering (no colours), rustc style.
    pub fn render(&self) -> String {
        self.render_with(Renderer::plain().decor_style(DecorStyle::Ascii))
    }

    /// The same with ANSI colours, for terminals.
    pub fn render_color(&self) -> String {
        self.render_with(Renderer::styled().decor_style(DecorStyle::Ascii))
    }

    fn render_with(&self, renderer: Renderer) -> String {
        let primary_span = clamp(&self.source, &self.span);
        let mut snippet = Snippet::source(&*self.source)
            .path(self.file.as_str())
            .annotation(
                AnnotationKind::Primary
                    .span(primary_span)
                    .label(&*self.label),
            );
        let mut others: Vec<(&SecondaryLabel, Range<usize>)> = Vec::new();
        for label in &self.secondary {
            let span = clamp(&label.source, &label.span);
            if label.file == self.file {
                snippet =
                    snippet.annotation(AnnotationKind::Context.span(span).label(&*label.label));
            } else {
                others.push((label, span));
            }
        }
        let title = Level::ERROR.primary_title(&*self.message).id(self.code);
        // A file that could not be read has no text to show: name it without a snippet.
        let mut group = if self.source.is_empty() {
            title.element(Origin::path(self.file.as_str()))
        } else {
            title.element(snippet)
        };
        for (label, span) in others {
            group = group.element(
                Snippet::source(&*label.source)
                    .path(label.file.as_str())
                    .annotation(AnnotationKind::Context.span(span).label(&*label.label)),
            );
        }
        for note in &self.notes {
            group = group.element(Level::NOTE.message(&**note));
        }
        if let Some(help) = &self.help {
            group = group.element(Level::HELP.message(&**help));
        }
        let report: [Group<'_>; 1] = [group];
        renderer.render(&report)
    }
}

impl Diagnostics {
    /// All diagnostics rendered as plain text, separated by blank lines, ending in a newline.
    pub fn render(&self) -> String {
        self.join(Diagnostic::render)
    }

    /// All diagnostics with ANSI colours.
    pub fn render_color(&self) -> String {
        self.join(Diagnostic::render_color)
    }

    fn join(&self, one: fn(&Diagnostic) -> String) -> String {
        let mut out = String::new();
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(one(diagnostic).trim_end());
            out.push('\n');
        }
        out
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The codes of all diagnostics, in order (handy in tests).
    pub fn codes(&self) -> Vec<&'static str> {
        self.0.iter().map(|d| d.code).collect()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render().trim_end())
    }
}

impl std::error::Error for Diagnostics {}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render().trim_end())
    }
}

impl std::error::Error for Diagnostic {}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

fn clamp(source: &str, span: &Range<usize>) -> Range<usize> {
    let mut start = span.start.min(source.len());
    while !source.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = span.end.clamp(start, source.len());
    while !source.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = clamp(source, &(offset..offset)).start;
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// A diagnostic inside the crate, before its spans are resolved against the [`Files`] table.
#[derive(Debug, Clone)]
pub(crate) struct Diag {
    pub code: &'static str,
    pub message: String,
    pub span: Span,
    pub label: String,
    pub help: Option<String>,
    pub notes: Vec<String>,
    pub secondary: Vec<(Span, String)>,
}

/// Result type of the parser and evaluator (the error is boxed to keep `Ok` paths small).
pub(crate) type DResult<T> = Result<T, Box<Diag>>;

impl Diag {
    pub fn new(code: &'static str, span: Span, message: impl Into<String>) -> Diag {
        Diag {
            code,
            message: message.into(),
            span,
            label: String::new(),
            help: None,
            notes: Vec::new(),
            secondary: Vec::new(),
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Diag {
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diag {
        self.help = Some(help.into());
        self
    }

    pub fn maybe_help(mut self, help: Option<String>) -> Diag {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Diag {
        self.notes.push(note.into());
        self
    }

    pub fn secondary(mut self, span: Span, label: impl Into<String>) -> Diag {
        self.secondary.push((span, label.into()));
        self
    }

    /// Boxed, as the `Err` of a [`DResult`].
    pub fn err<T>(self) -> DResult<T> {
        Err(Box::new(self))
    }

    pub fn resolve(&self, files: &Files) -> Diagnostic {
        let (file, source) = file_and_source(files, self.span);
        Diagnostic {
            code: self.code,
            message: self.message.clone(),
            file,
            span: shown_span(&source, self.span),
            label: self.label.clone(),
            help: self.help.clone(),
            notes: self.notes.clone(),
            secondary: self
                .secondary
                .iter()
                .map(|(span, label)| {
                    let (file, source) = file_and_source(files, *span);
                    SecondaryLabel {
                        file,
                        span: shown_span(&source, *span),
                        label: label.clone(),
                        source,
                    }
                })
                .collect(),
            source,
        }
    }
}

/// A span's byte range, or `0..0` when its file's text is not shown.
fn shown_span(source: &str, span: Span) -> Range<usize> {
    if source.is_empty() {
        0..0
    } else {
        span.start..span.end
    }
}

/// The file a span points into and the text to show. Only `.himg` files are shown: a file of
/// another kind (an import of a project's data file by mistake or by malice) is named, never quoted.
fn file_and_source(files: &Files, span: Span) -> (SourcePath, Arc<str>) {
    match files.get(span.file) {
        Some(f) if f.path.as_str().ends_with(".himg") => (f.path.clone(), f.text.clone()),
        Some(f) => (f.path.clone(), Arc::from("")),
        None => (SourcePath("<unknown>".to_owned()), Arc::from("")),
    }
}

/// Resolves internal diagnostics into the public form.
pub(crate) fn resolve_all(diags: &[Diag], files: &Files) -> Diagnostics {
    Diagnostics(diags.iter().map(|d| d.resolve(files)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(text: &str) -> Files {
        let mut files = Files::default();
        files.add(SourcePath("examples/hello.himg".into()), Arc::from(text));
        files
    }

    #[test]
    fn renders_like_rustc() {
        let text = "image \"hello\" {\n  entrypont = [\"/hello\"]\n}\n";
        let files = files(text);
        let start = text.find("entrypont").unwrap_or(0);
        let diag = Diag::new(
            crate::codes::UNKNOWN_FIELD,
            Span::new(0, start, start + 9),
            "unknown field `entrypont` in image",
        )
        .label("unknown field")
        .help("did you mean `entrypoint`?");
        let rendered = resolve_all(&[diag], &files).render();
        assert_eq!(
            rendered,
            "error[H0012]: unknown field `entrypont` in image\n --> examples/hello.himg:2:3\n  |\n2 |   entrypont = [\"/hello\"]\n  |   ^^^^^^^^^ unknown field\n  |\n  = help: did you mean `entrypoint`?\n"
        );
    }

    #[test]
    fn only_himg_files_are_quoted() {
        let mut files = Files::default();
        files.add(SourcePath("secret.txt".into()), Arc::from("root:x:0:0\n"));
        let diag = Diag::new("H0001", Span::new(0, 4, 5), "x").label("here");
        let out = resolve_all(&[diag], &files).render();
        assert_eq!(out, "error[H0001]: x\n--> secret.txt\n");
    }

    #[test]
    fn spans_past_the_end_and_inside_chars_are_clamped() {
        let files = files("é");
        let diag = Diag::new("H0001", Span::new(0, 1, 99), "x").label("here");
        let out = resolve_all(&[diag], &files).render();
        assert!(out.contains("error[H0001]: x"), "{out}");
        let empty = Diag::new("H0026", Span::new(7, 0, 0), "missing");
        let out = resolve_all(&[empty], &Files::default()).render();
        assert!(out.contains("missing"), "{out}");
    }

    #[test]
    fn a_diagnostic_knows_where_its_spans_end() {
        let text = "let a = 1\nlet b = \"é\" + a\n";
        let files = files(text);
        let string = text.find('"').unwrap_or(0);
        let diag = Diag::new("H0020", Span::new(0, string, string + 4), "x")
            .secondary(Span::new(0, 4, 5), "here");
        let resolved = diag.resolve(&files);
        assert_eq!(resolved.line_col(), (2, 9));
        assert_eq!(resolved.end_line_col(), (2, 12));
        assert_eq!(resolved.secondary[0].line_col(), (1, 5));
        assert_eq!(resolved.secondary[0].end_line_col(), (1, 6));
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 0), (1, 1));
    }
}
