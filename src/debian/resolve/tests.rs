//! Resolver unit tests on small hand-made universes.

use super::*;
use crate::debian::control::Relation;
use crate::debian::index::parse_packages;

/// Builds packages from short stanzas; `Filename`, `Size` and `SHA256` are filled in.
fn pkgs(text: &str) -> Vec<BinaryPackage> {
    let mut full = String::new();
    for stanza in text.split("\n\n") {
        let stanza = stanza.trim();
        if stanza.is_empty() {
            continue;
        }
        full.push_str(stanza);
        if !stanza.contains("Architecture:") {
            full.push_str("\nArchitecture: amd64");
        }
        full.push_str("\nFilename: pool/x.deb\nSize: 1\nSHA256: ");
        full.push_str(&"0".repeat(64));
        full.push_str("\n\n");
    }
    parse_packages(&full).unwrap_or_else(|e| panic!("{e}"))
}

fn universe(text: &str) -> Universe {
    let mut u = Universe::new();
    u.add_repository("main", pkgs(text));
    u
}

fn req(names: &[&str]) -> Request {
    Request {
        install: names
            .iter()
            .map(|n| Relation::parse(n).unwrap_or_else(|e| panic!("{e}")))
            .collect(),
        exclude: BTreeSet::new(),
        native_arch: "amd64".into(),
        foreign_archs: Vec::new(),
        installed: None,
    }
}

fn ok(u: &Universe, r: &Request) -> Resolution {
    resolve(u, r).unwrap_or_else(|e| panic!("unexpected error: {e}"))
}

fn names(res: &Resolution) -> Vec<String> {
    res.packages
        .iter()
        .map(|(_, p)| {
            if p.architecture == "amd64" || p.architecture == "all" {
                p.name.clone()
            } else {
                format!("{}:{}", p.name, p.architecture)
            }
        })
        .collect()
}

fn err(u: &Universe, r: &Request) -> String {
    match resolve(u, r) {
        Ok(res) => panic!("expected an error, got {:?}", names(&res)),
        Err(e) => e.to_string(),
    }
}

#[test]
fn chain_and_reasons() {
    let u = universe(
        "Package: a\nVersion: 1\nDepends: b (>= 1)\n\n\
         Package: b\nVersion: 2\nPre-Depends: c\n\n\
         Package: c\nVersion: 1\n\n\
         Package: unrelated\nVersion: 1\nEssential: yes\n",
    );
    let res = ok(&u, &req(&["a"]));
    assert_eq!(names(&res), ["a", "b", "c"]);
    assert_eq!(res.reasons["a"], "requested");
    assert_eq!(res.reasons["b"], "a depends on b (>= 1)");
    assert_eq!(res.reasons["c"], "b pre-depends on c");
    assert!(res.dropped.is_empty());
    // Essential packages are not pulled in wholesale.
    assert!(!names(&res).contains(&"unrelated".to_string()));
}

#[test]
fn alternatives_take_first_unless_one_is_selected() {
    let text = "Package: a\nVersion: 1\nDepends: x | y\n\n\
                Package: x\nVersion: 1\n\n\
                Package: y\nVersion: 1\n";
    let u = universe(text);
    assert_eq!(names(&ok(&u, &req(&["a"]))), ["a", "x"]);
    // y requested too: it is marked first, so the group is already met.
    assert_eq!(names(&ok(&u, &req(&["a", "y"]))), ["a", "y"]);
    assert_eq!(names(&ok(&u, &req(&["y", "a"]))), ["a", "y"]);
}

#[test]
fn alternative_with_unsatisfiable_dependencies_is_skipped() {
    let u = universe(
        "Package: a\nVersion: 1\nDepends: x | y\n\n\
         Package: x\nVersion: 1\nDepends: missing\n\n\
         Package: y\nVersion: 1\n",
    );
    assert_eq!(names(&ok(&u, &req(&["a"]))), ["a", "y"]);
}

#[test]
fn failed_alternative_keeps_what_it_pulled_in_like_apt() {
    // x installs z, then fails on w's missing dependency (found only one level down):
    // apt unmarks x but keeps z.
    let u = universe(
        "Package: a\nVersion: 1\nDepends: x | y\n\n\
         Package: x\nVersion: 1\nDepends: z, w\n\n\
         Package: w\nVersion: 1\nDepends: missing\n\n\
         Package: z\nVersion: 1\n\n\
         Package: y\nVersion: 1\n",
    );
    let res = ok(&u, &req(&["a"]));
    assert_eq!(names(&res), ["a", "y", "z"]);
    assert!(
        res.reasons["z"].contains("kept although x itself is not installed"),
        "{}",
        res.reasons["z"]
    );
}

