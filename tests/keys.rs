//! Signing keys on the command line: `himg key generate|list|public`, and `--sign-key NAME|FILE`
//! resolved the same way by `build --push-to` and `cache push`. Every run has its own config
//! directory (`HIMG_CONFIG_DIR`), never the user's.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};

use common::{Project, assert_success};
use serde_json::Value;

/// `himg ARGS` with the project's store and a config directory inside the project.
fn himg(p: &Project, args: &[&str]) -> Output {
    Command::new(common::himg_bin())
        .current_dir(p.dir.path())
        .env("HIMG_STORE", &p.store)
        .env("HIMG_CONFIG_DIR", p.path("config"))
        .env_remove("SOURCE_DATE_EPOCH")
        .args(args)
        .output()
        .expect("run himg")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Generates key `name`; returns its public key `NAME:base64`.
fn generate(p: &Project, name: &str) -> String {
    let o = himg(p, &["key", "generate", name]);
    assert_success(&o, "himg key generate");
    stdout(&o).trim().to_owned()
}

#[test]
fn keys_are_listed_shown_and_never_overwritten() {
    let p = Project::new();
    let o = himg(&p, &["key", "list", "--json"]);
    assert_success(&o, "key list (none)");
    assert_eq!(
        serde_json::from_slice::<Value>(&o.stdout).unwrap(),
        Value::Array(vec![])
    );
    let o = himg(&p, &["key", "list"]);
    assert_success(&o, "key list (none, human)");
    assert!(
        stderr(&o).contains("himg key generate NAME"),
        "{}",
        stderr(&o)
    );

    let zed = generate(&p, "zed-1");
    let alpha = generate(&p, "alpha");
    assert!(alpha.starts_with("alpha:"), "{alpha}");

    let o = himg(&p, &["key", "list", "--json"]);
    assert_success(&o, "key list");
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let keys = list.as_array().unwrap();
    assert_eq!(keys.len(), 2, "{list}");
    assert_eq!(keys[0]["name"], "alpha", "sorted by name: {list}");
    assert_eq!(keys[0]["public"], alpha.as_str());
    assert_eq!(keys[1]["name"], "zed-1");
    assert_eq!(keys[1]["public"], zed.as_str());
    let file = p.path("config/keys/alpha.secret");
    assert_eq!(keys[0]["file"], file.display().to_string().as_str());
    let human = stdout(&himg(&p, &["key", "list"]));
    assert!(human.starts_with(&format!("alpha\t{alpha}\t")), "{human}");

    // `key public` by NAME and by FILE: what `--trusted-key` takes.
    let o = himg(&p, &["key", "public", "alpha"]);
    assert_success(&o, "key public NAME");
    assert_eq!(stdout(&o).trim(), alpha);
    let o = himg(&p, &["key", "public", file.to_str().unwrap()]);
    assert_eq!(stdout(&o).trim(), alpha, "{}", stderr(&o));

    // The same name twice: a clear refusal, the key unchanged.
    let before = std::fs::read(&file).unwrap();
    let o = himg(&p, &["key", "generate", "alpha"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "key `alpha` already exists at {}; choose another name or remove it",
            file.display()
        )),
        "{err}"
    );
    assert!(!err.contains("os error"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), before);

    // An unknown name: both places looked, and the names there.
    let o = himg(&p, &["key", "public", "nope"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("no key `nope`: no file `nope` here"), "{err}");
    assert!(
        err.contains(&p.path("config/keys").display().to_string()),
        "{err}"
    );
    assert!(err.contains("alpha, zed-1"), "{err}");
    let o = himg(&p, &["key", "public", "./missing.secret"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no secret key file `./missing.secret`"),
        "{}",
        stderr(&o)
    );
}

/// The signatures in a `file://` cache: every `NAME:` prefix of a signature found in its files.
fn signers(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            for sig in v["signatures"].as_array().into_iter().flatten() {
                if let Some((name, _)) = sig.as_str().and_then(|s| s.split_once(':')) {
                    out.insert(name.to_owned());
                }
            }
        }
    }
    out
}

#[test]
fn sign_key_takes_a_name_on_build_and_cache_push() {
    let p = Project::new();
    generate(&p, "team-a");
    generate(&p, "team-b");
    let url = |d: &str| format!("file://{}", p.path(d).display());

    // Two keys and no --sign-key: ambiguous, named.
    let o = himg(&p, &["cache", "push", &url("c0"), "examples/prebuilt.himg"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("several keys"), "{}", stderr(&o));
    assert!(stderr(&o).contains("team-a, team-b"), "{}", stderr(&o));

    let o = himg(
        &p,
        &[
            "build",
            "examples/prebuilt.himg",
            "--out",
            "out",
            "--push-to",
            &url("c1"),
            "--sign-key",
            "team-b",
        ],
    );
    assert_success(&o, "build --push-to --sign-key NAME");
    assert_eq!(signers(&p.path("c1")), ["team-b".to_owned()].into());

    let o = himg(
        &p,
        &[
            "cache",
            "push",
            &url("c2"),
            "examples/prebuilt.himg",
            "--sign-key",
            "team-a",
        ],
    );
    assert_success(&o, "cache push --sign-key NAME");
    assert_eq!(signers(&p.path("c2")), ["team-a".to_owned()].into());

    // A FILE still works, and wins over a name.
    let file = p.path("config/keys/team-b.secret");
    let o = himg(
        &p,
        &[
            "cache",
            "push",
            &url("c3"),
            "examples/prebuilt.himg",
            "--sign-key",
            file.to_str().unwrap(),
        ],
    );
    assert_success(&o, "cache push --sign-key FILE");
    assert_eq!(signers(&p.path("c3")), ["team-b".to_owned()].into());

    // An unknown name: exit 1, both places looked and the names there; nothing pushed.
    let o = himg(
        &p,
        &[
            "cache",
            "push",
            &url("c4"),
            "examples/prebuilt.himg",
            "--sign-key",
            "team-c",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("no key `team-c`"), "{err}");
    assert!(err.contains("team-c.secret"), "{err}");
    assert!(err.contains("team-a, team-b"), "{err}");
}
