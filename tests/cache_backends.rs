//! One conformance suite for every binary-cache backend (`file://`, `http://` served by
//! `himg cache serve`, `oci://` on Debian's docker-registry), all on 127.0.0.1: missing entries,
//! push, skip on re-push, signed round trip, archive bytes, and substitution into a fresh store.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use himg::cache::backend::BackendOptions;
use himg::cache::substitute::{Substituters, push};
use himg::cache::{Backend, SecretKey, SignedEntry, TrustedKeys, open_backend};
use himg::plan::Substituter;
use himg_store::{B3Digest, Node, ObjectRef, OutputPath, OutputRecord, Store, Tree, TreeEntry};

/// A store with one tree output (two files, one executable, a symlink, a subdirectory) and one
/// OCI-blob output, registered under two derivation keys.
fn fixture(dir: &Path) -> (Store, BTreeMap<B3Digest, OutputRecord>) {
    let store = Store::open(&dir.join("store-a")).unwrap();
    let a = store.put_blob(b"hello\n").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let b = store.put_blob(&big).unwrap();
    let sub = store
        .put_tree(
            &Tree::from_entries(vec![TreeEntry {
                name: "b.bin".into(),
                node: Node::File {
                    blob: b,
                    size: big.len() as u64,
                    executable: true,
                },
            }])
            .unwrap(),
        )
        .unwrap();
    let root = store
        .put_tree(
            &Tree::from_entries(vec![
                TreeEntry {
                    name: "a.txt".into(),
                    node: Node::File {
                        blob: a,
                        size: 6,
                        executable: false,
                    },
                },
                TreeEntry {
                    name: "link".into(),
                    node: Node::Symlink {
                        target: "a.txt".into(),
                    },
                },
                TreeEntry {
                    name: "sub".into(),
                    node: Node::Dir { tree: sub },
                },
            ])
            .unwrap(),
        )
        .unwrap();
    let oci = store.put_oci_blob(b"{\"layer\":true}").unwrap();
    let mut outputs = BTreeMap::new();
    for (i, (content, refs)) in [
        (ObjectRef::Tree(root), vec![ObjectRef::Tree(root)]),
        (
            ObjectRef::Oci(oci),
            vec![ObjectRef::Oci(oci), ObjectRef::Blob(a)],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let key = B3Digest::of(format!("derivation {i}").as_bytes());
        let rec = OutputRecord {
            path: OutputPath::new(&key, &format!("out{i}")).unwrap(),
            content,
            // An OCI blob's size is checked on substitution (it becomes a descriptor's size).
            size: std::fs::metadata(store.object_path(&content))
                .unwrap()
                .len(),
            meta: serde_json::json!({"n": i}),
            refs_outputs: vec![],
            refs_objects: refs,
        };
        store.register_output(&[key], &rec).unwrap();
        outputs.insert(key, rec);
    }
    (store, outputs)
}

fn conformance(backend: &dyn Backend, dir: &Path) {
    let (store, outputs) = fixture(dir);
    let key = SecretKey::generate("conf-1").unwrap();
    let trusted = TrustedKeys::new([key.public()]);
    let unknown = B3Digest::of(b"nobody built this");
    assert_eq!(backend.get_entry(&unknown).unwrap(), None);
    assert!(!backend.has_entry(&unknown).unwrap());

    let first = push(&store, backend, &key, &outputs).unwrap();
    assert_eq!((first.pushed, first.skipped), (2, 0), "{first:?}");
    assert!(first.bytes > 0);
    let again = push(&store, backend, &key, &outputs).unwrap();
    assert_eq!(
        (again.pushed, again.skipped, again.bytes),
        (0, 2, 0),
        "{again:?}"
    );

    for (k, rec) in &outputs {
        assert!(backend.has_entry(k).unwrap());
        let signed = SignedEntry::parse(&backend.get_entry(k).unwrap().unwrap()).unwrap();
        signed.verify(k, &trusted).unwrap();
        assert_eq!(signed.entry.content, rec.content);
        assert!(backend.has_archive(&signed.entry.file_hash).unwrap());
        let mut bytes = Vec::new();
        let n = backend
            .get_archive(&signed.entry.file_hash, signed.entry.file_size, &mut bytes)
            .unwrap();
        assert_eq!(n, signed.entry.file_size);
        assert_eq!(himg_store::Sha256Digest::of(&bytes), signed.entry.file_hash);
    }
    // An OCI-blob output carries its blob only.
    let oci_key = B3Digest::of(b"derivation 1");
    let oci_entry = SignedEntry::parse(&backend.get_entry(&oci_key).unwrap().unwrap()).unwrap();
    assert_eq!(oci_entry.entry.objects, vec![outputs[&oci_key].content]);

    // Substitution into an empty store.
    let store_b = Store::open(&dir.join("store-b")).unwrap();
    let warn = |m: &str| panic!("unexpected warning: {m}");
    let backend_b = open_backend(backend.url(), &BackendOptions::default()).unwrap();
    let subst = Substituters::new(vec![backend_b], trusted, &warn);
    for (k, rec) in &outputs {
        assert!(subst.query(k));
        let got = subst.fetch(&store_b, k).unwrap();
        assert_eq!(got.content, rec.content);
        assert_eq!(
            store_b.lookup_derivation(k).unwrap().unwrap().content,
            rec.content
        );
    }
    assert!(!subst.query(&unknown));
    let report = store_b.verify().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn file_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("cache").display());
    let backend = open_backend(&url, &BackendOptions::default()).unwrap();
    conformance(backend.as_ref(), dir.path());
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16, what: &str) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn http_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = Killed(
        Command::new(common::himg_bin())
            .args([
                "cache",
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--dir",
            ])
            .arg(dir.path().join("served"))
            .env("HIMG_STORE", dir.path().join("server-store"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(port, "himg cache serve");
    let url = format!("http://127.0.0.1:{port}/conformance");
    let backend = open_backend(&url, &BackendOptions::default()).unwrap();
    conformance(backend.as_ref(), dir.path());
}

#[test]
fn oci_backend_conforms() {
    let registry = common::registry::Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("oci://{}/team-a/cache", registry.host());
    let backend = open_backend(&url, &BackendOptions::default()).unwrap();
    conformance(backend.as_ref(), dir.path());
}
