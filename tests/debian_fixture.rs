//! Hermetic Debian tests (issue 2/5, acceptance 1 and 2): a signed fixture repository built by the
//! test (test OpenPGP key, small .debs with dependencies, alternatives, a virtual package, an exclusion
//! and a conflict), served on 127.0.0.1. Resolve, lock, build, rebuild without network, update; then
//! every broken link of the trust chain and every hostile .deb is refused with its own message, and
//! the store stays consistent.

mod common;
#[allow(dead_code)]
mod support;

use std::process::{Command, Output};

use common::{Project, assert_success, image, layer_digests, require_tool, run_tool};
use support::{BuiltRepo, Deb, DebBuilder, RepoBuilder, TestKey, TestServer, serve};

const SUITE: &str = "stable";

fn libgreet(version: &str) -> Deb {
    DebBuilder::new("libgreet", version, "amd64")
        .multi_arch("same")
        .file(
            "./usr/lib/x86_64-linux-gnu/libgreet.so.1",
            format!("libgreet {version}\n").as_bytes(),
            0o644,
        )
        .file("./usr/share/doc/libgreet/copyright", b"MIT\n", 0o644)
        .build()
        .expect("libgreet")
}

fn base_debs() -> Vec<Deb> {
    vec![
        DebBuilder::new("hello-fixture", "1.0-1", "amd64")
            .depends("libgreet (>= 1.0), sh-provider, alt-missing | alt-b, perl-fixture")
            .file("./usr/bin/hello-fixture", b"#!/bin/sh\necho hi\n", 0o755)
            .file("./usr/share/doc/hello-fixture/copyright", b"GPL\n", 0o644)
            .file("./usr/share/doc/hello-fixture/README", b"read me\n", 0o644)
            .file(
                "./usr/share/man/man1/hello-fixture.1.gz",
                b"man page",
                0o644,
            )
            .build()
            .expect("hello"),
        DebBuilder::new("dash-fixture", "1.0", "amd64")
            .provides("sh-provider")
            .file("./bin/dash-fixture", b"shell\n", 0o755)
            .build()
            .expect("dash"),
        DebBuilder::new("alt-b", "2.0", "all")
            .file("./usr/share/alt-b/data", b"b\n", 0o644)
            .build()
            .expect("alt-b"),
        DebBuilder::new("perl-fixture", "5.0", "amd64")
            .file("./usr/bin/perl-fixture", b"perl\n", 0o755)
            .build()
            .expect("perl"),
        DebBuilder::new("conflicting", "1.0", "amd64")
            .conflicts("libgreet")
            .file("./usr/share/conflicting", b"c\n", 0o644)
            .build()
            .expect("conflicting"),
    ]
}

/// Writes a signed repository with these packages into `dir` (replacing what was there).
fn publish(
    dir: &std::path::Path,
    key: &TestKey,
    debs: &[Deb],
    edit: impl FnOnce(&mut support::SuiteSpec),
) -> BuiltRepo {
    let _ = std::fs::remove_dir_all(dir);
    let mut repo = RepoBuilder::new();
    repo.sign_with(key);
    let suite = repo.suite(SUITE);
    for d in debs {
        suite.add("main", d);
    }
    edit(suite);
    repo.write(dir).expect("write repository")
}

struct Fixture {
    project: Project,
    server: TestServer,
    key: TestKey,
    repo: BuiltRepo,
}

fn himg_file(port_url: &str, packages: &str) -> String {
    format!(
        r#"image "fx" {{
  repository "fixture" {{
    url = "{port_url}"
    suites = ["{SUITE}"]
    keyring = "fixture.gpg"
  }}
  packages = [{packages}]
  group "app" {{ gid = 1000 }}
  user "app" {{ uid = 1000, gid = 1000 }}
  run_as = "app"
}}
"#
    )
}

