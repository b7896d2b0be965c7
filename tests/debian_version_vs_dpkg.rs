//! Property test: our version ordering agrees with `dpkg --compare-versions` on ≥ 3,000
//! pairs drawn from the host's real Packages lists (random pairs, near neighbours in sorted
//! order, and mutated variants such as `~rc1`/`+b1` suffixes).
//!
//! dpkg is run in two parallel `sh` batches (one short script line per pair), which keeps
//! the test well under 30 s on two cores. Fails (does not skip) without apt lists.

mod aptlists;

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use himg::debian::version::DebVersion;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};

/// Every `Version:` and `Source: x (v)` value in the host's lists, deduplicated.
fn real_versions() -> Vec<String> {
    let mut set = BTreeSet::new();
    for path in aptlists::packages_files(&aptlists::native_arch()) {
        let text = aptlists::read_list(&path);
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("Version: ") {
                set.insert(v.trim().to_string());
            } else if let Some(s) = line.strip_prefix("Source: ")
                && let Some((_, rest)) = s.split_once('(')
            {
                set.insert(rest.trim_end_matches(')').trim().to_string());
            }
        }
    }
    set.into_iter()
        .filter(|v| v.parse::<DebVersion>().is_ok())
        .collect()
}

/// Runs dpkg on every pair; returns `Less`/`Equal`/`Greater` per pair, in order.
fn dpkg_compare(pairs: &[(String, String)]) -> Vec<Ordering> {
    let half = pairs.len().div_ceil(2);
    let chunks: Vec<&[(String, String)]> = pairs.chunks(half.max(1)).collect();
    let children: Vec<_> = chunks
        .iter()
        .map(|chunk| {
            let mut script = String::new();
            for (a, b) in *chunk {
                // Versions only contain [A-Za-z0-9.+~:-]: safe inside single quotes.
                script.push_str(&format!(
                    "if dpkg --compare-versions '{a}' lt '{b}'; then echo lt; \
                     elif dpkg --compare-versions '{a}' eq '{b}'; then echo eq; else echo gt; fi\n"
                ));
            }
            let mut child = Command::new("sh")
                .arg("-s")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run sh: {e}"));
            if let Some(mut stdin) = child.stdin.take() {
                stdin
                    .write_all(script.as_bytes())
                    .unwrap_or_else(|e| panic!("writing to sh: {e}"));
            }
            child
        })
        .collect();
    let mut out = Vec::with_capacity(pairs.len());
    for child in children {
        let o = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("waiting for sh: {e}"));
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            out.push(match line {
                "lt" => Ordering::Less,
                "eq" => Ordering::Equal,
                _ => Ordering::Greater,
            });
        }
    }
    assert_eq!(out.len(), pairs.len(), "dpkg batch lost results");
    out
}

/// One random value from a proptest strategy.
fn sample<S: Strategy>(strategy: &S, runner: &mut TestRunner) -> S::Value {
    strategy
        .new_tree(runner)
        .map(|t| t.current())
        .unwrap_or_else(|e| panic!("proptest could not generate a value: {e}"))
}

#[test]
fn ordering_matches_dpkg_on_real_versions() {
    let start = Instant::now();
    let versions = real_versions();
    assert!(versions.len() > 100, "too few versions in the apt lists");
    let n = versions.len();
    let mut runner = TestRunner::new(Config::default());
    let mut pairs: Vec<(String, String)> = Vec::new();

    // Uniformly random pairs.
    let random = proptest::collection::vec((0..n, 0..n), 1300);
    // Near neighbours in (string-)sorted order: similar versions, the interesting cases.
    let near = proptest::collection::vec((0..n, 1usize..4), 1200);
    // Mutations around a real version.
    let suffixes = [
        "~", "~~", "~rc1", "+b1", ".0", "0", "a", "-1", "+really1", "~deb12u1",
    ];
    let mutated = proptest::collection::vec((0..n, 0..suffixes.len(), proptest::bool::ANY), 700);

    for (i, j) in sample(&random, &mut runner) {
        pairs.push((versions[i].clone(), versions[j].clone()));
    }
    for (i, d) in sample(&near, &mut runner) {
        if i + d < n {
            pairs.push((versions[i].clone(), versions[i + d].clone()));
        }
    }
    for (i, k, swap) in sample(&mutated, &mut runner) {
        let a = versions[i].clone();
        let b = format!("{a}{}", suffixes[k]);
        if b.parse::<DebVersion>().is_err() {
            continue;
        }
        pairs.push(if swap { (b, a) } else { (a, b) });
    }
    assert!(pairs.len() >= 3000, "only {} pairs generated", pairs.len());

    let want = dpkg_compare(&pairs);
    let mut mismatches = Vec::new();
    for ((a, b), w) in pairs.iter().zip(&want) {
        let (va, vb) = match (a.parse::<DebVersion>(), b.parse::<DebVersion>()) {
            (Ok(x), Ok(y)) => (x, y),
            _ => continue,
        };
        let got = va.cmp(&vb);
        if got != *w || (got == Ordering::Equal) != (va == vb) {
            mismatches.push(format!("{a} vs {b}: dpkg {w:?}, ours {got:?}"));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "compared {} version pairs ({} distinct real versions) with dpkg in {secs:.1} s",
        pairs.len(),
        n
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} pairs disagree with dpkg, e.g.:\n{}",
        mismatches.len(),
        pairs.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
    assert!(secs < 30.0, "took {secs:.1} s, budget is 30 s");
}
