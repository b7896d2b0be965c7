//! Real-data tests: parse the host's apt lists, and compare the resolver's closure with
//! what `apt-get -s install --no-install-recommends` computes against an empty dpkg status.
//!
//! Essential: apt (2.6) with an empty status does **not** add the `Essential: yes` packages
//! that nothing depends on (`hello` installs four packages, none of them `dpkg` or `bash`),
//! and neither does our resolver, so the two sets are compared as they are, with no
//! adjustment; `essential_packages_are_not_pulled_in_wholesale` makes that explicit.
//!
//! The universe is every Packages list apt itself reads for the native architecture (and
//! `binary-all`), in apt's order, so both sides see the same packages. Set
//! `HIMG_ORACLE_SETS="pkg1 pkg2;pkg3"` to compare other package sets.
//! Fails (does not skip) when the host has no apt lists.

mod aptlists;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use himg::debian::control::Relation;
use himg::debian::index::parse_packages;
use himg::debian::resolve::{Request, Universe, resolve};

const SETS: &[&[&str]] = &[
    &["hello"],
    &["python3-minimal"],
    &["python3"],
    &["ca-certificates", "libssl3"],
    &["curl"],
    &["busybox", "netbase", "tzdata"],
    &["openssh-client"],
    // Alternatives and virtual packages (debconf | debconf-2.0, default-mta | mail-transport-agent,
    // awk, perlapi-*, python3:any, …).
    &["bsd-mailx"],
    &["git"],
    &["locales", "sudo"],
    &["apache2"],
    &["python3-pip"],
    &["dpkg-dev", "gnupg"],
    // A later Conflicts unmarks an earlier automatic choice (core-nogui | core).
    &["libreoffice-writer"],
    // Providers that tie on everything but apt's package ID (phpapi-*, mail-transport-agent,
    // libcurl4-dev, gvim).
    &["php8.2-mcrypt"],
    &["sa-exim"],
    &["libtesseract-dev"],
    &["notmuch-vim"],
    // Both must refuse (the harness counts agreement on failure as a match).
    &["hello", "no-such-package-himg"],
    // Request order matters: apt resolves in command-line order.
    &[
        "python3-zope.security",
        "qml6-module-qt-labs-sharedimage",
        "python3-python-utils",
    ],
];

fn universe() -> &'static Universe {
    static U: OnceLock<Universe> = OnceLock::new();
    U.get_or_init(|| {
        let mut u = Universe::new();
        for path in aptlists::packages_files(&aptlists::native_arch()) {
            let text = aptlists::read_list(&path);
            let pkgs =
                parse_packages(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
            u.add_repository(&aptlists::repo_id(&path), pkgs);
        }
        u
    })
}

fn empty_status() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let p =
            std::env::temp_dir().join(format!("deb-resolve-empty-status-{}", std::process::id()));
        std::fs::write(&p, b"").unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
        p
    })
    .clone()
}

/// `name -> version` from apt's simulated install (`Inst NAME (VERSION …)` lines).
fn apt_closure(pkgs: &[&str]) -> Result<BTreeMap<String, String>, String> {
    let out = Command::new("apt-get")
        .env("LC_ALL", "C")
        .arg("-s")
        .arg("-o")
        .arg(format!("Dir::State::status={}", empty_status().display()))
        .args([
            "-o",
            "APT::Install-Recommends=false",
            "-o",
            "Debug::NoLocking=1",
            "install",
        ])
        .args(pkgs)
        .output()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "apt-get failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            stdout
        ));
    }
    let mut m = BTreeMap::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("Inst ") {
            let mut it = rest.splitn(2, " (");
            let name = it.next().unwrap_or_default().to_string();
            let ver = it
                .next()
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or_default()
                .to_string();
            m.insert(name, ver);
        }
    }
    Ok(m)
}

fn our_closure(pkgs: &[&str]) -> Result<BTreeMap<String, String>, String> {
    let req = Request {
        install: pkgs.iter().map(|n| Relation::new(*n)).collect(),
        exclude: BTreeSet::new(),
        native_arch: aptlists::native_arch(),
        foreign_archs: aptlists::foreign_archs(),
        installed: None,
    };
    let res = resolve(universe(), &req).map_err(|e| e.to_string())?;
    Ok(res
        .packages
        .iter()
        .map(|(_, p)| (p.name.clone(), p.version.to_string()))
        .collect())
}