fn fixture(debs: Vec<Deb>, edit: impl FnOnce(&mut support::SuiteSpec)) -> Fixture {
    let project = Project::new();
    let key = TestKey::generate("fixture archive");
    let repo = publish(&project.path("repo"), &key, &debs, edit);
    let server = serve(&project.path("repo")).expect("serve");
    std::fs::write(project.path("fixture.gpg"), key.public_keyring()).expect("keyring");
    std::fs::write(
        project.path("fx.himg"),
        himg_file(&server.base_url, r#""hello-fixture", "!perl-fixture""#),
    )
    .expect("himg");
    Fixture {
        project,
        server,
        key,
        repo,
    }
}

fn build(f: &Fixture, extra: &[&str]) -> Output {
    let mut args = vec!["build", "fx.himg", "--out", "out", "--json"];
    args.extend_from_slice(extra);
    f.project.himg(&args)
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).expect("json report")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn lock(f: &Fixture) -> serde_json::Value {
    let text = std::fs::read_to_string(f.project.path("fx.himg.lock")).expect("lock");
    serde_json::from_str(&text).expect("lock json")
}

fn verify_store(f: &Fixture) {
    let o = f.project.himg(&["store", "verify"]);
    assert_success(&o, "store verify after a refused build");
}

#[test]
fn resolve_lock_build_rebuild_and_update() {
    let mut debs = base_debs();
    debs.push(libgreet("1.0-1"));
    let f = fixture(debs, |_| {});

    let o = build(&f, &[]);
    assert_success(&o, "first build");
    let first = json(&o);
    let lock1 = lock(&f);
    let pkgs: Vec<String> = lock1["images"]["fx"]["architectures"]["amd64"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            format!(
                "{}={}",
                p["name"].as_str().unwrap_or(""),
                p["version"].as_str().unwrap_or("")
            )
        })
        .collect();
    // Alternatives (the first satisfiable one), a virtual package, and the exclusion.
    assert_eq!(
        pkgs,
        [
            "alt-b=2.0",
            "dash-fixture=1.0",
            "hello-fixture=1.0-1",
            "libgreet=1.0-1"
        ]
    );
    // The exclusion is recorded with what needed it, in the lock, the report and the status line.
    assert_eq!(
        lock1["images"]["fx"]["dropped"],
        serde_json::json!([{"name": "perl-fixture", "required_by": ["hello-fixture"]}])
    );
    assert_eq!(
        first["dropped"],
        serde_json::json!([{"name": "perl-fixture", "required_by": ["hello-fixture"]}])
    );
    assert!(
        stderr(&o).contains("excluded perl-fixture (needed by hello-fixture)"),
        "{}",
        stderr(&o)
    );
    // The lock keeps the URL as the .himg wrote it (a `mirror://` URL stays one).
    assert_eq!(
        lock1["images"]["fx"]["repositories"][0]["url"],
        f.server.base_url.as_str()
    );

    // The image: merged /usr, minimal docs, the dpkg database.
    require_tool("umoci");
    run_tool(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:fx", f.project.path("out").display()))
            .arg(f.project.path("bundle")),
    );
    let root = f.project.path("bundle/rootfs");
    assert!(root.join("usr/bin/hello-fixture").is_file());
    assert!(
        root.join("usr/bin/dash-fixture").is_file(),
        "./bin lands in /usr/bin"
    );
    assert!(
        std::fs::symlink_metadata(root.join("bin"))
            .expect("bin")
            .file_type()
            .is_symlink()
    );
    assert!(root.join("usr/share/doc/hello-fixture/copyright").is_file());
    assert!(!root.join("usr/share/doc/hello-fixture/README").exists());
    assert!(!root.join("usr/share/man").exists());
    assert!(!root.join("usr/bin/perl-fixture").exists());
    let listed = run_tool(
        Command::new("dpkg-query")
            .arg(format!(
                "--admindir={}",
                root.join("var/lib/dpkg").display()
            ))
            .args(["-W", "-f", "${Package}=${Version}\n"]),
    );
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort();
    assert_eq!(listed, pkgs);

    // Rebuild: nothing built, no network at all.
    let before = f.server.total_requests();
    let o = build(&f, &["--locked"]);
    assert_success(&o, "rebuild");
    assert_eq!(json(&o)["built"], 0);
    assert_eq!(
        f.server.total_requests(),
        before,
        "a locked rebuild makes no request"
    );

    // A new libgreet is published: update --check exits 10, update moves the lock.
    let mut debs = base_debs();
    debs.push(libgreet("1.1-1"));
    publish(&f.project.path("repo"), &f.key, &debs, |_| {});
    let o = f.project.himg(&["update", "fx.himg", "--check"]);
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        table.contains("libgreet") && table.contains("1.0-1") && table.contains("1.1-1"),
        "{table}"
    );
    assert_eq!(lock(&f), lock1, "--check writes nothing");
    let o = f.project.himg(&["update", "fx.himg"]);
    assert_success(&o, "update");
    let o = build(&f, &["--locked"]);
    assert_success(&o, "build after update");
    let second = json(&o);
    // Exactly one package layer and the system layer changed; every other layer is reused.
    let a = layer_digests(image(&first, "fx"));
    let b = layer_digests(image(&second, "fx"));
    assert_eq!(a.len(), b.len());
    let changed = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert_eq!(
        changed, 2,
        "libgreet's layer and the dpkg database layer:\n{a:?}\n{b:?}"
    );
}

