//! Parsed Packages indexes kept across processes (issue 15): a second `himg lock` reads the index's
//! parsed form from the index cache instead of the index (its text need not even be there), a
//! damaged parsed form is ignored and rewritten, and every way of getting the packages locks the
//! same bytes. Hermetic: a signed fixture repository on 127.0.0.1, temporary stores, config
//! directory and home.

#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::{DebBuilder, TestKey, TestServer, serve_fixture};

const SUITE: &str = "stable";

struct Fixture {
    dir: tempfile::TempDir,
    server: TestServer,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = TestKey::generate("index cache archive");
        let debs = vec![
            DebBuilder::new("app", "1.0-1", "amd64")
                .depends("libfoo (>= 1.0), shell | sh-provider")
                .file("./usr/bin/app", b"#!/bin/sh\n", 0o755)
                .build()
                .expect("app"),
            DebBuilder::new("libfoo", "1.2", "amd64")
                .file("./usr/lib/libfoo.so.1", b"foo\n", 0o644)
                .build()
                .expect("libfoo"),
            DebBuilder::new("dash-ish", "2.0", "amd64")
                .provides("sh-provider")
                .file("./bin/dash-ish", b"sh\n", 0o755)
                .build()
                .expect("dash-ish"),
        ];
        let server = serve_fixture(dir.path(), &key, SUITE, &debs).expect("fixture");
        std::fs::create_dir_all(dir.path().join("config")).expect("config dir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        std::fs::write(
            dir.path().join("app.himg"),
            format!(
                "image \"app\" {{\n  repository \"fixture\" {{\n    url = \"{}\"\n    suites = [\"{SUITE}\"]\n    keyring = \"fixture.gpg\"\n  }}\n  packages = [\"app\"]\n}}\n",
                server.base_url
            ),
        )
        .expect("himg");
        Fixture { dir, server }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `himg lock app.himg` against `store` (the lock file removed first); returns the lock.
    fn lock(&self, store: &str) -> String {
        let _ = std::fs::remove_file(self.path("app.himg.lock"));
        let o = self.himg(store, &["lock", "app.himg"]);
        assert!(
            o.status.success(),
            "himg lock failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::read_to_string(self.path("app.himg.lock")).expect("lock file")
    }

    fn himg(&self, store: &str, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_himg"))
            .current_dir(self.dir.path())
            .env("HIMG_STORE", self.path(store))
            .env("HIMG_CONFIG_DIR", self.path("config"))
            .env("HOME", self.path("home"))
            .env_remove("HIMG_CONFIG")
            .env_remove("SOURCE_DATE_EPOCH")
            .args(args)
            .output()
            .expect("run himg")
    }

    /// Requests for the index files (anything under `dists/` but the InRelease).
    fn index_requests(&self) -> usize {
        self.server
            .request_log()
            .iter()
            .filter(|r| r.path.contains("/dists/") && !r.path.ends_with("/InRelease"))
            .count()
    }
}

/// The files of a store's index cache with this extension.
fn cached(store: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(store.join("indexes"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Removes the index text from a store's index cache (the downloads and their decompressed
/// copies), keeping the parsed forms.
fn remove_index_text(store: &Path) {
    for entry in std::fs::read_dir(store.join("indexes")).expect("indexes") {
        let p = entry.expect("entry").path();
        if p.extension().is_none_or(|e| e != "parsed") {
            std::fs::remove_file(&p).expect("rm");
        }
    }
}

#[test]
fn a_second_process_loads_the_parsed_index_instead_of_parsing() {
    let f = Fixture::new();
    let first = f.lock("store");
    assert!(first.contains("\"libfoo\""), "{first}");
    let parsed = cached(&f.path("store"), "parsed");
    assert_eq!(parsed.len(), 1, "one parsed index for one index file");
    let parsed_bytes = std::fs::read(&parsed[0]).expect("parsed");

    // Remove the index text (download and decompressed copy): a second process that still locks
    // the same, without asking the server for the index, has read the parsed form.
    remove_index_text(&f.path("store"));
    f.server.reset_log();
    assert_eq!(f.lock("store"), first, "the lock from the parsed index");
    assert_eq!(f.index_requests(), 0, "{:?}", f.server.request_log());
    assert_eq!(cached(&f.path("store"), "parsed"), parsed);
    let left: Vec<_> = std::fs::read_dir(f.path("store/indexes"))
        .expect("indexes")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(left, parsed, "the index text was not fetched again");

    // A damaged parsed form (a flipped bit, a truncation, nothing) is ignored: the index is
    // fetched and parsed again, the lock is the same, and the parsed form is rewritten as it was.
    for damage in [
        (|b: &mut Vec<u8>| {
            let n = b.len() - 10;
            b[n] ^= 0x40;
        }) as fn(&mut Vec<u8>),
        |b: &mut Vec<u8>| b.truncate(b.len() / 2),
        |b: &mut Vec<u8>| b.clear(),
    ] {
        let mut bytes = parsed_bytes.clone();
        damage(&mut bytes);
        std::fs::write(&parsed[0], &bytes).expect("damage");
        remove_index_text(&f.path("store"));
        f.server.reset_log();
        assert_eq!(f.lock("store"), first, "the lock after damage");
        assert!(f.index_requests() > 0, "the index was fetched again");
        assert_eq!(
            std::fs::read(&parsed[0]).expect("parsed"),
            parsed_bytes,
            "the parsed form is rewritten"
        );
    }

    // A second store, cold: the same lock, and the same parsed form.
    assert_eq!(f.lock("store2"), first, "a second store locks the same");
    let parsed2 = cached(&f.path("store2"), "parsed");
    assert_eq!(parsed2.len(), 1);
    assert_eq!(
        std::fs::read(&parsed2[0]).expect("parsed"),
        parsed_bytes,
        "two stores keep the same parsed form"
    );

    // `update --check` reads the same parsed form and finds nothing to move.
    f.server.reset_log();
    let o = f.himg("store", &["update", "app.himg", "--check"]);
    assert!(
        o.status.success(),
        "update --check: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(f.index_requests(), 0, "{:?}", f.server.request_log());
}

#[test]
fn store_gc_drops_indexes_no_lock_read_for_two_weeks() {
    let f = Fixture::new();
    let first = f.lock("store");
    let indexes = f.path("store/indexes");
    let files = |dir: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("indexes")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        v
    };
    let kept = files(&indexes);
    assert!(kept.len() >= 2, "download, text and parsed form: {kept:?}");

    // Just used: gc keeps them.
    let o = f.himg("store", &["store", "gc"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(files(&indexes), kept);

    // Unread for three weeks (and a killed writer's half-written file): gc drops them all.
    std::fs::write(indexes.join(".parsed-killed.part"), b"half").expect("part");
    let weeks_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(21 * 24 * 3600);
    for p in files(&indexes) {
        let file = std::fs::File::options()
            .append(true)
            .open(&p)
            .expect("open");
        file.set_modified(weeks_ago).expect("mtime");
    }
    let o = f.himg("store", &["store", "gc", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        report["cache_entries_removed"].as_u64() >= Some(kept.len() as u64 + 1),
        "{report}"
    );
    assert!(files(&indexes).is_empty(), "{:?}", files(&indexes));

    // They come back on demand: the next lock fetches the index again and locks the same.
    f.server.reset_log();
    assert_eq!(f.lock("store"), first);
    assert!(f.index_requests() > 0);
}
