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
