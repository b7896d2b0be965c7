//! The one configuration file: `himg config --json` shows each value and its source, unknown keys
//! are refused naming the file and the key, `[mirrors]` feeds mirror resolution, and
//! `HIMG_CONFIG_DIR` still holds the keys. Every run has a cleared environment whose HOME, config
//! file and directories are temporary, never the user's.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use himg::debian::mirror::MirrorResolver;
use serde_json::Value;

const FULL: &str = r#"
[mirrors]
debian = "http://mirror.example/debian"

[registries."registry.example:5000"]
insecure = true

[cache]
substituters = ["file:///srv/cache"]
trusted-keys = ["team-1:AAAA"]

[keys]
default = "team-1"

[promote]
trusted-keys = ["release-1:BBBB"]
"#;

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `himg ARGS` with only HOME (inside the sandbox) and `env` set.
    fn himg(&self, env: &[(&str, &Path)], args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_himg"));
        cmd.env_clear()
            .current_dir(self.dir.path())
            .env("HOME", self.path("home"))
            .env("HIMG_STORE", self.path("store"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args).output().expect("run himg")
    }

    fn config_json(&self, env: &[(&str, &Path)]) -> Value {
        let o = self.himg(env, &["config", "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

/// The `(value, source)` of `key` in `himg config --json` output.
fn get(json: &Value, key: &str) -> (Value, String) {
    let s = json["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no setting {key} in {json:#}"));
    (s["value"].clone(), s["source"].as_str().unwrap().to_owned())
}

#[test]
fn config_json_shows_file_and_environment_values_with_their_sources() {
    let s = Sandbox::new();
    let file = s.write("elsewhere/himg.toml", FULL);
    let file_src = format!("file {}", file.display());
    let dir = s.path("confdir");
    let json = s.config_json(&[
        ("HIMG_CONFIG", &file),
        ("HIMG_CONFIG_DIR", &dir),
        (
            "HIMG_MIRROR_DEBIAN_SECURITY",
            Path::new("http://mirror.example/sec"),
        ),
        ("HIMG_SUBSTITUTERS", Path::new("file:///a, file:///b")),
        ("SOURCE_DATE_EPOCH", Path::new("42")),
        ("HIMG_CACHE_TOKEN", Path::new("hunter2")),
    ]);
    assert_eq!(json["file"], file.display().to_string());
    assert_eq!(json["file_exists"], true);
    let file_json = Value::from(file.display().to_string());
    assert_eq!(
        get(&json, "config.file"),
        (file_json, "env HIMG_CONFIG".into())
    );
    let keys = Value::from(dir.join("keys").display().to_string());
    assert_eq!(get(&json, "keys.dir"), (keys, "env HIMG_CONFIG_DIR".into()));
    let store = Value::from(s.path("store").display().to_string());
    assert_eq!(get(&json, "store"), (store, "env HIMG_STORE".into()));
    assert_eq!(
        get(&json, "mirrors.debian"),
        ("http://mirror.example/debian".into(), file_src.clone())
    );
    assert_eq!(
        get(&json, "mirrors.debian-security"),
        (
            "http://mirror.example/sec".into(),
            "env HIMG_MIRROR_DEBIAN_SECURITY".into()
        )
    );
    assert_eq!(
        get(&json, "registries.\"registry.example:5000\".insecure"),
        (true.into(), file_src.clone())
    );
    assert_eq!(
        get(&json, "cache.substituters"),
        (
            serde_json::json!(["file:///a", "file:///b"]),
            "env HIMG_SUBSTITUTERS".into()
        )
    );
    assert_eq!(
        get(&json, "cache.trusted-keys"),
        (serde_json::json!(["team-1:AAAA"]), file_src.clone())
    );
    assert_eq!(
        get(&json, "cache.sign-key"),
        (Value::Null, "default".into())
    );
    assert_eq!(
        get(&json, "keys.default"),
        ("team-1".into(), file_src.clone())
    );
    assert_eq!(
        get(&json, "promote.trusted-keys"),
        (serde_json::json!(["release-1:BBBB"]), file_src)
    );
    assert_eq!(
        get(&json, "build.source-date-epoch"),
        ("42".into(), "env SOURCE_DATE_EPOCH".into())
    );
    // Secrets are never printed.
    assert_eq!(
        get(&json, "cache.token"),
        ("<set>".into(), "env HIMG_CACHE_TOKEN".into())
    );
    assert!(!json.to_string().contains("hunter2"));
    assert_eq!(
        get(&json, "registry.timeout"),
        ("60".into(), "default".into())
    );
}

#[test]
fn the_file_is_found_in_the_config_dir_xdg_or_home() {
    let s = Sandbox::new();
    // Nothing set: HOME's, which need not exist.
    let json = s.config_json(&[]);
    let home_file = s.path("home/.config/himg/config.toml");
    assert_eq!(json["file"], home_file.display().to_string());
    assert_eq!(json["file_exists"], false);
    assert_eq!(get(&json, "config.file").1, "default");

    let xdg = s.path("xdg");
    s.write("xdg/himg/config.toml", "[keys]\ndefault = \"x\"\n");
    let json = s.config_json(&[("XDG_CONFIG_HOME", &xdg)]);
    assert_eq!(get(&json, "config.file").1, "env XDG_CONFIG_HOME");
    assert_eq!(get(&json, "keys.default").0, "x");

    // HIMG_CONFIG_DIR wins over XDG_CONFIG_HOME, for the file and the keys.
    let dir = s.path("cd");
    s.write("cd/config.toml", "[keys]\ndefault = \"d\"\n");
    let json = s.config_json(&[("XDG_CONFIG_HOME", &xdg), ("HIMG_CONFIG_DIR", &dir)]);
    assert_eq!(get(&json, "config.file").1, "env HIMG_CONFIG_DIR");
    assert_eq!(get(&json, "keys.default").0, "d");
}

#[test]
fn unknown_keys_are_refused_naming_the_file_and_the_key() {
    let s = Sandbox::new();
    let file = s.write("c.toml", "[cache]\nsubstituters = []\nsign_key = \"a\"\n");
    let o = s.himg(&[("HIMG_CONFIG", &file)], &["config", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("`cache.sign_key`"), "{err}");
    assert!(err.contains("sign-key"), "the known keys are listed: {err}");

    let file = s.write(
        "d.toml",
        "[mirrors]\ndebian = \"http://mirror.example/d\"\n[mirorrs]\n",
    );
    let o = s.himg(&[("HIMG_CONFIG", &file)], &["config"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("`mirorrs`") && err.contains("d.toml"), "{err}");

    // A file named by HIMG_CONFIG must exist.
    let o = s.himg(&[("HIMG_CONFIG", &s.path("missing.toml"))], &["config"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.toml"));
}

#[test]
fn mirrors_of_the_unified_file_are_honoured_and_the_file_is_checked() {
    let s = Sandbox::new();
    let file = s.write("himg.toml", FULL);
    let empty_root = s.path("root");
    let r = MirrorResolver::new(Vec::<(String, String)>::new(), Some(&file), &empty_root).unwrap();
    assert_eq!(
        r.resolve("mirror://debian/dists/bookworm/Release").unwrap(),
        "http://mirror.example/debian/dists/bookworm/Release"
    );
    // The environment still wins over the file.
    let r = MirrorResolver::new(
        [("HIMG_MIRROR_DEBIAN", "http://other.example/debian")],
        Some(&file),
        &empty_root,
    )
    .unwrap();
    assert_eq!(
        r.resolve("mirror://debian/x").unwrap(),
        "http://other.example/debian/x"
    );
    // The mirror reader refuses what every reader refuses.
    let bad = s.write(
        "bad.toml",
        "[mirrors]\ndebian = \"http://m/d\"\n[cache]\nnope = 1\n",
    );
    let err = MirrorResolver::new(Vec::<(String, String)>::new(), Some(&bad), &empty_root)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.toml") && err.contains("`cache.nope`"),
        "{err}"
    );
}

#[test]
fn keys_stay_in_the_config_dir_when_himg_config_names_the_file() {
    let s = Sandbox::new();
    let file = s.write("elsewhere/himg.toml", "[keys]\ndefault = \"team-1\"\n");
    let dir = s.path("confdir");
    let env: [(&str, &Path); 2] = [("HIMG_CONFIG", &file), ("HIMG_CONFIG_DIR", &dir)];
    let o = s.himg(&env, &["key", "generate", "team-1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dir.join("keys/team-1.secret").is_file());
    let o = s.himg(&env, &["key", "list", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list[0]["name"], "team-1");
    // Without HIMG_CONFIG, the same directory's config.toml is the file.
    s.write("confdir/config.toml", "[keys]\ndefault = \"team-1\"\n");
    let json = s.config_json(&[("HIMG_CONFIG_DIR", &dir)]);
    assert_eq!(json["file"], dir.join("config.toml").display().to_string());
}
