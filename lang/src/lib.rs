//! The `.himg` language: text → syntax tree → values → validated [`ImageSpec`]s and [`BuildSpec`]s,
//! with rustc-style [`Diagnostics`] and a canonical formatter.
//!
//! Data flows one way: `lexer` → `parser` (→ `syntax` tree) → `eval` (→ `value`s) → `schema`
//! (→ [`spec`]); `format` prints syntax trees back, `diagnostic` renders errors. The crate does no IO
//! of its own: files come through a [`SourceLoader`].
//!
//! ```
//! use himg_lang::{MemoryLoader, SourcePath, evaluate};
//!
//! let mut loader = MemoryLoader::new();
//! loader.insert("hello.himg", "image \"hello\" { cmd = [\"/hello\"] }\n");
//! let evaluated = evaluate(&SourcePath("hello.himg".into()), &loader);
//! assert_eq!(evaluated.map(|e| e.images.len()).ok(), Some(1));
//! ```

mod codes;
mod diagnostic;
mod eval;
mod format;
mod lexer;
mod limits;
mod loader;
mod parser;
mod schema;
mod span;
pub mod spec;
mod strings;
mod suggest;
mod syntax;
mod value;

use std::sync::Arc;

pub use codes::{CODES, explain};
pub use diagnostic::{Diagnostic, Diagnostics, SecondaryLabel};
pub use loader::{EntryKind, MemoryLoader, SourceError, SourceLoader};
pub use spec::*;

/// Evaluates the file `entry` (and what it imports) into validated image and build specifications.
///
/// Deterministic and hermetic: the result depends only on what `loader` returns.
pub fn evaluate(entry: &SourcePath, loader: &dyn SourceLoader) -> Result<Evaluated, Diagnostics> {
    eval::evaluate(entry, loader)
}

/// Formats the bytes of a `.himg` file like [`format_source`]; invalid UTF-8 is the same `H0010`
/// diagnostic that evaluation gives.
pub fn format_bytes(file_name: &str, bytes: Vec<u8>) -> Result<String, Diagnostics> {
    let mut files = span::Files::default();
    match eval::decode(&mut files, &SourcePath(file_name.to_owned()), bytes) {
        Ok(text) => format_source(file_name, &text),
        Err(diag) => Err(diagnostic::resolve_all(&[*diag], &files)),
    }
}

/// Formats `.himg` source text into the canonical layout (`himg fmt`). `file_name` is only used in
/// diagnostics. Formatting is idempotent and preserves meaning.
pub fn format_source(file_name: &str, text: &str) -> Result<String, Diagnostics> {
    match parser::parse(text, 0) {
        Ok(file) => Ok(format::format_file(&file)),
        Err(diag) => {
            let mut files = span::Files::default();
            files.add(SourcePath(file_name.to_owned()), Arc::from(text));
            Err(diagnostic::resolve_all(&[*diag], &files))
        }
    }
}
