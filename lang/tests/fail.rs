//! `tests/fail/*.himg`: each fails with exactly the rendered diagnostics in the `.stderr` beside it
//! (BLESS=1 rewrites them). A case may hold more files after lines `--- file: NAME`.

mod common;

use std::fs;

use common::*;
use himg_lang::{SourcePath, evaluate};

#[test]
fn fail_cases_render_expected_diagnostics() {
    let root = manifest_dir().join("tests/fail");
    let mut failures = Vec::new();
    let cases = cases(&root);
    let mut codes = std::collections::BTreeSet::new();
    let mut messages = std::collections::BTreeSet::new();
    for case in &cases {
        let text = fs::read_to_string(root.join(case)).unwrap_or_default();
        let mut loader = load_dir(&root);
        let mut parts = text.split("\n--- file: ");
        let main = parts.next().unwrap_or_default();
        loader.insert(case.clone(), main);
        for part in parts {
            let (name, body) = part.split_once('\n').unwrap_or((part, ""));
            loader.insert(name.trim().to_owned(), body);
        }
        match evaluate(&SourcePath(case.clone()), &loader) {
            Ok(_) => failures.push(format!("{case} evaluated without error")),
            Err(diagnostics) => {
                let first = &diagnostics.0[0];
                codes.insert(first.code);
                if !messages.insert((first.code, first.message.clone())) {
                    failures.push(format!(
                        "{case}: same first diagnostic as another case: {}",
                        first.message
                    ));
                }
                let expected = root.join(case.replace(".himg", ".stderr"));
                if let Some(diff) = check_expected(&expected, &diagnostics.render()) {
                    failures.push(diff);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(cases.len() >= 30, "too few fail cases");
    assert!(codes.len() >= 30, "only {} distinct codes", codes.len());
}