#[test]
fn stale_lock_conflicts_and_unsatisfiable_requests_are_explained() {
    let mut debs = base_debs();
    debs.push(libgreet("1.0-1"));
    let f = fixture(debs, |_| {});
    assert_success(&build(&f, &[]), "first build");

    // The request changes: --locked refuses the stale lock.
    let port = f.server.base_url.clone();
    std::fs::write(
        f.project.path("fx.himg"),
        himg_file(&port, r#""hello-fixture", "alt-b", "!perl-fixture""#),
    )
    .expect("write");
    let o = build(&f, &["--locked"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("stale"), "{}", stderr(&o));

    // A conflict names both packages.
    std::fs::write(
        f.project.path("fx.himg"),
        himg_file(&port, r#""hello-fixture", "conflicting", "!perl-fixture""#),
    )
    .expect("write");
    let o = build(&f, &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("conflicting") && err.contains("libgreet"),
        "{err}"
    );

    // A missing package is named.
    std::fs::write(
        f.project.path("fx.himg"),
        himg_file(&port, r#""no-such-package""#),
    )
    .expect("write");
    let o = build(&f, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no-such-package"), "{}", stderr(&o));
    verify_store(&f);
}

/// Each broken link of the chain: its own message, nothing half-written in the store.
#[test]
fn every_broken_link_of_the_trust_chain_is_refused() {
    type Breaker = Box<dyn Fn(&Fixture)>;
    let cases: Vec<(&str, Breaker, &str)> = vec![
        (
            "wrong key",
            Box::new(|f: &Fixture| {
                let other = TestKey::generate("somebody else");
                std::fs::write(f.project.path("fixture.gpg"), other.public_keyring()).expect("key");
            }),
            "not signed by any key",
        ),
        (
            "tampered InRelease",
            Box::new(|f: &Fixture| f.repo.tamper_inrelease_body(SUITE).expect("tamper")),
            "does not verify",
        ),
        (
            "tampered Packages index",
            Box::new(|f: &Fixture| {
                f.repo
                    .tamper_index(SUITE, "main", "amd64", ".xz")
                    .expect("tamper");
                f.repo.remove_by_hash(SUITE).expect("by-hash");
            }),
            "sha256",
        ),
    ];
    for (what, break_it, expected) in cases {
        let mut debs = base_debs();
        debs.push(libgreet("1.0-1"));
        let f = fixture(debs, |_| {});
        break_it(&f);
        let o = build(&f, &[]);
        assert!(!o.status.success(), "{what}: the build must fail");
        let err = stderr(&o);
        assert!(
            err.contains(expected),
            "{what}: expected `{expected}` in:\n{err}"
        );
        assert!(
            !f.project.path("fx.himg.lock").exists(),
            "{what}: no lock written"
        );
        verify_store(&f);
    }

    // Expired Valid-Until.
    let mut debs = base_debs();
    debs.push(libgreet("1.0-1"));
    let f = fixture(debs, |s| {
        s.date(1_600_000_000).valid_until(Some(1_600_086_400));
    });
    let o = build(&f, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("expired"), "{}", stderr(&o));
    verify_store(&f);

    // A .deb tampered after locking: refused by the locked sha256.
    let mut debs = base_debs();
    debs.push(libgreet("1.0-1"));
    let f = fixture(debs, |_| {});
    assert_success(&f.project.himg(&["lock", "fx.himg"]), "lock");
    f.repo.tamper_deb("libgreet").expect("tamper deb");
    let o = build(&f, &["--locked"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("sha256"), "{}", stderr(&o));
    verify_store(&f);
}

#[test]
fn hostile_debs_are_refused_and_write_nothing_outside_the_store() {
    let hostile: Vec<(&str, DebBuilder, &str)> = vec![
        (
            "path traversal",
            DebBuilder::new("evil", "1.0", "amd64").hostile_parent_escape(),
            "evil",
        ),
        (
            "escaping symlink",
            DebBuilder::new("evil", "1.0", "amd64")
                .symlink("./usr/lib/evil-link", "../../../../../../etc/shadow"),
            "evil-link",
        ),
        (
            "device node",
            DebBuilder::new("evil", "1.0", "amd64").hostile_char_device(),
            "evil",
        ),
        (
            "lying size",
            DebBuilder::new("evil", "1.0", "amd64").hostile_size_lie(),
            "evil",
        ),
    ];
    for (what, builder, expected) in hostile {
        let evil = builder.build().expect("build hostile deb");
        let f = fixture(vec![evil], |_| {});
        let port = f.server.base_url.clone();
        std::fs::write(f.project.path("fx.himg"), himg_file(&port, r#""evil""#)).expect("write");
        let o = build(&f, &[]);
        assert!(!o.status.success(), "{what}: the build must fail");
        let err = stderr(&o);
        assert!(
            err.contains(expected),
            "{what}: expected `{expected}` in:\n{err}"
        );
        assert!(
            !f.project.path("escape").exists(),
            "{what}: wrote outside the store"
        );
        assert!(
            !std::path::Path::new("/escape").exists(),
            "{what}: wrote outside the store"
        );
        verify_store(&f);
    }
}

/// Package files lose their setuid/setgid bits by default, each one reported (a status line and
/// the JSON report); the image keeps one only by naming it in `keep_setuid` (through the
/// merged-/usr mapping: `/bin/su-fixture` is `/usr/bin/su-fixture`); a named path that no
/// package ships setuid is warned about. Directories keep their setgid bit.
#[test]
fn setuid_bits_are_stripped_unless_the_image_keeps_them() {
    use himg::image::read::ImageSource;
    let login = DebBuilder::new("login-fixture", "1.0", "amd64")
        .file("./bin/su-fixture", b"su\n", 0o4755)
        .file("./usr/bin/wall-fixture", b"wall\n", 0o2755)
        .file("./usr/bin/plain-fixture", b"plain\n", 0o755)
        .dir("./var/mail-fixture/", 0o2775)
        .build()
        .expect("login");
    let f = fixture(vec![login], |_| {});
    let port = f.server.base_url.clone();
    let modes = |out: &str| {
        let source = ImageSource::open(&f.project.path(out)).expect("open");
        let view = source.images().expect("images").remove(0);
        let mode = |p: &str| view.files.get(p).map(|e| e.mode).expect(p);
        (
            mode("usr/bin/su-fixture"),
            mode("usr/bin/wall-fixture"),
            mode("usr/bin/plain-fixture"),
            mode("var/mail-fixture"),
        )
    };

    std::fs::write(
        f.project.path("fx.himg"),
        himg_file(&port, r#""login-fixture""#),
    )
    .expect("write");
    let o = build(&f, &[]);
    assert_success(&o, "build without keep_setuid");
    assert_eq!(modes("out"), (0o755, 0o755, 0o755, 0o2775));
    let err = stderr(&o);
    assert!(
        err.contains("`/usr/bin/su-fixture` of login-fixture: setuid bit removed (mode 4755 → 0755); to keep it, add `keep_setuid = [\"/usr/bin/su-fixture\"]`"),
        "{err}"
    );
    assert!(
        err.contains(
            "`/usr/bin/wall-fixture` of login-fixture: setgid bit removed (mode 2755 → 0755)"
        ),
        "{err}"
    );
    let report = json(&o);
    assert_eq!(
        report["setuid_stripped"],
        serde_json::json!([
            {"path": "/usr/bin/su-fixture", "package": "login-fixture", "mode": "4755"},
            {"path": "/usr/bin/wall-fixture", "package": "login-fixture", "mode": "2755"},
        ])
    );
    // A no-op rebuild reports the same (from the stored outputs).
    let again = build(&f, &[]);
    assert_success(&again, "no-op rebuild");
    assert_eq!(json(&again)["setuid_stripped"], report["setuid_stripped"]);

    let kept = himg_file(&port, r#""login-fixture""#).replace(
        "  run_as = \"app\"\n",
        "  run_as = \"app\"\n  keep_setuid = [\"/bin/su-fixture\", \"/usr/bin/not-shipped\"]\n",
    );
    std::fs::write(f.project.path("fx.himg"), kept).expect("write");
    let o = f
        .project
        .himg(&["build", "fx.himg", "--out", "kept", "--json"]);
    assert_success(&o, "build with keep_setuid");
    assert_eq!(modes("kept"), (0o4755, 0o755, 0o755, 0o2775));
    let err = stderr(&o);
    assert!(!err.contains("`/usr/bin/su-fixture` of"), "{err}");
    assert!(
        err.contains("image `fx`: `keep_setuid` names `/usr/bin/not-shipped`, but no package of the image ships it setuid or setgid"),
        "{err}"
    );
    assert_eq!(
        json(&o)["setuid_stripped"],
        serde_json::json!([
            {"path": "/usr/bin/wall-fixture", "package": "login-fixture", "mode": "2755"},
        ])
    );
    verify_store(&f);
}

#[test]
fn an_image_with_packages_has_base_files_directories_and_says_which_scripts_did_not_run() {
    use himg::image::read::ImageSource;
    // A package that ships /srv itself (with its own mode): the package's entry wins. Its
    // install-time scripts are not run, and the build says so (prerm acts only on removal).
    let srv = DebBuilder::new("srv-fixture", "1.0", "amd64")
        .dir("./srv/", 0o750)
        .file("./usr/bin/srv-fixture", b"srv\n", 0o755)
        .script("postinst", "#!/bin/sh\nadduser --system srv\n")
        .script("preinst", "#!/bin/sh\nexit 0\n")
        .script("prerm", "#!/bin/sh\nexit 0\n")
        .build()
        .expect("srv");
    let f = fixture(vec![srv], |_| {});
    let port = f.server.base_url.clone();
    std::fs::write(
        f.project.path("fx.himg"),
        himg_file(&port, r#""srv-fixture""#),
    )
    .expect("write");
    let o = build(&f, &[]);
    assert_success(&o, "build");
    let source = ImageSource::open(&f.project.path("out")).expect("open");
    let view = source.images().expect("images").remove(0);
    let dir = |p: &str| {
        let e = view.files.get(p).unwrap_or_else(|| panic!("{p} missing"));
        (e.mode, e.uid, e.gid)
    };
    // Programs need these as apt leaves them (base-files): temp dirs, /run for pid files, logs.
    assert_eq!(dir("tmp"), (0o1777, 0, 0));
    assert_eq!(dir("var/tmp"), (0o1777, 0, 0));
    assert_eq!(dir("run"), (0o755, 0, 0));
    assert_eq!(dir("var/log"), (0o755, 0, 0));
    assert_eq!(dir("root"), (0o700, 0, 0));
    assert_eq!(dir("srv"), (0o750, 0, 0));

    let expected =
        serde_json::json!([{"package": "srv-fixture", "scripts": ["preinst", "postinst"]}]);
    assert_eq!(json(&o)["scripts_not_run"], expected);
    let err = stderr(&o);
    assert!(
        err.contains("install scripts of 1 package: srv-fixture (preinst, postinst)"),
        "{err}"
    );
    // A no-op rebuild reports the same, from the stored unpack outputs.
    let again = build(&f, &[]);
    assert_success(&again, "no-op rebuild");
    assert_eq!(json(&again)["scripts_not_run"], expected);
    verify_store(&f);
}

#[test]
fn two_packages_shipping_one_path_differently_are_named() {
    let one = DebBuilder::new("pkg-one", "1.0", "amd64")
        .file("./usr/share/shared/config", b"one\n", 0o644)
        .build()
        .expect("one");
    let two = DebBuilder::new("pkg-two", "1.0", "amd64")
        .file("./usr/share/shared/config", b"two\n", 0o644)
        .build()
        .expect("two");
    let f = fixture(vec![one, two], |_| {});
    let port = f.server.base_url.clone();
    std::fs::write(
        f.project.path("fx.himg"),
        himg_file(&port, r#""pkg-one", "pkg-two""#),
    )
    .expect("write");
    let o = build(&f, &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("pkg-one")
            && err.contains("pkg-two")
            && err.contains("/usr/share/shared/config"),
        "{err}"
    );
    verify_store(&f);
}

/// A platform team's golden base declares the packages; product images import it and add their
/// own content. The base's packages are locked once, in the base's own lock; product builds reuse
/// the base's layers as they are; `himg update` on the base moves its lock, and every product
/// image rebuilt afterwards carries the new package (the cascade) with its own layers reused.
#[test]
fn golden_base_packages_are_locked_once_and_updates_cascade() {
    let mut debs = base_debs();
    debs.push(libgreet("1.0-1"));
    let f = fixture(debs, |_| {});
    std::fs::write(
        f.project.path("platform.himg"),
        format!(
            r#"image "platform" {{
  repository "fixture" {{
    url = "{}"
    suites = ["{SUITE}"]
    keyring = "fixture.gpg"
  }}
  packages = ["libgreet"]
  group "app" {{ gid = 1000 }}
  user "app" {{ uid = 1000, gid = 1000 }}
  run_as = "app"
}}
"#,
            f.server.base_url
        ),
    )
    .expect("platform.himg");
    for name in ["api", "worker"] {
        std::fs::write(
            f.project.path(&format!("{name}.himg")),
            format!(
                "let platform = import \"platform.himg\"\n\nimage \"{name}\" {{\n  from = platform.images.platform\n  file \"/srv/{name}.conf\" {{ text = \"{name}\\n\" }}\n}}\n"
            ),
        )
        .expect("product himg");
    }
    let build = |name: &str| {
        let o = f.project.himg(&[
            "build",
            &format!("{name}.himg"),
            "--out",
            &format!("out-{name}"),
            "--json",
        ]);
        assert_success(&o, name);
        json(&o)
    };
    let api1 = build("api");
    // The packages are locked in the file that declares them, never in the product's.
    assert!(f.project.path("platform.himg.lock").exists());
    assert!(!f.project.path("api.himg.lock").exists());
    // A product's packages are its base's: `why` follows the `from` chain to the base's lock.
    let o = f
        .project
        .himg(&["why", "api.himg", "api", "libgreet", "--json"]);
    assert_success(&o, "why in a product image");
    assert_eq!(json(&o)["paths"][0]["request"], "libgreet");
    let worker1 = build("worker");
    assert_eq!(worker1["built"].as_u64().map(|b| b > 0), Some(true));
    let (a1, w1) = (
        layer_digests(image(&api1, "api")),
        layer_digests(image(&worker1, "worker")),
    );
    // Both products share every base layer, byte for byte: only the top layer differs.
    assert_eq!(a1.len(), w1.len());
    assert_eq!(a1[..a1.len() - 1], w1[..w1.len() - 1]);

    // libgreet 1.1-1 is published; the platform team updates its lock.
    let mut debs = base_debs();
    debs.push(libgreet("1.1-1"));
    publish(&f.project.path("repo"), &f.key, &debs, |_| {});
    let o = f
        .project
        .himg(&["update", "platform.himg", "--check", "--json"]);
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert_eq!(json(&o)["updates"][0]["available"], "1.1-1");
    assert_success(&f.project.himg(&["update", "platform.himg"]), "update");

    // Every product picks it up at its next build; its own layer is reused.
    for (name, before) in [("api", &a1), ("worker", &w1)] {
        let o = f.project.himg(&[
            "build",
            &format!("{name}.himg"),
            "--out",
            &format!("out-{name}"),
            "--json",
            "--locked",
        ]);
        assert_success(&o, &format!("{name} after the base update"));
        let after = layer_digests(image(&json(&o), name));
        assert_ne!(&after, before, "{name} carries the new package");
        assert_eq!(after.last(), before.last(), "{name}'s own layer is reused");
        let inspect = f
            .project
            .himg(&["inspect", &format!("out-{name}"), "--json"]);
        assert_success(&inspect, "inspect");
        let text = String::from_utf8_lossy(&inspect.stdout).into_owned();
        assert!(text.contains("libgreet=1.1-1"), "{text}");
    }
}

/// `himg why`: the dependency paths from the requested packages, with the relation used at each
/// step (a versioned dependency, a virtual package, an alternative); an excluded package says what
/// needed it; a package the image does not have is refused (exit 1). Before any build the `.deb`s
/// are fetched by their locked sha256; once the store has them it needs no network.
#[test]
fn why_explains_each_package_from_the_lock_and_the_locked_debs() {
    let mut debs = base_debs();
    debs.push(libgreet("1.0-1"));
    let f = fixture(debs, |_| {});
    assert_success(&f.project.himg(&["lock", "fx.himg"]), "lock");

    // Nothing built yet: why fetches what it reads.
    let o = f.project.himg(&["why", "fx.himg", "fx", "libgreet"]);
    assert_success(&o, "why libgreet");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        text.contains("libgreet 1.0-1 is in image `fx` (amd64):"),
        "{text}"
    );
    assert!(text.contains("hello-fixture → libgreet"), "{text}");
    assert!(text.contains("requested as `hello-fixture`"), "{text}");
    assert!(
        text.contains("hello-fixture  Depends: libgreet (>= 1.0)"),
        "{text}"
    );

    // Built: the .debs are in the store, and why makes no request at all.
    assert_success(&build(&f, &["--locked"]), "build");
    let before = f.server.total_requests();
    let o = f.project.himg(&["why", "fx.himg", "fx", "dash-fixture"]);
    assert_success(&o, "why dash-fixture");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        text.contains("Depends: sh-provider (dash-fixture provides sh-provider)"),
        "{text}"
    );
    let o = f.project.himg(&["why", "fx.himg", "fx", "alt-b", "--json"]);
    assert_success(&o, "why alt-b --json");
    let answer = json(&o);
    assert_eq!(answer["status"], "installed");
    assert_eq!(answer["version"], "2.0");
    assert_eq!(answer["total_paths"], 1);
    assert_eq!(answer["paths"][0]["request"], "hello-fixture");
    assert_eq!(
        answer["paths"][0]["steps"][0],
        serde_json::json!({
            "from": "hello-fixture",
            "field": "Depends",
            "group": "alt-missing | alt-b",
            "relation": "alt-b",
            "target": "alt-b",
        })
    );
    // A virtual name: the paths to what provides it.
    let o = f
        .project
        .himg(&["why", "fx.himg", "fx", "sh-provider", "--json"]);
    assert_success(&o, "why sh-provider");
    assert_eq!(json(&o)["status"], "virtual");
    assert_eq!(json(&o)["provided_by"], serde_json::json!(["dash-fixture"]));
    // A requested package is its own reason.
    let o = f
        .project
        .himg(&["why", "fx.himg", "fx", "hello-fixture", "--json"]);
    assert_success(&o, "why hello-fixture");
    assert_eq!(json(&o)["paths"][0]["steps"], serde_json::json!([]));
    assert_eq!(
        f.server.total_requests(),
        before,
        "why reads the store, not the network"
    );

    // The excluded package: what needed it, and the paths to that.
    let o = f.project.himg(&["why", "fx.himg", "fx", "perl-fixture"]);
    assert_success(&o, "why perl-fixture");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        text.contains(
            "perl-fixture is excluded from image `fx` (amd64); it was needed by hello-fixture"
        ),
        "{text}"
    );
    let o = f
        .project
        .himg(&["why", "fx.himg", "fx", "perl-fixture", "--json"]);
    assert_eq!(json(&o)["status"], "excluded");
    assert_eq!(
        json(&o)["required_by"],
        serde_json::json!(["hello-fixture"])
    );

    // Not in the image: refused, exit 1, naming the package and the image.
    let o = f.project.himg(&["why", "fx.himg", "fx", "conflicting"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("`conflicting` is not in image `fx` (amd64)"),
        "{}",
        stderr(&o)
    );
    // Another architecture than the image's: refused the same way.
    let o = f
        .project
        .himg(&["why", "fx.himg", "fx", "libgreet", "--arch", "arm64"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("arm64"), "{}", stderr(&o));
}