#[test]
fn versioned_and_unversioned_provides() {
    let u = universe(
        "Package: a\nVersion: 1\nDepends: v (>= 2)\n\n\
         Package: p1\nVersion: 1\nProvides: v (= 1)\n\n\
         Package: p2\nVersion: 1\nProvides: v (= 3)\n\n\
         Package: p3\nVersion: 1\nProvides: v\n\n\
         Package: b\nVersion: 1\nDepends: w (>= 1)\n\n\
         Package: q\nVersion: 1\nProvides: w\n",
    );
    assert_eq!(names(&ok(&u, &req(&["a"]))), ["a", "p2"]);
    let e = err(&u, &req(&["b"]));
    assert_eq!(
        e,
        "cannot install b: b depends on w (>= 1), which is only provided by q (without a version)"
    );
}

#[test]
fn provider_choice_follows_apt() {
    // Real package beats providers; then Essential; then Priority; then the higher apt ID.
    let u = universe(
        "Package: a\nVersion: 1\nDepends: v1, v2, v3, v4\n\n\
         Package: v1\nVersion: 1\n\n\
         Package: prov-v1\nVersion: 1\nEssential: yes\nProvides: v1\n\n\
         Package: opt-v2\nVersion: 1\nPriority: optional\nProvides: v2\n\n\
         Package: ess-v2\nVersion: 1\nPriority: optional\nEssential: yes\nProvides: v2\n\n\
         Package: opt-v3\nVersion: 1\nPriority: optional\nProvides: v3\n\n\
         Package: req-v3\nVersion: 1\nPriority: required\nProvides: v3\n\n\
         Package: early-v4\nVersion: 1\nPriority: optional\nProvides: v4\n\n\
         Package: late-v4\nVersion: 1\nPriority: optional\nProvides: v4\n",
    );
    let res = ok(&u, &req(&["a"]));
    assert_eq!(names(&res), ["a", "ess-v2", "late-v4", "req-v3", "v1"]);
}

#[test]
fn provider_already_selected_is_kept() {
    let u = universe(
        "Package: a\nVersion: 1\nDepends: mta\n\n\
         Package: exim\nVersion: 1\nPriority: standard\nProvides: mta\n\n\
         Package: postfix\nVersion: 1\nPriority: optional\nProvides: mta\n",
    );
    assert_eq!(names(&ok(&u, &req(&["a"]))), ["a", "exim"]);
    assert_eq!(names(&ok(&u, &req(&["a", "postfix"]))), ["a", "postfix"]);
}

#[test]
fn multi_arch_any_native_and_foreign() {
    let text = "Package: tool\nVersion: 1\nArchitecture: i386\nDepends: perl:any, data, libx, helper\n\n\
                Package: perl\nVersion: 1\nMulti-Arch: allowed\n\n\
                Package: data\nVersion: 1\nArchitecture: all\nMulti-Arch: foreign\n\n\
                Package: libx\nVersion: 1\nMulti-Arch: same\n\n\
                Package: libx\nVersion: 1\nArchitecture: i386\nMulti-Arch: same\n\n\
                Package: helper\nVersion: 1\nMulti-Arch: foreign\n\n\
                Package: app\nVersion: 1\nDepends: strict:any\n\n\
                Package: strict\nVersion: 1\n\n\
                Package: nat\nVersion: 1\nArchitecture: i386\nDepends: libx:native\n";
    let u = universe(text);
    let mut r = req(&["tool:i386"]);
    r.foreign_archs = vec!["i386".into()];
    let res = ok(&u, &r);
    // perl (amd64, allowed) meets perl:any; data/helper (foreign) meet i386's deps;
    // libx (same) must be the i386 one.
    assert_eq!(
        names(&res),
        ["data", "helper", "libx:i386", "perl", "tool:i386"]
    );
    assert_eq!(res.reasons["libx:i386"], "tool:i386 depends on libx");
    // Without i386 enabled the i386 package is invisible.
    assert!(err(&u, &req(&["tool:i386"])).contains("tool"));
    // :any on a Multi-Arch: no package is not met.
    assert_eq!(
        err(&u, &req(&["app"])),
        "cannot install app: app depends on strict:any but strict is Multi-Arch: no, not allowed or foreign"
    );
    let mut r = req(&["nat:i386"]);
    r.foreign_archs = vec!["i386".into()];
    assert_eq!(names(&ok(&u, &r)), ["libx", "nat:i386"]);
}

