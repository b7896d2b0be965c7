//! Many threads, many processes, and processes killed at random moments.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{key, out_path, temp_store};
use himg_store::{
    B3Digest, LayerRecord, Node, ObjectRef, OutputRecord, Sha256Digest, Store, Tree, TreeEntry,
};

/// A small xorshift generator: enough randomness for tests, no dependency.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Rng(t ^ (u64::from(std::process::id()) << 32) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn content(i: u64, len: usize) -> Vec<u8> {
    let mut v = format!("content {i}:").into_bytes();
    v.resize(len, (i % 251) as u8);
    v
}

#[test]
fn threads_put_and_register_the_same_things() {
    let (_dir, store) = temp_store();
    let store = Arc::new(store);
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let _guard = store.build_guard().expect("guard");
                for i in 0..60u64 {
                    // Every thread writes the same blobs, some through a writer.
                    let data = content(i, 1000 + (i as usize) * 97);
                    let d = if (i + t) % 2 == 0 {
                        store.put_blob(&data).expect("put")
                    } else {
                        let mut w = store.blob_writer().expect("writer");
                        w.write_all(&data).expect("write");
                        w.finish().expect("finish").0
                    };
                    assert_eq!(d, B3Digest::of(&data));
                    let tree = store
                        .put_tree(
                            &Tree::from_entries(vec![TreeEntry {
                                name: format!("f{i}"),
                                node: Node::File {
                                    blob: d,
                                    size: data.len() as u64,
                                    executable: false,
                                },
                            }])
                            .expect("tree"),
                        )
                        .expect("put tree");
                    let oci = store.put_oci_blob(&data).expect("oci");
                    let rec = OutputRecord {
                        path: out_path(&format!("o{i}")),
                        content: ObjectRef::Tree(tree),
                        size: data.len() as u64,
                        meta: serde_json::json!({ "i": i }),
                        refs_outputs: vec![],
                        refs_objects: vec![ObjectRef::Oci(oci)],
                    };
                    store
                        .register_output(&[key(&format!("k{i}")), key(&format!("r{i}"))], &rec)
                        .expect("register");
                    store
                        .register_layer(&LayerRecord {
                            tree,
                            compression: "gzip-6".into(),
                            diff_id: Sha256Digest::of(&data),
                            digest: oci,
                            size: data.len() as u64,
                        })
                        .expect("layer");
                    assert_eq!(
                        store
                            .lookup_derivation(&key(&format!("k{i}")))
                            .expect("lookup"),
                        Some(rec)
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let info = store.info().expect("info");
    assert_eq!(info.blobs.count, 60);
    assert_eq!(info.trees.count, 60);
    assert_eq!(info.oci_blobs.count, 60);
    assert_eq!(info.outputs, 60);
    assert_eq!(info.derivations, 120);
    assert_eq!(info.layers, 60);
    assert_eq!(info.temp_files.count, 0);
    assert!(store.verify().expect("verify").is_ok());
}

#[test]
fn two_opens_of_one_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let root = dir.path().to_owned();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                // Both create the same fresh store at once.
                let store = Store::open(&root).expect("open");
                for i in 0..50u64 {
                    // As a build does: hold the build guard from writing an object until the row
                    // that references it is registered, so a concurrent gc cannot take it between.
                    let _guard = store.build_guard().expect("guard");
                    let data = content(i, 200);
                    let d = store.put_blob(&data).expect("put");
                    let rec = OutputRecord {
                        path: out_path(&format!("o{i}")),
                        content: ObjectRef::Blob(d),
                        size: 200,
                        meta: serde_json::Value::Null,
                        refs_outputs: vec![],
                        refs_objects: vec![],
                    };
                    store
                        .register_output(&[key(&format!("k{i}-{t}"))], &rec)
                        .expect("register");
                    store
                        .record_file_hashes(&[(
                            root.join(format!("f{t}-{i}")),
                            std::fs::metadata(&root).expect("stat"),
                            d,
                        )])
                        .expect("record");
                }
                if t == 0 {
                    store.gc(false).expect("gc");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let store = Store::open(dir.path()).expect("open");
    assert!(store.verify().expect("verify").is_ok());
}

// ------------------------------------------------------------------ crash simulation

const CHILD_ENV: &str = "HIMG_STORE_CRASH_CHILD_ROOT";

/// Not a test on its own: when `CHILD_ENV` is set, this is the body of a child process that
/// writes to the store until it is killed.
#[test]
fn crash_child_worker() {
    let Some(root) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let root = std::path::PathBuf::from(root);
    let store = Store::open(&root).expect("child open");
    let mut rng = Rng::seeded();
    let deadline = Instant::now() + Duration::from_secs(30);
    let src = root.join(format!("src-{}", std::process::id()));
    while Instant::now() < deadline {
        {
            let _guard = store.build_guard().expect("guard");
            // Half shared content (other processes write the same), half fresh.
            let id = if rng.below(2) == 0 {
                rng.below(40)
            } else {
                rng.next()
            };
            // The same id always makes the same content, hence the same output.
            let len = [10usize, 5_000, 200_000, 1_500_000][(id % 4) as usize];
            let data = content(id, len);
            let blob = match rng.below(3) {
                0 => store.put_blob(&data).expect("put"),
                1 => {
                    let mut w = store.blob_writer().expect("writer");
                    for chunk in data.chunks(65_536) {
                        w.write_all(chunk).expect("write");
                    }
                    w.finish().expect("finish").0
                }
                _ => {
                    std::fs::write(&src, &data).expect("src");
                    store.put_blob_from_path(&src).expect("from path").0
                }
            };
            let sub = store
                .put_tree(
                    &Tree::from_entries(vec![
                        TreeEntry {
                            name: "data".into(),
                            node: Node::File {
                                blob,
                                size: len as u64,
                                executable: id % 2 == 0,
                            },
                        },
                        TreeEntry {
                            name: "link".into(),
                            node: Node::Symlink {
                                target: "data".into(),
                            },
                        },
                    ])
                    .expect("tree"),
                )
                .expect("put tree");
            let top = store
                .put_tree(
                    &Tree::from_entries(vec![TreeEntry {
                        name: format!("d{id}"),
                        node: Node::Dir { tree: sub },
                    }])
                    .expect("tree"),
                )
                .expect("put tree");
            let mut w = store.oci_blob_writer().expect("oci writer");
            w.write_all(&data[..data.len().min(100_000)])
                .expect("write");
            let (oci, oci_size) = w.finish().expect("finish");
            let name = format!("out{id}");
            let _lock = store.lock_derivation(&key(&name)).expect("lock");
            let rec = OutputRecord {
                path: out_path(&name),
                content: ObjectRef::Tree(top),
                size: len as u64,
                meta: serde_json::json!({ "id": id.to_string() }),
                refs_outputs: vec![],
                refs_objects: vec![ObjectRef::Oci(oci)],
            };
            store
                .register_output(&[key(&name), key(&format!("resolved-{id}"))], &rec)
                .expect("register");
            store
                .register_layer(&LayerRecord {
                    tree: top,
                    compression: "gzip-6".into(),
                    diff_id: Sha256Digest::of(&data),
                    digest: oci,
                    size: oci_size,
                })
                .expect("layer");
            if rng.below(4) == 0 {
                store
                    .set_root(
                        &format!("root{}", rng.below(3)),
                        std::slice::from_ref(&rec.path),
                    )
                    .expect("root");
            }
        }
        if rng.below(6) == 0 {
            store.gc(false).expect("gc");
        }
        if rng.below(8) == 0 {
            let r = store.verify().expect("verify in child");
            assert!(r.is_ok(), "{:?}", r.problems);
        }
    }
}

fn spawn_child(root: &Path, log: &Path) -> Child {
    let exe = std::env::current_exe().expect("current exe");
    let log = std::fs::File::create(log).expect("child log");
    Command::new(exe)
        .args([
            "--exact",
            "crash_child_worker",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, root)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn child")
}

#[test]
fn killed_writers_leave_a_consistent_store() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return; // we are a child ourselves
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let mut rng = Rng::seeded();
    let rounds = 24;
    let mut stale_seen = 0;
    for round in 0..rounds {
        // Every third round, two processes race on the same store.
        let logs = [dir.path().join("child0.log"), dir.path().join("child1.log")];
        let mut children = vec![spawn_child(root, &logs[0])];
        if round % 3 == 2 {
            children.push(spawn_child(root, &logs[1]));
        }
        // The first round is killed early, possibly while creating the store.
        let wait = if round == 0 { 5 } else { 20 + rng.below(400) };
        std::thread::sleep(Duration::from_millis(wait));
        for c in &mut children {
            std::thread::sleep(Duration::from_millis(rng.below(30)));
            c.kill().expect("SIGKILL");
        }
        for (mut c, log) in children.into_iter().zip(&logs) {
            let status = c.wait().expect("wait");
            // Killed, not exited: an exit would mean the child failed on its own.
            assert!(
                status.code().is_none(),
                "child exited: {status:?}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        let store = Store::open(root).expect("open after kill");
        let report = store.verify().expect("verify");
        stale_seen += report.stale_temp_files.len() + report.temp_files_in_use;
        assert!(
            report.is_ok(),
            "round {round}: {:#?}",
            report
                .problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        );
    }

    // The store still works: lookups are complete, new writes, gc and verify succeed.
    let store = Store::open(root).expect("open");
    for id in 0..40u64 {
        if let Some(rec) = store
            .lookup_derivation(&key(&format!("out{id}")))
            .expect("lookup")
        {
            assert!(store.has_object(&rec.content));
            let ObjectRef::Tree(t) = rec.content else {
                panic!("tree expected")
            };
            store.get_tree(&t).expect("tree readable");
        }
    }
    let d = store.put_blob(b"after the storm").expect("put");
    let rec = OutputRecord {
        path: out_path("after"),
        content: ObjectRef::Blob(d),
        size: 15,
        meta: serde_json::Value::Null,
        refs_outputs: vec![],
        refs_objects: vec![],
    };
    store
        .register_output(&[key("after")], &rec)
        .expect("register");
    store
        .set_root("after", std::slice::from_ref(&rec.path))
        .expect("root");
    // Make leftover temp files old enough to count as stale.
    for e in std::fs::read_dir(store.layout_dir().join("tmp"))
        .expect("tmp")
        .flatten()
    {
        let f = std::fs::File::options()
            .write(true)
            .open(e.path())
            .expect("open");
        f.set_modified(SystemTime::now() - Duration::from_secs(3600))
            .expect("mtime");
    }
    let before = store.info().expect("info");
    eprintln!(
        "after {rounds} kills: {} blobs, {} trees, {} oci blobs, {} outputs, {} temp files, {} stale seen",
        before.blobs.count,
        before.trees.count,
        before.oci_blobs.count,
        before.outputs,
        before.temp_files.count,
        stale_seen
    );
    let report = store.gc(false).expect("gc");
    let info = store.info().expect("info");
    assert_eq!(info.temp_files.count, 0, "{report:?}");
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(report.stale_temp_files.is_empty());
    assert_eq!(
        store.lookup_derivation(&key("after")).expect("lookup"),
        Some(rec)
    );
}