fn diff(
    pkgs: &[&str],
    apt: &BTreeMap<String, String>,
    ours: &BTreeMap<String, String>,
) -> Option<String> {
    let mut lines = Vec::new();
    for (n, v) in apt {
        match ours.get(n) {
            None => lines.push(format!("  - {n} {v}   (apt only)")),
            Some(w) if w != v => lines.push(format!("  ~ {n}: apt {v}, ours {w}")),
            _ => {}
        }
    }
    for (n, v) in ours {
        if !apt.contains_key(n) {
            lines.push(format!("  + {n} {v}   (ours only)"));
        }
    }
    (!lines.is_empty()).then(|| {
        format!(
            "{:?}: apt installs {}, we install {}\n{}",
            pkgs,
            apt.len(),
            ours.len(),
            lines.join("\n")
        )
    })
}

fn sets() -> Vec<Vec<String>> {
    match std::env::var("HIMG_ORACLE_SETS") {
        Ok(s) if !s.trim().is_empty() => s
            .split(';')
            .map(|set| set.split_whitespace().map(str::to_string).collect())
            .collect(),
        _ => SETS
            .iter()
            .map(|s| s.iter().map(|x| x.to_string()).collect())
            .collect(),
    }
}

#[test]
fn closure_matches_apt_get_simulation() {
    let sets = sets();
    let start = Instant::now();
    let _ = universe();
    let loaded = start.elapsed();
    // apt runs take ~1.5 s each (it rebuilds its cache for the empty status): two threads.
    let apt_results: Vec<Result<BTreeMap<String, String>, String>> = std::thread::scope(|sc| {
        let (even, odd): (Vec<(usize, &Vec<String>)>, Vec<_>) =
            sets.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let run = |part: Vec<(usize, &Vec<String>)>| {
            part.into_iter()
                .map(|(i, s)| {
                    let v: Vec<&str> = s.iter().map(String::as_str).collect();
                    (i, apt_closure(&v))
                })
                .collect::<Vec<_>>()
        };
        let h1 = sc.spawn(move || run(even));
        let h2 = sc.spawn(move || run(odd));
        let mut all: Vec<_> = h1.join().unwrap_or_default();
        all.extend(h2.join().unwrap_or_default());
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    });
    assert_eq!(apt_results.len(), sets.len(), "an apt thread panicked");
    let mut failures = Vec::new();
    let mut total = 0;
    for (set, apt) in sets.iter().zip(apt_results) {
        let v: Vec<&str> = set.iter().map(String::as_str).collect();
        let t = Instant::now();
        match (apt, our_closure(&v)) {
            (Err(apt_err), Err(ours)) => {
                // Both refuse: agreement. Show both explanations.
                let first = apt_err
                    .lines()
                    .find(|l| l.contains("Depends:"))
                    .unwrap_or("");
                eprintln!("{v:?}: both refuse; apt: {} | ours: {ours}", first.trim());
            }
            (Err(apt_err), Ok(ours)) => failures.push(format!(
                "{v:?}: we install {} packages, apt refuses: {apt_err}",
                ours.len()
            )),
            (Ok(apt), Err(e)) => failures.push(format!(
                "{v:?}: apt installs {} packages, we fail: {e}",
                apt.len()
            )),
            (Ok(apt), Ok(ours)) => {
                total += ours.len();
                eprintln!(
                    "{v:?}: {} packages, resolved in {:?}",
                    ours.len(),
                    t.elapsed()
                );
                if let Some(d) = diff(&v, &apt, &ours) {
                    failures.push(d);
                }
            }
        }
    }
    eprintln!(
        "{} sets, {total} packages in all; universe of {} packages loaded in {loaded:?}, everything in {:?}",
        sets.len(),
        universe().len(),
        start.elapsed()
    );
    assert!(
        failures.is_empty(),
        "resolver disagrees with apt-get -s:\n{}",
        failures.join("\n")
    );
}

#[test]
fn essential_packages_are_not_pulled_in_wholesale() {
    let apt = apt_closure(&["hello"]).unwrap_or_else(|e| panic!("{e}"));
    let ours = our_closure(&["hello"]).unwrap_or_else(|e| panic!("{e}"));
    for essential in ["dpkg", "bash", "coreutils", "base-files"] {
        assert!(
            !apt.contains_key(essential),
            "apt now adds Essential {essential}: revisit the rule"
        );
        assert!(
            !ours.contains_key(essential),
            "we add Essential {essential}"
        );
    }
    assert!(apt.contains_key("libc6") && ours.contains_key("libc6"));
}
