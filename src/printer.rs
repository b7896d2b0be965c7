//! The one way himg prints: JSON and data on stdout; status, warnings, errors and progress on stderr.
//!
//! Progress bars appear only when stderr is a terminal and `CI` is not set; colour follows the
//! caller's [`ColorChoice`] (`--color`). The command line and the operations print only through it.

use std::io::{IsTerminal, Write};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressState, ProgressStyle};

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
    /// Every bar is drawn through it, so that a download's bar and a build's do not fight.
    bars: MultiProgress,
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
            bars: MultiProgress::new(),
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
        bar.enable_steady_tick(Duration::from_millis(120));
        self.bars.add(bar)
    }

    /// Progress of a byte transfer (`verb` as `Pushing`, `what` the reference or URL): a bar with
    /// bytes, total and rate on a terminal; without one (CI), a plain line every
    /// [`progress_interval`] once the transfer has run that long; nothing with `--quiet`.
    pub fn transfer(&self, verb: &str, what: &str) -> Transfer {
        if self.quiet {
            return Transfer::hidden();
        }
        let bar = self.interactive.then(|| BarSlot {
            bars: self.bars.clone(),
            verb: verb.to_string(),
            what: what.to_string(),
            bar: std::sync::OnceLock::new(),
        });
        let now = Instant::now();
        Transfer {
            inner: Some(Arc::new(TransferState {
                verb: self.paint("1;32", &format!("{verb:>10}")),
                what: what.to_string(),
                bar,
                done: AtomicU64::new(0),
                total: AtomicU64::new(0),
                started: now,
                last_line: Mutex::new(now),
                interval: progress_interval(),
            })),
        }
    }
}

/// A bar made when the transfer first moves: one that moves nothing shows nothing.
struct BarSlot {
    bars: MultiProgress,
    verb: String,
    what: String,
    bar: std::sync::OnceLock<ProgressBar>,
}

impl BarSlot {
    fn get(&self) -> &ProgressBar {
        self.bar.get_or_init(|| {
            let bar = ProgressBar::no_length();
            let template = "{spinner} {prefix:>10} {done}{total} ({rate}) {wide_msg}";
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(
                    style
                        .with_key("done", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{}", size(s.pos()));
                        })
                        .with_key("total", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                            if let Some(len) = s.len().filter(|l| *l > 0) {
                                let _ = write!(w, "/{}", size(len));
                            }
                        })
                        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{}/s", size(s.per_sec() as u64));
                        }),
                );
            }
            bar.set_prefix(self.verb.clone());
            bar.set_message(self.what.clone());
            bar.enable_steady_tick(Duration::from_millis(200));
            self.bars.add(bar)
        })
    }
}

/// `bytes` for people, the one way every command prints a size: exact below 1 KiB (`12 B`), else
/// in the largest binary unit below it with one decimal (`1.5 KiB`, `12.3 MiB`, `2.0 GiB`).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// How often a plain progress line is printed when stderr is not a terminal, and how long a
/// transfer runs before the first: `$HIMG_PROGRESS_INTERVAL_MS` milliseconds, else 5 s.
pub fn progress_interval() -> Duration {
    std::env::var("HIMG_PROGRESS_INTERVAL_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map_or(Duration::from_secs(5), Duration::from_millis)
}

/// A handle on the progress of one transfer (cheap to clone, shared across threads): bytes done,
/// and the total as far as it is known. The bar is cleared when the last handle is dropped.
#[derive(Clone, Default)]
pub struct Transfer {
    inner: Option<Arc<TransferState>>,
}

struct TransferState {
    verb: String,
    what: String,
    bar: Option<BarSlot>,
    done: AtomicU64,
    total: AtomicU64,
    started: Instant,
    last_line: Mutex<Instant>,
    interval: Duration,
}

impl std::fmt::Debug for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transfer")
    }
}

impl Transfer {
    /// A transfer that shows nothing.
    pub fn hidden() -> Transfer {
        Transfer { inner: None }
    }

    /// `bytes` more are expected.
    pub fn add_total(&self, bytes: u64) {
        if let Some(s) = &self.inner {
            let total = s.total.fetch_add(bytes, Ordering::Relaxed) + bytes;
            if let Some(bar) = &s.bar {
                bar.get().set_length(total);
            }
        }
    }

    /// `bytes` expected will not be transferred after all (a blob the registry already has).
    pub fn skip(&self, bytes: u64) {
        if let Some(s) = &self.inner {
            let total = s.total.load(Ordering::Relaxed).saturating_sub(bytes);
            s.total.store(total, Ordering::Relaxed);
            if let Some(bar) = s.bar.as_ref().and_then(|b| b.bar.get()) {
                bar.set_length(total);
            }
        }
    }

    /// `bytes` more were transferred.
    pub fn advance(&self, bytes: u64) {
        let Some(s) = &self.inner else { return };
        let done = s.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Some(bar) = &s.bar {
            bar.get().inc(bytes);
            return;
        }
        let now = Instant::now();
        let Ok(mut last) = s.last_line.lock() else {
            return;
        };
        if now.duration_since(*last) < s.interval {
            return;
        }
        *last = now;
        let total = match s.total.load(Ordering::Relaxed) {
            0 => String::new(),
            t => format!("/{}", size(t)),
        };
        let secs = now.duration_since(s.started).as_secs_f64().max(0.001);
        let rate = size((done as f64 / secs) as u64);
        eprintln!("{} {}{total} ({rate}/s) {}", s.verb, size(done), s.what);
    }
}

impl Drop for TransferState {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.as_ref().and_then(|b| b.bar.get()) {
            bar.finish_and_clear();
        }
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
    use super::{causes, size};

    #[test]
    fn every_size_is_written_one_way() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(24 << 20), "24.0 MiB");
        assert_eq!(size(3 << 30), "3.0 GiB");
    }

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