#[test]
fn conflicts_fail_naming_both() {
    let u = universe(
        "Package: a\nVersion: 1\nDepends: b, c\n\n\
         Package: b\nVersion: 1\nConflicts: c\n\n\
         Package: c\nVersion: 1\n\n\
         Package: d\nVersion: 1\nBreaks: e (<< 2)\n\n\
         Package: e\nVersion: 1\n",
    );
    assert_eq!(
        err(&u, &req(&["a"])),
        "cannot install a: a depends on c, b conflicts with c (Conflicts: c), which is also needed"
    );
    assert_eq!(
        err(&u, &req(&["d", "e"])),
        "d breaks e (Breaks: e (<< 2)); both are needed"
    );
}

#[test]
fn conflicting_alternative_is_skipped() {
    let u = universe(
        "Package: a\nVersion: 1\nDepends: x | y\n\n\
         Package: x\nVersion: 1\nConflicts: z\n\n\
         Package: y\nVersion: 1\n\n\
         Package: z\nVersion: 1\n\n\
         Package: self\nVersion: 1\nProvides: mta\nConflicts: mta\n",
    );
    assert_eq!(names(&ok(&u, &req(&["a", "z"]))), ["a", "y", "z"]);
    // Conflicting with a virtual package one provides oneself is fine.
    assert_eq!(names(&ok(&u, &req(&["self"]))), ["self"]);
}

#[test]
fn excludes_are_dropped_not_errors() {
    let u = universe(
        "Package: a\nVersion: 1\nDepends: b, debconf | debconf-2.0\n\n\
         Package: b\nVersion: 1\nDepends: c\n\n\
         Package: c\nVersion: 1\n\n\
         Package: d\nVersion: 1\nDepends: b, debconf-2.0\n\n\
         Package: debconf\nVersion: 1\nProvides: debconf-2.0\n\n\
         Package: cdebconf\nVersion: 1\nProvides: debconf-2.0\n",
    );
    let mut r = req(&["a", "d"]);
    r.exclude = ["b".to_string(), "debconf".to_string()].into();
    let res = ok(&u, &r);
    assert_eq!(names(&res), ["a", "d"]);
    assert_eq!(
        res.dropped,
        [
            Dropped {
                name: "b".into(),
                required_by: vec!["a".into(), "d".into()]
            },
            Dropped {
                name: "debconf".into(),
                required_by: vec!["a".into(), "d".into()]
            },
        ]
    );
    let mut r = req(&["b"]);
    r.exclude = ["b".to_string()].into();
    assert_eq!(err(&u, &r), "b is both requested and excluded");
    // Excluding the virtual name: no provider is taken for `debconf-2.0`, but `a`'s first
    // alternative is the real debconf, which is still installed.
    let mut r = req(&["a", "d"]);
    r.exclude = ["debconf-2.0".to_string()].into();
    let res = ok(&u, &r);
    assert_eq!(names(&res), ["a", "b", "c", "d", "debconf"]);
    assert!(res.dropped.is_empty(), "{:?}", res.dropped);
    let mut r = req(&["d"]);
    r.exclude = ["debconf-2.0".to_string()].into();
    let res = ok(&u, &r);
    assert_eq!(names(&res), ["b", "c", "d"]);
    assert_eq!(
        res.dropped,
        [Dropped {
            name: "debconf-2.0".into(),
            required_by: vec!["d".into()]
        }]
    );
}

