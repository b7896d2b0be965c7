//! `mirror://NAME/…` resolution: environment, then config file, then the host's apt sources.

use std::path::Path;

use himg::debian::mirror::{MirrorError, MirrorOrigin, MirrorResolver};

fn apt_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tmp");
    let etc = root.path().join("etc/apt");
    std::fs::create_dir_all(etc.join("sources.list.d")).expect("mkdir");
    std::fs::write(
        etc.join("sources.list"),
        "# main file\ndeb http://list.test/debian bookworm main\n",
    )
    .expect("write");
    std::fs::write(
        etc.join("sources.list.d/security.list"),
        "deb [signed-by=/usr/share/keyrings/k.gpg] http://list.test/debian-security/ bookworm-security main\n",
    )
    .expect("write");
    std::fs::write(
        etc.join("sources.list.d/ports.sources"),
        "Types: deb\nURIs: https://sources.test/mirror/debian-ports\nSuites: sid\nComponents: main\n\
         Signed-By: /usr/share/keyrings/ports.gpg\n\n\
         Types: deb\nURIs: http://disabled.test/other\nSuites: x\nEnabled: no\n",
    )
    .expect("write");
    std::fs::write(
        etc.join("sources.list.d/ignored.txt"),
        "deb http://x.test/ignored y z\n",
    )
    .expect("write");
    root
}

