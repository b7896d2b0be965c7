//! Every `.himg` snippet in the book is a file under `examples/` (shown with mdBook's `{{#include}}`)
//! or, in the language reference, a `lang/tests/ok/book_*.himg` case; every page is in SUMMARY.md.

use std::path::Path;

fn himg_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim() == "```himg" => current = Some(String::new()),
            Some(block) if line.trim() == "```" => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn book_snippets_are_checked_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("book/src");
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).expect("SUMMARY.md");
    let mut pages = 0;
    for entry in std::fs::read_dir(&src).expect("book/src") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !name.ends_with(".md") || name == "SUMMARY.md" {
            continue;
        }
        pages += 1;
        assert!(
            summary.contains(&format!("({name})")),
            "{name} is not linked from SUMMARY.md"
        );
        if name == "language.md" {
            continue; // checked by lang/tests/book.rs against lang/tests/ok/book_*.himg
        }
        let text = std::fs::read_to_string(&path).expect("page");
        for block in himg_blocks(&text) {
            let trimmed = block.trim();
            let include = trimmed
                .strip_prefix("{{#include ")
                .and_then(|r| r.strip_suffix("}}"))
                .unwrap_or_else(|| {
                    panic!(
                        "{name}: a himg snippet must be an {{{{#include}}}} of an example:\n{block}"
                    )
                });
            // mdBook's `file:START:END` (a line range) names the same file.
            let include = include.trim();
            let path_part = match include.split_once(':') {
                Some((path, range)) => {
                    assert!(
                        range
                            .split(':')
                            .all(|n| n.is_empty() || n.parse::<usize>().is_ok()),
                        "{name}: `{include}` is not `FILE:START:END`"
                    );
                    path
                }
                None => include,
            };
            let file = src.join(path_part);
            let canonical = file
                .canonicalize()
                .unwrap_or_else(|e| panic!("{name}: {}: {e}", file.display()));
            assert!(
                canonical.starts_with(root.join("examples").canonicalize().expect("examples")),
                "{name}: {include} is not under examples/"
            );
        }
    }
    assert!(pages >= 8, "only {pages} pages found");
}
