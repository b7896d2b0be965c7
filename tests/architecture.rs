//! The layering ARCHITECTURE.md promises, checked on the source: command modules import no other
//! command module, nothing outside `cli` imports `cli`, `ops` knows no clap, and every function in
//! `cli` is short (the logic lives in `ops`).

use std::path::{Path, PathBuf};

/// The longest a command-line function may be, in lines (signature to closing brace).
const MAX_CLI_FN_LINES: usize = 60;

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read source")
}

/// The command modules of `src/cli/` (every file but the shared ones).
fn command_modules() -> Vec<String> {
    rust_files(&src().join("cli"))
        .iter()
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_owned))
        .filter(|m| !["mod", "args", "error"].contains(&m.as_str()))
        .collect()
}

#[test]
fn no_command_module_imports_another() {
    let modules = command_modules();
    let mut found = Vec::new();
    for file in rust_files(&src().join("cli")) {
        let text = read(&file);
        for m in &modules {
            for pattern in [
                format!("super::{m}::"),
                format!("cli::{m}::"),
                format!("super::{m}}}"),
            ] {
                if text.contains(&pattern) {
                    found.push(format!("{} uses `{pattern}`", file.display()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "command modules import each other:\n{}",
        found.join("\n")
    );
}

#[test]
fn nothing_below_the_command_line_imports_it_or_clap() {
    let mut found = Vec::new();
    for file in rust_files(&src()) {
        let rel = file.strip_prefix(src()).expect("below src");
        if rel.starts_with("cli") || rel == Path::new("main.rs") {
            continue;
        }
        let text = read(&file);
        for needle in ["crate::cli", "himg::cli", "use clap", "clap::"] {
            if text.contains(needle) {
                found.push(format!("{} mentions `{needle}`", rel.display()));
            }
        }
    }
    assert!(found.is_empty(), "layering broken:\n{}", found.join("\n"));
}

/// The functions of `text` as (name, first line, length in lines), found by matching braces outside
/// strings, chars and comments.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let bytes = text.as_bytes();
    let line_of = |pos: usize| text[..pos].bytes().filter(|b| *b == b'\n').count() + 1;
    let mut out = Vec::new();
    let mut search = 0;
    while let Some(found) = text[search..].find("fn ") {
        let start = search + found;
        search = start + 3;
        let word_start =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if !word_start {
            continue;
        }
        let name: String = text[start + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        // The body: the first `{` at depth 0 of parentheses after the name, unless a `;` ends a
        // declaration first.
        let mut i = start + 3;
        let mut parens = 0i32;
        let mut body = None;
        while i < bytes.len() {
            match bytes[i] {
                b'(' | b'[' | b'<' => parens += 1,
                b')' | b']' | b'>' if parens > 0 => parens -= 1,
                b';' if parens == 0 => break,
                b'{' if parens == 0 => {
                    body = Some(i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let Some(open) = body else { continue };
        if let Some(close) = matching_brace(bytes, open) {
            out.push((name, line_of(start), line_of(close) - line_of(start) + 1));
        }
    }
    out
}

/// The position of the brace closing the one at `open`, skipping strings, chars and comments.
fn matching_brace(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'r' if matches!(b.get(i + 1), Some(b'"') | Some(b'#'))
                && !b[i - 1].is_ascii_alphanumeric() =>
            {
                let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
                let mut end = Vec::from(&b"\""[..]);
                end.extend(std::iter::repeat_n(b'#', hashes));
                i += 1 + hashes + 1;
                while i < b.len() && !b[i..].starts_with(&end) {
                    i += 1;
                }
                i += end.len() - 1;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'\'' if b.get(i + 2) == Some(&b'\'') || b.get(i + 1) == Some(&b'\\') => {
                // A char literal ('{', '\n', '\''); lifetimes have no closing quote.
                i += if b[i + 1] == b'\\' { 3 } else { 2 };
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[test]
fn command_line_functions_are_short() {
    let mut long = Vec::new();
    for file in rust_files(&src().join("cli")) {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name == "args.rs" {
            continue;
        }
        for (function, line, len) in functions(&read(&file)) {
            if len > MAX_CLI_FN_LINES {
                long.push(format!(
                    "{}:{line} `{function}` has {len} lines",
                    file.display()
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions in src/cli longer than {MAX_CLI_FN_LINES} lines (move the logic into ops):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_function_finder_measures_bodies_past_braces_in_strings() {
    let text = "fn a() {\n    let s = \"}\";\n    let c = '}';\n    // }\n}\npub fn b(x: Vec<u8>) -> u8 {\n    x[0]\n}\n";
    assert_eq!(
        functions(text),
        vec![("a".to_owned(), 1, 5), ("b".to_owned(), 6, 3)]
    );
}