#[test]
fn unsatisfiable_messages() {
    let u = universe(
        "Package: app\nVersion: 1\nDepends: python3\n\n\
         Package: python3\nVersion: 3.13.5-2\nDepends: libpython3.13-stdlib (= 3.13.5-2)\n\n\
         Package: libpython3.13-stdlib\nVersion: 3.13.5-1\n\n\
         Package: foo\nVersion: 1\nDepends: bar\n\n\
         Package: baz\nVersion: 1\n\n\
         Package: two\nVersion: 1\nDepends: nope1 | python3 (>= 4)\n",
    );
    assert_eq!(
        err(&u, &req(&["python3"])),
        "cannot install python3: python3 depends on libpython3.13-stdlib (= 3.13.5-2) but the repository has 3.13.5-1"
    );
    assert_eq!(
        err(&u, &req(&["app"])),
        "cannot install app: app depends on python3, python3 depends on libpython3.13-stdlib (= 3.13.5-2) but the repository has 3.13.5-1"
    );
    assert_eq!(
        err(&u, &req(&["foo"])),
        "cannot install foo: foo depends on bar, which no repository provides (did you mean baz?)"
    );
    assert_eq!(
        err(&u, &req(&["two"])),
        "cannot install two: two depends on nope1 | python3 (>= 4), but none is available: \
         nope1, which no repository provides; python3 (>= 4) but the repository has 3.13.5-2"
    );
    assert_eq!(
        err(&u, &req(&["bax"])),
        "bax is not available in any repository (did you mean baz?)"
    );
}

#[test]
fn several_failing_choices_are_all_explained() {
    let u = universe(
        "Package: a\nVersion: 1\nDepends: mta\n\n\
         Package: m1\nVersion: 1\nProvides: mta\nDepends: w1\n\n\
         Package: w1\nVersion: 1\nDepends: vanished\n\n\
         Package: m2\nVersion: 1\nProvides: mta\nDepends: w2\n\n\
         Package: w2\nVersion: 1\nDepends: gone2 (>= 1)\n\n\
         Package: gone2\nVersion: 0.5\n",
    );
    assert_eq!(
        err(&u, &req(&["a"])),
        "cannot install a: a depends on mta, but no choice can be installed: \
         m2: m2 depends on w2, w2 depends on gone2 (>= 1) but the repository has 0.5; \
         m1: m1 depends on w1, w1 depends on vanished, which no repository provides"
    );
}

#[test]
fn candidates_span_repositories() {
    let mut u = Universe::new();
    u.add_repository(
        "bookworm",
        pkgs("Package: a\nVersion: 1.0\nDepends: b\n\nPackage: b\nVersion: 2.0\n\nPackage: c\nVersion: 1\n"),
    );
    u.add_repository(
        "security",
        pkgs("Package: a\nVersion: 1.0+deb12u1\n\nPackage: b\nVersion: 2.0\nDepends: c\n"),
    );
    let res = ok(&u, &req(&["a", "b"]));
    let got: Vec<(String, String, String)> = res
        .packages
        .iter()
        .map(|(r, p)| (r.clone(), p.name.clone(), p.version.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            ("security".into(), "a".into(), "1.0+deb12u1".into()),
            ("bookworm".into(), "b".into(), "2.0".into()),
        ]
    );
    assert_eq!(u.repository_ids(), ["bookworm", "security"]);
}

#[test]
fn pins_and_versioned_requests() {
    let mut u = Universe::new();
    u.add_repository(
        "r1",
        pkgs("Package: a\nVersion: 1.0\n\nPackage: b\nVersion: 1\nDepends: a (>= 2)\n"),
    );
    u.add_repository("r2", pkgs("Package: a\nVersion: 2.0\n"));
    let res = ok(&u, &req(&["a (= 1.0)"]));
    assert_eq!(res.versions()["a"].to_string(), "1.0");
    assert_eq!(
        ok(&u, &req(&["a (>= 1)"])).versions()["a"].to_string(),
        "2.0"
    );
    assert_eq!(
        err(&u, &req(&["a (= 1.0)", "b"])),
        "cannot install b: b depends on a (>= 2) but the repository has 1.0"
    );
    assert_eq!(
        err(&u, &req(&["a (>> 3)"])),
        "no repository has a (>> 3): available: 1.0, 2.0"
    );
}

#[test]
fn requesting_virtual_packages() {
    let u = universe(
        "Package: p\nVersion: 1\nProvides: solo\n\n\
         Package: m1\nVersion: 1\nProvides: many\n\n\
         Package: m2\nVersion: 1\nProvides: many\n",
    );
    assert_eq!(names(&ok(&u, &req(&["solo"]))), ["p"]);
    assert_eq!(
        err(&u, &req(&["many"])),
        "many is a virtual package provided by m1, m2; request one of them"
    );
}

