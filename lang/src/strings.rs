//! String literal text: decoding escapes and the indentation rule of `"""` strings.
//!
//! The `"""` rule, applied to the raw text before escapes are decoded:
//! 1. Split the literal into lines at line breaks in its text (not inside `${…}`). With a single line
//!    nothing is stripped.
//! 2. If the first line (right after the opening `"""`) is blank, it is dropped with its line break.
//! 3. If the last line (before the closing `"""`) is blank, it becomes empty: the text ends with the
//!    line break before it.
//! 4. The common indentation is the longest common prefix of spaces and tabs of every later line that
//!    is not blank, and of that blank last line. It is removed from those lines; other blank lines
//!    become empty. The first line, when kept, is never stripped.

use crate::lexer::decode_escape;

/// A piece of a string literal: raw text, or the n-th interpolated expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Text(String),
    Interp(usize),
}

/// A `"""` literal split into lines, with the facts of the indentation rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lines {
    pub lines: Vec<Vec<Seg>>,
    pub first_dropped: bool,
    pub last_blank: bool,
    pub indent: String,
}

pub(crate) fn is_blank(line: &[Seg]) -> bool {
    line.iter().all(|s| match s {
        Seg::Text(t) => t.chars().all(|c| c == ' ' || c == '\t' || c == '\r'),
        Seg::Interp(_) => false,
    })
}

fn leading_ws(line: &[Seg]) -> &str {
    match line.first() {
        Some(Seg::Text(t)) => {
            let end = t.find(|c| c != ' ' && c != '\t').unwrap_or(t.len());
            &t[..end]
        }
        _ => "",
    }
}

pub(crate) fn split_lines(raw: &[Seg]) -> Lines {
    let mut lines: Vec<Vec<Seg>> = vec![Vec::new()];
    for seg in raw {
        match seg {
            Seg::Text(t) => {
                for (i, piece) in t.split('\n').enumerate() {
                    if i > 0 {
                        lines.push(Vec::new());
                    }
                    if !piece.is_empty()
                        && let Some(line) = lines.last_mut()
                    {
                        line.push(Seg::Text(piece.to_owned()));
                    }
                }
            }
            Seg::Interp(i) => {
                if let Some(line) = lines.last_mut() {
                    line.push(Seg::Interp(*i));
                }
            }
        }
    }
    let multi = lines.len() >= 2;
    let first_dropped = multi && is_blank(&lines[0]);
    let last = lines.len() - 1;
    let last_blank = multi && is_blank(&lines[last]);
    let mut indent: Option<&str> = None;
    if multi {
        for (i, line) in lines.iter().enumerate().skip(1) {
            if (i == last && last_blank) || !is_blank(line) {
                let ws = leading_ws(line);
                indent = Some(match indent {
                    None => ws,
                    Some(prev) => {
                        let common = prev
                            .char_indices()
                            .zip(ws.chars())
                            .find(|((_, a), b)| a != b)
                            .map_or(prev.len().min(ws.len()), |((i, _), _)| i);
                        &prev[..common]
                    }
                });
            }
        }
    }
    let indent = indent.unwrap_or("").to_owned();
    Lines {
        lines,
        first_dropped,
        last_blank,
        indent,
    }
}

/// Applies the `"""` rule, returning raw segments (escapes still encoded).
pub(crate) fn dedent(raw: &[Seg]) -> Vec<Seg> {
    let info = split_lines(raw);
    if info.lines.len() < 2 {
        return raw.to_vec();
    }
    let mut out: Vec<Seg> = Vec::new();
    let push_text = |out: &mut Vec<Seg>, text: &str| {
        if text.is_empty() {
            return;
        }
        if let Some(Seg::Text(prev)) = out.last_mut() {
            prev.push_str(text);
        } else {
            out.push(Seg::Text(text.to_owned()));
        }
    };
    let start = usize::from(info.first_dropped);
    for (i, line) in info.lines.iter().enumerate().skip(start) {
        if i > start {
            push_text(&mut out, "\n");
        }
        if i > 0 && is_blank(line) {
            continue; // blank lines (and the blank last line) become empty
        }
        for (j, seg) in line.iter().enumerate() {
            match seg {
                Seg::Text(t) if j == 0 && i > 0 => {
                    push_text(&mut out, t.strip_prefix(info.indent.as_str()).unwrap_or(t));
                }
                Seg::Text(t) => push_text(&mut out, t),
                Seg::Interp(n) => out.push(Seg::Interp(*n)),
            }
        }
    }
    out
}

/// Decodes the escapes of raw string text (already checked by the lexer, whose escape grammar
/// [`decode_escape`] this uses; anything unexpected is kept as written).
pub(crate) fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(backslash) = rest.find('\\') {
        out.push_str(&rest[..backslash]);
        rest = &rest[backslash..];
        let (decoded, len) = decode_escape(rest).unwrap_or(('\\', 1));
        out.push(decoded);
        rest = &rest[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Vec<Seg> {
        vec![Seg::Text(s.to_owned())]
    }

    fn flat(segs: &[Seg]) -> String {
        segs.iter()
            .map(|s| match s {
                Seg::Text(t) => t.clone(),
                Seg::Interp(i) => format!("<{i}>"),
            })
            .collect()
    }

    #[test]
    fn dedent_rules() {
        assert_eq!(
            flat(&dedent(&text("\n      a = 1\n        b\n      "))),
            "a = 1\n  b\n"
        );
        assert_eq!(flat(&dedent(&text("\n    a\n  "))), "  a\n");
        assert_eq!(flat(&dedent(&text("\n  a"))), "a");
        assert_eq!(flat(&dedent(&text("\n"))), "");
        assert_eq!(flat(&dedent(&text("\n\n"))), "\n");
        assert_eq!(flat(&dedent(&text("first\n  b\n  "))), "first\nb\n");
        assert_eq!(flat(&dedent(&text("  no break  "))), "  no break  ");
        assert_eq!(flat(&dedent(&text("\n  a\n\n   \n  b\n  "))), "a\n\n\nb\n");
        assert_eq!(flat(&dedent(&text("\n\ta\n  b\n"))), "\ta\n  b\n");
        let with_interp = vec![
            Seg::Text("\n    v = ".into()),
            Seg::Interp(0),
            Seg::Text("\n    ".into()),
            Seg::Interp(1),
            Seg::Text("\n    ".into()),
        ];
        assert_eq!(flat(&dedent(&with_interp)), "v = <0>\n<1>\n");
    }

    #[test]
    fn escapes() {
        assert_eq!(
            unescape(r#"a\n\t\r\\\"\$\u{1F600}"#),
            "a\n\t\r\\\"$\u{1F600}"
        );
    }
}
