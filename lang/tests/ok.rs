//! `tests/ok/*.himg`: each evaluates to the `Evaluated` in the `.json` beside it (BLESS=1 rewrites
//! them). Every `.himg` below `tests/ok` also formats idempotently and means the same formatted.

mod common;

use std::fs;

use common::*;
use himg_lang::{MemoryLoader, SourcePath, evaluate, format_source};

#[test]
fn ok_cases_evaluate_to_expected_json() {
    let root = manifest_dir().join("tests/ok");
    let loader = load_dir(&root);
    let mut failures = Vec::new();
    let cases = cases(&root);
    for case in &cases {
        let result = evaluate(&SourcePath(case.clone()), &loader);
        match result {
            Ok(evaluated) => {
                let json = serde_json::to_string_pretty(&evaluated).unwrap_or_default() + "\n";
                let expected = root.join(case.replace(".himg", ".json"));
                if let Some(diff) = check_expected(&expected, &json) {
                    failures.push(diff);
                }
            }
            Err(diagnostics) => failures.push(format!("{case} failed:\n{}", diagnostics.render())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(cases.len() >= 10, "too few ok cases");
}

#[test]
fn formatting_is_idempotent_and_preserves_meaning() {
    let root = manifest_dir().join("tests/ok");
    let loader = load_dir(&root);
    let mut formatted_loader = MemoryLoader::new();
    let mut failures = Vec::new();
    for (rel, path) in files_below(&root) {
        let bytes = fs::read(&path).unwrap_or_default();
        if !rel.ends_with(".himg") {
            formatted_loader.insert(rel, bytes);
            continue;
        }
        let text = String::from_utf8(bytes).unwrap_or_default();
        let once = match format_source(&rel, &text) {
            Ok(f) => f,
            Err(d) => {
                failures.push(format!("{rel} does not format:\n{}", d.render()));
                continue;
            }
        };
        match format_source(&rel, &once) {
            Ok(twice) if twice == once => {}
            Ok(twice) => failures.push(format!(
                "{rel}: formatting is not idempotent\n--- once\n{once}\n--- twice\n{twice}"
            )),
            Err(d) => failures.push(format!(
                "{rel}: formatted text does not parse:\n{}\n{once}",
                d.render()
            )),
        }
        formatted_loader.insert(rel, once);
    }
    for case in cases(&root) {
        let before = evaluate(&SourcePath(case.clone()), &loader).ok();
        let after = evaluate(&SourcePath(case.clone()), &formatted_loader);
        match after {
            Ok(after) if before.as_ref() == Some(&after) => {}
            Ok(_) => failures.push(format!("{case}: formatting changed the evaluated result")),
            Err(d) => failures.push(format!("{case}: formatted version fails:\n{}", d.render())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Files named `*.fmt.himg` are already in canonical layout: formatting must not change them.
#[test]
fn canonical_files_are_fixed_points() {
    let root = manifest_dir().join("tests/ok");
    let mut checked = 0;
    for (rel, path) in files_below(&root) {
        if !rel.ends_with(".himg") || !(rel.starts_with("book_") || rel.contains("canonical")) {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap_or_default();
        let formatted = format_source(&rel, &text).map_err(|d| d.render());
        assert_eq!(
            formatted.as_deref(),
            Ok(text.as_str()),
            "{rel} is not in canonical layout"
        );
        checked += 1;
    }
    assert!(checked > 0);
}
