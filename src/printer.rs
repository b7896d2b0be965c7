//! The one way himg prints: JSON and data on stdout; status, warnings, errors and progress on stderr.
//!
//! Progress bars appear only when stderr is a terminal and `CI` is not set; colour follows the
//! caller's [`ColorChoice`] (`--color`). The command line and the operations print only through it.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};

/// When to colour human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone)]
pub struct Printer {
    quiet: bool,
    color: bool,
    interactive: bool,
}

impl Printer {
    pub fn new(quiet: bool, color: ColorChoice) -> Printer {
        let tty = std::io::stderr().is_terminal();
        let ci = std::env::var_os("CI").is_some();
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && std::env::var_os("NO_COLOR").is_none(),
        };
        Printer {
            quiet,
            color,
            interactive: tty && !ci && !quiet,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// A status line on stderr (suppressed by `--quiet`).
    pub fn status(&self, verb: &str, message: &str) {
        if !self.quiet {
            eprintln!("{} {message}", self.paint("1;32", &format!("{verb:>10}")));
        }
    }

    /// A failure line on stderr, in red (shown even with `--quiet`).
    pub fn fail(&self, verb: &str, message: &str) {
        eprintln!("{} {message}", self.paint("1;31", &format!("{verb:>10}")));
    }

    pub fn warn(&self, message: &str) {
        eprintln!("{} {message}", self.paint("1;33", "warning:"));
    }

    /// An error with its chain of causes and an optional hint.
    pub fn error(&self, err: &(dyn std::error::Error + 'static), hint: Option<&str>) {
        let mut out = std::io::stderr().lock();
        let _ = writeln!(out, "{} {err}", self.paint("1;31", "error:"));
        for c in causes(err) {
            let _ = writeln!(out, "  {} {c}", self.paint("1", "Caused by:"));
        }
        if let Some(h) = hint {
            let _ = writeln!(out, "{} {h}", self.paint("1;36", "hint:"));
        }
    }

    /// Text that is already fully rendered (language diagnostics).
    pub fn rendered(&self, text: &str) {
        let mut out = std::io::stderr().lock();
        let _ = out.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = out.write_all(b"\n");
        }
    }

    /// A JSON document on stdout.
    pub fn json(&self, value: &serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
        let _ = writeln!(out, "{text}");
    }

    /// Plain data on stdout (formatted source, DOT, tables).
    pub fn data(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
    }

    /// A progress bar on a terminal; a hidden one otherwise.
    pub fn progress(&self, len: u64, what: &str) -> ProgressBar {
        if !self.interactive || len == 0 {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {prefix} [{pos}/{len}] {wide_msg}")
        {
            bar.set_style(style);
        }
        bar.set_prefix(what.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    }
}

/// The causes of `err` worth a `Caused by:` line: each one's text, except where the message
/// above it already ends with that text (errors that quote their source).
fn causes(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut shown = err.to_string();
    let mut out = Vec::new();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !shown.ends_with(&text) {
            out.push(text.clone());
        }
        shown = text;
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::causes;

    #[derive(Debug, thiserror::Error)]
    #[error("GET http://127.0.0.1:9/v2/: {source}")]
    struct Quoting {
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read the index")]
    struct Wrapping {
        #[source]
        source: Quoting,
    }

    #[test]
    fn a_cause_the_message_already_quotes_is_not_repeated() {
        let io =
            || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert!(causes(&Quoting { source: io() }).is_empty());
        assert_eq!(
            causes(&Wrapping {
                source: Quoting { source: io() }
            }),
            ["GET http://127.0.0.1:9/v2/: connection refused"]
        );
    }
}
