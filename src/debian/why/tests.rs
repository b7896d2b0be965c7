use super::*;
use crate::debian::index::parse_packages;
use crate::debian::locking::parse_request;

fn stanza(name: &str, extra: &str) -> String {
    format!(
        "Package: {name}\nVersion: 1.0\nArchitecture: amd64\nFilename: pool/{name}.deb\nSize: 1\nSHA256: {}\n{extra}\n",
        "0".repeat(64)
    )
}

/// python3 → python3.13 → libpython3.13-stdlib → libc6 and → media-types; python3 → libc6.
fn universe() -> Vec<BinaryPackage> {
    let text = [
        stanza("python3", "Depends: python3.13, libc6 (>= 1.0)"),
        stanza("python3.13", "Depends: libpython3.13-stdlib"),
        stanza(
            "libpython3.13-stdlib",
            "Pre-Depends: libc6\nDepends: media-types | mime-support",
        ),
        stanza("media-types", ""),
        stanza("libc6", ""),
        stanza("curl", "Depends: libcurl4"),
        stanza("libcurl4", "Depends: libc6, mta, perl-base"),
        stanza("postfix", "Provides: mta"),
    ]
    .join("\n");
    parse_packages(&text).expect("packages")
}

fn roots_of(requests: &[&str], packages: &[BinaryPackage]) -> Vec<Root> {
    let requests: Vec<(String, Relation)> = requests
        .iter()
        .map(|r| (r.to_string(), parse_request(r).expect("request")))
        .collect();
    roots(&requests, packages, "amd64")
}

fn chain(p: &WhyPath) -> String {
    let mut out = p.package.clone();
    for s in &p.steps {
        out.push_str(" → ");
        out.push_str(&s.edge.target);
    }
    out
}

#[test]
fn shortest_paths_come_first_with_the_relation_used() {
    let pkgs = universe();
    let roots = roots_of(&["python3", "curl"], &pkgs);
    let why = explain("app", "amd64", &pkgs, &roots, &[], "libc6", None).expect("why");
    assert_eq!(why.status, "installed");
    assert_eq!(why.version.as_deref(), Some("1.0"));
    let chains: Vec<String> = why.paths.iter().map(chain).collect();
    assert_eq!(
        chains,
        ["python3 → libc6", "curl → libcurl4 → libc6"],
        "one shortest path per request"
    );
    assert_eq!(why.paths[0].steps[0].edge.relation, "libc6 (>= 1.0)");
    assert_eq!(
        why.paths[0].steps[0].edge.field,
        super::super::deps::Field::Depends
    );

    let why = explain("app", "amd64", &pkgs, &roots, &[], "media-types", None).expect("why");
    assert_eq!(
        why.paths.iter().map(chain).collect::<Vec<_>>(),
        ["python3 → python3.13 → libpython3.13-stdlib → media-types"]
    );
    let last = &why.paths[0].steps[2];
    assert_eq!(last.from, "libpython3.13-stdlib");
    assert_eq!(last.edge.group, "media-types | mime-support");
}

#[test]
fn virtual_packages_requested_packages_and_limits() {
    let pkgs = universe();
    let roots = roots_of(&["python3", "curl"], &pkgs);
    let why = explain("app", "amd64", &pkgs, &roots, &[], "postfix", None).expect("why");
    let step = &why.paths[0].steps[1];
    assert_eq!(step.edge.relation, "mta");
    assert_eq!(step.edge.provides.as_deref(), Some("mta"));

    // A virtual name: the paths to the packages that provide it.
    let why = explain("app", "amd64", &pkgs, &roots, &[], "mta", None).expect("why");
    assert_eq!(why.status, "virtual");
    assert_eq!(why.provided_by, ["postfix"]);
    assert_eq!(
        why.paths.iter().map(chain).collect::<Vec<_>>(),
        ["curl → libcurl4 → postfix"]
    );

    // A requested package is its own answer.
    let why = explain("app", "amd64", &pkgs, &roots, &[], "curl", None).expect("why");
    assert_eq!(why.paths.len(), 1);
    assert!(why.paths[0].steps.is_empty());

    let why = explain("app", "amd64", &pkgs, &roots, &[], "libc6", Some(1)).expect("why");
    assert_eq!((why.paths.len(), why.total_paths), (1, 2));
}

#[test]
fn excluded_packages_say_what_needed_them_and_absent_ones_are_refused() {
    let pkgs = universe();
    let roots = roots_of(&["python3", "curl"], &pkgs);
    let dropped = [DroppedPackage {
        name: "perl-base".into(),
        required_by: vec!["libcurl4".into()],
    }];
    let why = explain("app", "amd64", &pkgs, &roots, &dropped, "perl-base", None).expect("why");
    assert_eq!(why.status, "excluded");
    assert_eq!(why.required_by, ["libcurl4"]);
    assert_eq!(
        why.paths.iter().map(chain).collect::<Vec<_>>(),
        ["curl → libcurl4 → perl-base"],
        "the paths to what needed it, and the dependency that was dropped"
    );
    assert_eq!(why.paths[0].steps[1].edge.relation, "perl-base");
    let err = explain("app", "amd64", &pkgs, &roots, &dropped, "nginx", None).unwrap_err();
    assert!(matches!(err, WhyError::NotInImage { .. }), "{err}");
}

#[test]
fn the_path_count_is_bounded() {
    // A ladder: each level has two packages both depending on both of the next level: 2^n paths.
    let mut text = Vec::new();
    for level in 0..14 {
        for side in ["a", "b"] {
            let deps = if level == 13 {
                "Depends: bottom".to_string()
            } else {
                format!("Depends: l{}a, l{}b", level + 1, level + 1)
            };
            text.push(stanza(&format!("l{level}{side}"), &deps));
        }
    }
    text.push(stanza("bottom", ""));
    let pkgs = parse_packages(&text.join("\n")).expect("packages");
    let roots = roots_of(&["l0a"], &pkgs);
    let why = explain("app", "amd64", &pkgs, &roots, &[], "bottom", Some(5)).expect("why");
    assert_eq!((why.paths.len(), why.total_paths), (5, MAX_PATHS));
}

#[test]
fn a_control_file_must_describe_the_locked_package() {
    let locked = LockedPackage {
        name: "libc6".into(),
        version: "2.41-12".into(),
        architecture: "amd64".into(),
        source: "glibc".into(),
        source_version: "2.41-12".into(),
        repository: "debian".into(),
        suite: "trixie".into(),
        filename: "pool/main/g/glibc/libc6_2.41-12_amd64.deb".into(),
        size: 1,
        sha256: "ab".repeat(32),
    };
    let ok = binary_package(
        &locked,
        "Package: libc6\nVersion: 2.41-12\nArchitecture: amd64\nDepends: libgcc-s1\n",
    )
    .expect("matches");
    assert_eq!(ok.depends.len(), 1);
    let e = binary_package(
        &locked,
        "Package: libc6\nVersion: 2.41-11\nArchitecture: amd64\n",
    )
    .unwrap_err();
    assert!(matches!(e, WhyError::Mismatch { .. }), "{e}");
    let e = binary_package(&locked, "Version: 2.41-12\n").unwrap_err();
    assert!(matches!(e, WhyError::Control { .. }), "{e}");
}