#[test]
fn deterministic_and_request_order_matters_like_apt() {
    let text = "Package: a\nVersion: 1\nDepends: x | y, v\n\n\
                Package: b\nVersion: 1\nDepends: y | x, v\n\n\
                Package: x\nVersion: 1\n\n\
                Package: y\nVersion: 1\n\n\
                Package: p1\nVersion: 1\nProvides: v\n\n\
                Package: p2\nVersion: 1\nProvides: v\n";
    let u = universe(text);
    let first = ok(&u, &req(&["a", "b"]));
    let second = ok(&u, &req(&["b", "a"]));
    for _ in 0..5 {
        assert_eq!(ok(&u, &req(&["a", "b"])), first);
        assert_eq!(ok(&u, &req(&["b", "a"])), second);
    }
    // apt resolves requested packages in command-line order: the first one's choice of
    // `x | y` then satisfies the other's `y | x`.
    assert_eq!(names(&first), ["a", "b", "p2", "x"]);
    assert_eq!(names(&second), ["a", "b", "p2", "y"]);
}

#[test]
fn cycles_terminate() {
    let u = universe(
        "Package: a\nVersion: 1\nDepends: b\n\n\
         Package: b\nVersion: 1\nPre-Depends: a\n",
    );
    assert_eq!(names(&ok(&u, &req(&["a"]))), ["a", "b"]);
}

#[test]
fn later_conflict_evicts_an_automatic_choice_like_apt() {
    // libreoffice-writer in bookworm: base-core picks core-nogui (first alternative), then
    // writer's own dependency on core unmarks core-nogui; what core-nogui pulled in stays.
    let u = universe(
        "Package: writer\nVersion: 1\nDepends: base-core, core\n\n\
         Package: base-core\nVersion: 1\nDepends: core-nogui | core\n\n\
         Package: core-nogui\nVersion: 1\nDepends: z\nConflicts: core\n\n\
         Package: core\nVersion: 1\nConflicts: core-nogui\n\n\
         Package: z\nVersion: 1\n",
    );
    let res = ok(&u, &req(&["writer"]));
    assert_eq!(names(&res), ["base-core", "core", "writer", "z"]);
    assert_eq!(
        res.reasons["z"],
        "core-nogui depends on z (kept although core-nogui itself is not installed)"
    );
    // A requested package is protected: the conflicting dependency cannot evict it.
    let e = err(&u, &req(&["writer", "core-nogui"]));
    assert_eq!(
        e,
        "cannot install writer: writer depends on core, \
         core conflicts with core-nogui (Conflicts: core-nogui), which is also needed"
    );
}

#[test]
fn installed_packages_meet_dependencies_their_version_fits() {
    let mut u = universe(
        "Package: app\nVersion: 1\nDepends: libc (>= 2), libz, libnew (>= 3)\n\n\
         Package: libc\nVersion: 3\n\n\
         Package: libz\nVersion: 2\n\n\
         Package: libnew\nVersion: 3\n\n\
         Package: other\nVersion: 1\n",
    );
    // The base has libc 2 (older than the repository's 3), libz 1, libnew 1 (too old).
    u.add_repository(
        "base",
        pkgs("Package: libc\nVersion: 2\n\nPackage: libz\nVersion: 1\n\nPackage: libnew\nVersion: 1\n"),
    );
    let mut r = req(&["app"]);
    r.installed = Some("base".into());
    let res = ok(&u, &r);
    let from: Vec<String> = res
        .packages
        .iter()
        .map(|(repo, p)| format!("{}={} ({repo})", p.name, p.version))
        .collect();
    // libc and libz stay as installed (not upgraded); libnew takes the candidate, which the
    // caller sees as another repository's package of an installed name.
    assert_eq!(
        from,
        [
            "app=1 (main)",
            "libc=2 (base)",
            "libnew=3 (main)",
            "libz=1 (base)"
        ]
    );
    assert_eq!(res.reasons["libc"], "installed");
    // Without the base, the candidates.
    let res = ok(&u, &req(&["app"]));
    assert_eq!(names(&res), ["app", "libc", "libnew", "libz"]);
    assert!(res.packages.iter().all(|(repo, _)| repo == "main"));
}