fn config(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn env_wins_then_config_then_apt_sources() {
    let root = apt_root();
    let cfg = config(
        root.path(),
        "[mirrors]\ndebian = \"http://config.test/debian/\"\ndebian-ports = \"file:///srv/ports\"\n",
    );
    let env = [
        ("HIMG_MIRROR_DEBIAN", "https://env.test/debian"),
        ("PATH", "/bin"),
    ];
    let r = MirrorResolver::new(env, Some(&cfg), root.path()).expect("resolver");
    assert_eq!(
        r.resolve("mirror://debian/dists/bookworm/InRelease")
            .expect("env"),
        "https://env.test/debian/dists/bookworm/InRelease"
    );
    assert!(
        matches!(r.base("debian").expect("env").1, MirrorOrigin::Env(v) if v == "HIMG_MIRROR_DEBIAN")
    );
    // config beats apt sources
    assert_eq!(
        r.resolve("mirror://debian-ports/x").expect("config"),
        "file:///srv/ports/x"
    );
    // apt sources: one-line .list in sources.list.d, trailing slash dropped
    assert_eq!(
        r.resolve("mirror://debian-security/dists").expect("apt"),
        "http://list.test/debian-security/dists"
    );

    let no_env = MirrorResolver::new(Vec::<(String, String)>::new(), Some(&cfg), root.path())
        .expect("resolver");
    assert_eq!(
        no_env.resolve("mirror://debian").expect("config"),
        "http://config.test/debian"
    );

    let apt_only =
        MirrorResolver::new(Vec::<(String, String)>::new(), None, root.path()).expect("resolver");
    assert_eq!(
        apt_only.resolve("mirror://debian/pool").expect("apt"),
        "http://list.test/debian/pool"
    );
    let (base, origin) = apt_only.base("debian").expect("apt");
    assert_eq!(base, "http://list.test/debian");
    assert_eq!(
        origin,
        MirrorOrigin::AptSource(root.path().join("etc/apt/sources.list"))
    );
    let suites: Vec<&str> = apt_only
        .host_sources()
        .iter()
        .filter(|s| s.mirror_name() == Some("debian"))
        .flat_map(|s| s.suites.iter().map(String::as_str))
        .collect();
    assert_eq!(suites, vec!["bookworm"]);
}

#[test]
fn deb822_sources_are_read_and_disabled_entries_skipped() {
    let root = apt_root();
    let r =
        MirrorResolver::new(Vec::<(String, String)>::new(), None, root.path()).expect("resolver");
    assert_eq!(
        r.resolve("mirror://debian-ports/dists/sid")
            .expect("deb822"),
        "https://sources.test/mirror/debian-ports/dists/sid"
    );
    let src = r
        .host_sources()
        .iter()
        .find(|s| s.mirror_name() == Some("debian-ports"))
        .expect("source");
    assert_eq!(
        src.signed_by.as_deref(),
        Some("/usr/share/keyrings/ports.gpg")
    );
    assert!(
        r.resolve("mirror://other/x").is_err(),
        "Enabled: no is skipped"
    );
    assert!(
        r.resolve("mirror://ignored/x").is_err(),
        "*.txt is not read"
    );
}

#[test]
fn unresolved_names_say_what_was_tried_and_how_to_fix() {
    let root = apt_root();
    let missing_cfg = root.path().join("nope.toml");
    let r = MirrorResolver::new(
        Vec::<(String, String)>::new(),
        Some(&missing_cfg),
        root.path(),
    )
    .expect("resolver");
    let err = r
        .resolve("mirror://ubuntu-ports/dists")
        .expect_err("unknown");
    let msg = err.to_string();
    assert!(matches!(err, MirrorError::Unresolved { .. }));
    assert!(
        msg.contains("cannot resolve `mirror://ubuntu-ports`"),
        "{msg}"
    );
    assert!(msg.contains("$HIMG_MIRROR_UBUNTU_PORTS (unset)"), "{msg}");
    assert!(msg.contains("nope.toml (no such file)"), "{msg}");
    assert!(msg.contains("sources.list"), "{msg}");
    assert!(msg.contains("hint: set HIMG_MIRROR_UBUNTU_PORTS="), "{msg}");

    let empty = tempfile::tempdir().expect("tmp");
    let r =
        MirrorResolver::new(Vec::<(String, String)>::new(), None, empty.path()).expect("resolver");
    let msg = r.resolve("mirror://debian").expect_err("none").to_string();
    assert!(msg.contains("host apt sources (none found)"), "{msg}");
}

#[test]
fn pass_through_and_bad_urls() {
    let empty = tempfile::tempdir().expect("tmp");
    let r =
        MirrorResolver::new(Vec::<(String, String)>::new(), None, empty.path()).expect("resolver");
    for u in ["http://a.test/x", "https://a.test/x", "file:///srv/repo"] {
        assert_eq!(r.resolve(u).expect("pass"), u);
    }
    assert!(matches!(
        r.resolve("ftp://a.test/x"),
        Err(MirrorError::UnsupportedScheme { .. })
    ));
    assert!(matches!(
        r.resolve("mirror:///x"),
        Err(MirrorError::InvalidMirrorUrl { .. })
    ));
    assert!(matches!(
        r.resolve("mirror://a b/x"),
        Err(MirrorError::InvalidMirrorUrl { .. })
    ));
    assert!(matches!(
        r.resolve("mirror://debian/../x"),
        Err(MirrorError::InvalidMirrorUrl { .. })
    ));
    let bad = MirrorResolver::new(
        [("HIMG_MIRROR_DEBIAN", "ftp://old.test/debian")],
        None,
        empty.path(),
    )
    .expect("resolver");
    let err = bad.resolve("mirror://debian/x").expect_err("bad base");
    assert!(err.to_string().contains("$HIMG_MIRROR_DEBIAN"), "{err}");
}

#[test]
fn bad_config_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config(dir.path(), "[mirrors]\ndebian = 42\n");
    let err = MirrorResolver::new(Vec::<(String, String)>::new(), Some(&cfg), dir.path())
        .expect_err("bad");
    assert!(
        err.to_string().contains("config.toml") && err.to_string().contains("debian = 42"),
        "{err}"
    );
    let cfg = config(dir.path(), "[mirrors\n");
    assert!(matches!(
        MirrorResolver::new(Vec::<(String, String)>::new(), Some(&cfg), dir.path()),
        Err(MirrorError::Config(
            himg::config::ConfigError::Syntax { .. }
        ))
    ));
}
