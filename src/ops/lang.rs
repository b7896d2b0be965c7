//! The language use-cases, which need no store: check a file, evaluate it, format files.

use std::path::{Path, PathBuf};

use super::{Error, Session};
use crate::load::LoadError;

/// A file that loaded and evaluated: the images it declares.
#[derive(Debug, Clone)]
pub struct Checked {
    pub file: PathBuf,
    pub images: Vec<String>,
}

impl Checked {
    /// `FILE (N images: a, b)`.
    pub fn summary(&self) -> String {
        format!(
            "{} ({} image{}: {})",
            self.file.display(),
            self.images.len(),
            if self.images.len() == 1 { "" } else { "s" },
            self.images.join(", ")
        )
    }
}

/// Loads and evaluates `file` (diagnostics come back as the error).
pub fn check(session: &Session<'_>, file: &Path) -> Result<Checked, Error> {
    let loaded = session.load(file)?;
    Ok(Checked {
        file: file.to_path_buf(),
        images: loaded
            .evaluated
            .images
            .iter()
            .map(|i| i.name.clone())
            .collect(),
    })
}

/// `himg check --json`: the outcome of checking one file, for editors and CI.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    /// The file as given.
    pub file: String,
    /// No diagnostic.
    pub ok: bool,
    /// The images the file declares (empty when it has errors).
    pub images: Vec<String>,
    pub diagnostics: Vec<JsonDiagnostic>,
}

/// One diagnostic of a [`CheckReport`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct JsonDiagnostic {
    /// The stable code (`H0012`; `himg` explains it in the book's list of codes).
    pub code: &'static str,
    /// `error` (every language diagnostic is an error today; `warning` is reserved).
    pub severity: &'static str,
    pub message: String,
    /// The file the range points into, relative to the project root.
    pub file: String,
    pub range: JsonRange,
    /// The text under the carets.
    pub label: String,
    pub help: Option<String>,
    pub notes: Vec<String>,
    pub secondary: Vec<JsonSecondary>,
}

/// Another place a diagnostic points at ("first defined here").
#[derive(Debug, Clone, serde::Serialize)]
pub struct JsonSecondary {
    pub file: String,
    pub range: JsonRange,
    pub message: String,
}

/// A span: where it starts and ends.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct JsonRange {
    pub start: JsonPosition,
    pub end: JsonPosition,
}

/// A position: 1-based line and column (in characters), and the byte offset into the file.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct JsonPosition {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
}

impl JsonRange {
    fn new(span: &std::ops::Range<usize>, start: (usize, usize), end: (usize, usize)) -> JsonRange {
        JsonRange {
            start: JsonPosition {
                line: start.0,
                column: start.1,
                offset: span.start,
            },
            end: JsonPosition {
                line: end.0,
                column: end.1,
                offset: span.end,
            },
        }
    }
}

impl From<&himg_lang::Diagnostic> for JsonDiagnostic {
    fn from(d: &himg_lang::Diagnostic) -> JsonDiagnostic {
        JsonDiagnostic {
            code: d.code,
            severity: "error",
            message: d.message.clone(),
            file: d.file.as_str().to_owned(),
            range: JsonRange::new(&d.span, d.line_col(), d.end_line_col()),
            label: d.label.clone(),
            help: d.help.clone(),
            notes: d.notes.clone(),
            secondary: d
                .secondary
                .iter()
                .map(|s| JsonSecondary {
                    file: s.file.as_str().to_owned(),
                    range: JsonRange::new(&s.span, s.line_col(), s.end_line_col()),
                    message: s.label.clone(),
                })
                .collect(),
        }
    }
}

/// Checks `file` like [`check`], but returns its diagnostics as a report instead of an error
/// (other errors, such as a missing file, still come back as the error).
pub fn check_report(session: &Session<'_>, file: &Path) -> Result<CheckReport, Error> {
    let name = file.display().to_string();
    match check(session, file) {
        Ok(checked) => Ok(CheckReport {
            file: name,
            ok: true,
            images: checked.images,
            diagnostics: Vec::new(),
        }),
        Err(Error::Load(LoadError::Language(diags))) => Ok(CheckReport {
            file: name,
            ok: false,
            images: Vec::new(),
            diagnostics: diags.iter().map(JsonDiagnostic::from).collect(),
        }),
        Err(other) => Err(other),
    }
}

/// The evaluated file as JSON.
pub fn eval(session: &Session<'_>, file: &Path) -> Result<serde_json::Value, Error> {
    let loaded = session.load(file)?;
    Ok(serde_json::to_value(&loaded.evaluated).unwrap_or(serde_json::Value::Null))
}

/// What formatting did: the files that were not formatted (only checked, or rewritten).
#[derive(Debug, Clone, Default)]
pub struct Formatted {
    /// With `check_only`, the files that need formatting, as given.
    pub unformatted: Vec<String>,
}

/// Formats `files` in place (`check_only`: reports them instead), one status line per file.
pub fn fmt(session: &Session<'_>, files: &[PathBuf], check_only: bool) -> Result<Formatted, Error> {
    let printer = session.printer();
    let mut unformatted = Vec::new();
    for file in files {
        let bytes = std::fs::read(file).map_err(|source| Error::Io {
            path: file.clone(),
            source,
        })?;
        let name = file.display().to_string();
        let formatted = himg_lang::format_bytes(&name, bytes.clone())
            .map_err(|d| Error::Load(LoadError::Language(d)))?;
        if formatted.as_bytes() == bytes {
            continue;
        }
        if check_only {
            printer.status("Unformatted", &name);
            unformatted.push(name);
        } else {
            let tmp = file.with_extension("himg.fmt-tmp");
            std::fs::write(&tmp, &formatted)
                .and_then(|_| std::fs::rename(&tmp, file))
                .map_err(|source| Error::Io {
                    path: file.clone(),
                    source,
                })?;
            printer.status("Formatted", &name);
        }
    }
    Ok(Formatted { unformatted })
}
