//! The language reference (`book/src/language.md`) stays true: each of its `himg` examples is a
//! `book_*.himg` test case (evaluated by `tests/ok.rs`), and its code table lists every code.

mod common;

use std::fs;

use common::*;

fn book() -> String {
    let path = manifest_dir().join("../book/src/language.md");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

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
fn book_examples_are_test_cases() {
    let root = manifest_dir().join("tests/ok");
    let files: Vec<(String, String)> = files_below(&root)
        .into_iter()
        .filter(|(rel, _)| {
            rel.rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with("book_") && n.ends_with(".himg"))
        })
        .map(|(rel, path)| (rel, fs::read_to_string(path).unwrap_or_default()))
        .collect();
    let blocks = himg_blocks(&book());
    assert!(!blocks.is_empty());
    for block in &blocks {
        assert!(
            files.iter().any(|(_, text)| text == block),
            "this example of the book is not a tests/ok/book_*.himg file:\n{block}"
        );
    }
    for (rel, text) in &files {
        assert!(blocks.contains(text), "{rel} is not shown in the book");
    }
}

#[test]
fn book_lists_every_diagnostic_code() {
    let book = book();
    for (code, meaning) in himg_lang::CODES {
        let row = format!("| {code} | {} |", meaning.replace('|', "\\|"));
        assert!(
            book.contains(&row),
            "the book's code table lacks or differs for {code}: expected `{row}`"
        );
    }
}
