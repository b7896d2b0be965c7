//! `himg check --json`: every failing case of the language's test suite (`lang/tests/fail/`) gives
//! a JSON report whose first diagnostic has the code, line and column of the human rendering beside
//! it (`.stderr`), with the exit code of `himg check`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

fn fail_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lang/tests/fail")
}

/// `himg check --json FILE` in `cwd`, with a scratch store.
fn check_json(cwd: &Path, store: &Path, file: &str) -> Output {
    std::process::Command::new(common::himg_bin())
        .current_dir(cwd)
        .env("HIMG_STORE", store)
        .args(["check", "--json", file])
        .output()
        .expect("run himg")
}

/// The code and `(line, column)` of the first diagnostic of a human rendering.
fn expected(stderr: &str) -> (String, Option<(u64, u64)>) {
    let first = stderr.lines().next().unwrap_or_default();
    let code = first
        .strip_prefix("error[")
        .and_then(|rest| rest.split_once(']'))
        .map(|(code, _)| code.to_owned())
        .unwrap_or_else(|| panic!("no code in {first:?}"));
    let place = stderr
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("--> "))
        .and_then(|place| {
            let mut parts = place.rsplitn(3, ':');
            let col = parts.next()?.parse().ok()?;
            let line = parts.next()?.parse().ok()?;
            Some((line, col))
        });
    (code, place)
}

/// A case with `--- file: NAME` sections, laid out as files in a copy of the fail directory.
fn split_case(case: &str, text: &str, scratch: &Path) -> PathBuf {
    let dir = scratch.join(case.trim_end_matches(".himg"));
    common::copy_dir(&fail_dir(), &dir);
    let mut parts = text.split("\n--- file: ");
    let main = parts.next().unwrap_or_default();
    std::fs::write(dir.join(case), main).expect("write case");
    for part in parts {
        let (name, body) = part.split_once('\n').unwrap_or((part, ""));
        let path = dir.join(name.trim());
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, body).expect("write part");
    }
    dir
}

/// Checks one case; returns what is wrong with its report.
fn judge(case: &str, out: &Output) -> Result<(), String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout)
        .map_err(|e| format!("{case}: stdout is not JSON ({e}):\n{stdout}"))?;
    if out.status.code() != Some(1) {
        return Err(format!("{case}: exit {:?}, expected 1", out.status.code()));
    }
    if report["ok"] != Value::Bool(false) || report["file"] != case {
        return Err(format!("{case}: ok/file wrong: {report}"));
    }
    let rendered = std::fs::read_to_string(fail_dir().join(case.replace(".himg", ".stderr")))
        .map_err(|e| format!("{case}: no .stderr: {e}"))?;
    let (code, place) = expected(&rendered);
    let first = &report["diagnostics"][0];
    let start = &first["range"]["start"];
    let (line, col) = place.ok_or_else(|| format!("{case}: no `--> FILE:LINE:COL` in .stderr"))?;
    let actual = (
        first["code"].as_str().unwrap_or_default(),
        start["line"].as_u64().unwrap_or_default(),
        start["column"].as_u64().unwrap_or_default(),
    );
    if actual != (code.as_str(), line, col) || first["severity"] != "error" {
        return Err(format!(
            "{case}: expected {code} at {line}:{col}, got {actual:?}\n{first}"
        ));
    }
    let offsets = (
        start["offset"].as_u64(),
        first["range"]["end"]["offset"].as_u64(),
    );
    match offsets {
        (Some(s), Some(e)) if s <= e => Ok(()),
        _ => Err(format!("{case}: bad byte offsets {offsets:?}")),
    }
}

#[test]
fn check_json_matches_the_rendered_diagnostics_of_every_fail_case() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let store = scratch.path().join("store");
    let mut cases: Vec<String> = std::fs::read_dir(fail_dir())
        .expect("fail dir")
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.ends_with(".himg"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "too few cases: {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let text = std::fs::read_to_string(fail_dir().join(case)).expect("read case");
        let cwd = if text.contains("\n--- file: ") {
            split_case(case, &text, scratch.path())
        } else {
            fail_dir()
        };
        if let Err(e) = judge(case, &check_json(&cwd, &store, case)) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn check_json_of_a_good_file_lists_its_images_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("ok.himg"),
        "image \"one\" {\n  entrypoint = [\"/bin/true\"]\n}\n",
    )
    .expect("write");
    let out = check_json(dir.path(), &dir.path().join("store"), "ok.himg");
    common::assert_success(&out, "himg check --json");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["images"], serde_json::json!(["one"]), "{report}");
    assert_eq!(report["diagnostics"], serde_json::json!([]), "{report}");
}

#[test]
fn check_json_of_a_missing_file_is_the_usual_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = check_json(dir.path(), &dir.path().join("store"), "nope.himg");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}
