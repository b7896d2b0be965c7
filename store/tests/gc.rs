//! Garbage collection: roots keep their closure, everything else goes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{key, out_path, temp_store};
use himg_store::{
    B3Digest, LayerRecord, Node, ObjectRef, OutputRecord, Sha256Digest, Store, Tree, TreeEntry,
};

fn file(store: &Store, name: &str, blob: B3Digest) -> TreeEntry {
    let size = std::fs::metadata(store.blob_path(&blob))
        .expect("blob")
        .len();
    TreeEntry {
        name: name.into(),
        node: Node::File {
            blob,
            size,
            executable: false,
        },
    }
}

/// An output whose content is a two-level tree of fresh blobs tagged `tag`.
fn tree_output(
    store: &Store,
    tag: &str,
    refs: Vec<himg_store::OutputPath>,
) -> (OutputRecord, Vec<ObjectRef>) {
    let leaf = store
        .put_blob(format!("{tag}-leaf").as_bytes())
        .expect("blob");
    let top = store
        .put_blob(format!("{tag}-top").as_bytes())
        .expect("blob");
    let sub = store
        .put_tree(&Tree::from_entries(vec![file(store, "leaf", leaf)]).expect("tree"))
        .expect("put");
    let root = store
        .put_tree(
            &Tree::from_entries(vec![
                file(store, "top", top),
                TreeEntry {
                    name: "sub".into(),
                    node: Node::Dir { tree: sub },
                },
            ])
            .expect("tree"),
        )
        .expect("put");
    let rec = OutputRecord {
        path: out_path(tag),
        content: ObjectRef::Tree(root),
        size: 2,
        meta: serde_json::Value::Null,
        refs_outputs: refs,
        refs_objects: vec![],
    };
    store.register_output(&[key(tag)], &rec).expect("register");
    let objects = vec![
        ObjectRef::Blob(leaf),
        ObjectRef::Blob(top),
        ObjectRef::Tree(sub),
        ObjectRef::Tree(root),
    ];
    (rec, objects)
}

#[test]
fn roots_keep_their_closure() {
    let (_dir, store) = temp_store();
    let (dep, dep_objs) = tree_output(&store, "dep", vec![]);
    let (app, app_objs) = tree_output(&store, "app", vec![dep.path.clone()]);
    let (_junk, junk_objs) = tree_output(&store, "junk", vec![]);
    // A layer of the app's tree is kept; a layer of an unreachable tree goes.
    let ObjectRef::Tree(app_tree) = app.content else {
        unreachable!()
    };
    let layer_blob = store.put_oci_blob(b"app layer").expect("oci");
    let layer = LayerRecord {
        tree: app_tree,
        compression: "gzip-6".into(),
        diff_id: Sha256Digest::of(b"tar"),
        digest: layer_blob,
        size: 9,
    };
    store.register_layer(&layer).expect("layer");
    let junk_layer_blob = store.put_oci_blob(b"junk layer").expect("oci");
    store
        .register_layer(&LayerRecord {
            tree: B3Digest::of(b"some tree"),
            compression: "gzip-6".into(),
            diff_id: Sha256Digest::of(b"tar2"),
            digest: junk_layer_blob,
            size: 10,
        })
        .expect("layer");
    let loose = store.put_blob(b"never referenced").expect("blob");
    store
        .set_root("app", std::slice::from_ref(&app.path))
        .expect("root");

    let dry = store.gc(true).expect("dry run");
    assert!(dry.dry_run);
    assert_eq!(dry.outputs_removed, 1);
    assert!(store.has_blob(&loose), "dry run deletes nothing");
    assert!(
        store
            .lookup_derivation(&key("junk"))
            .expect("lookup")
            .is_some()
    );

    let report = store.gc(false).expect("gc");
    assert_eq!(report.outputs_kept, 2);
    assert_eq!(report.outputs_removed, 1);
    assert_eq!(report.derivations_removed, 1);
    assert_eq!(report.layers_removed, 1);
    assert_eq!(report.trees_removed, 2);
    assert_eq!(report.blobs_removed, 3); // junk's two + loose
    assert_eq!(report.oci_blobs_removed, 1);
    assert!(report.bytes_freed > 0);
    assert_eq!(report.outputs_removed, dry.outputs_removed);
    assert_eq!(report.bytes_freed, dry.bytes_freed);

    for o in dep_objs.iter().chain(&app_objs) {
        assert!(store.has_object(o), "{o} kept");
    }
    for o in &junk_objs {
        assert!(!store.has_object(o), "{o} removed");
    }
    assert!(!store.has_blob(&loose));
    assert!(store.has_oci_blob(&layer_blob));
    assert!(!store.has_oci_blob(&junk_layer_blob));
    assert_eq!(
        store.lookup_derivation(&key("app")).expect("lookup"),
        Some(app.clone())
    );
    assert_eq!(
        store.lookup_derivation(&key("dep")).expect("lookup"),
        Some(dep)
    );
    assert_eq!(store.lookup_derivation(&key("junk")).expect("lookup"), None);
    assert_eq!(
        store.lookup_layer(&app_tree, "gzip-6").expect("layer"),
        Some(layer)
    );
    assert!(store.verify().expect("verify").is_ok());

    // A second gc finds nothing; removing the root frees the rest.
    let again = store.gc(false).expect("gc");
    assert_eq!(again.bytes_freed, 0);
    store.remove_root("app").expect("remove");
    let all = store.gc(false).expect("gc");
    assert_eq!(all.outputs_removed, 2);
    let info = store.info().expect("info");
    assert_eq!(
        info.blobs.count + info.trees.count + info.oci_blobs.count,
        0
    );
    assert_eq!(info.outputs + info.derivations + info.layers, 0);
    assert!(store.verify().expect("verify").is_ok());
}

#[test]
fn shared_subtrees_survive() {
    let (_dir, store) = temp_store();
    let shared_blob = store.put_blob(b"shared").expect("blob");
    let shared = store
        .put_tree(&Tree::from_entries(vec![file(&store, "s", shared_blob)]).expect("tree"))
        .expect("put");
    let mk = |name: &str| {
        let t = store
            .put_tree(
                &Tree::from_entries(vec![TreeEntry {
                    name: name.into(),
                    node: Node::Dir { tree: shared },
                }])
                .expect("tree"),
            )
            .expect("put");
        let rec = OutputRecord {
            path: out_path(name),
            content: ObjectRef::Tree(t),
            size: 0,
            meta: serde_json::Value::Null,
            refs_outputs: vec![],
            refs_objects: vec![],
        };
        store.register_output(&[key(name)], &rec).expect("register");
        rec
    };
    let kept = mk("kept");
    let _gone = mk("gone");
    store
        .set_root("r", std::slice::from_ref(&kept.path))
        .expect("root");
    let report = store.gc(false).expect("gc");
    assert_eq!(report.trees_removed, 1);
    assert!(store.has_tree(&shared));
    assert!(store.has_blob(&shared_blob));
    assert!(store.verify().expect("verify").is_ok());
}

#[test]
fn gc_waits_for_build_guards() {
    let (_dir, store) = temp_store();
    let store = Arc::new(store);
    let guard = store.build_guard().expect("guard");
    // Another guard can be taken at the same time (shared).
    let second = store.build_guard().expect("second guard");
    drop(second);

    let done = Arc::new(AtomicBool::new(false));
    let (s, d) = (store.clone(), done.clone());
    let gc = std::thread::spawn(move || {
        let r = s.gc(false).expect("gc");
        d.store(true, Ordering::SeqCst);
        r
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !done.load(Ordering::SeqCst),
        "gc ran while a build guard was held"
    );
    // Objects written under the guard are safe until registered.
    let blob = store.put_blob(b"in flight").expect("blob");
    let rec = OutputRecord {
        path: out_path("inflight"),
        content: ObjectRef::Blob(blob),
        size: 9,
        meta: serde_json::Value::Null,
        refs_outputs: vec![],
        refs_objects: vec![],
    };
    store
        .register_output(&[key("inflight")], &rec)
        .expect("register");
    store
        .set_root("inflight", std::slice::from_ref(&rec.path))
        .expect("root");
    drop(guard);
    gc.join().expect("join");
    assert!(done.load(Ordering::SeqCst));
    assert!(store.has_blob(&blob));

    // While gc holds the lock, a new guard waits.
    let gc_lock_holder = {
        let s = store.clone();
        std::thread::spawn(move || {
            for _ in 0..20 {
                s.gc(false).expect("gc");
            }
        })
    };
    for _ in 0..20 {
        let _g = store.build_guard().expect("guard");
    }
    gc_lock_holder.join().expect("join");
}

#[test]
fn gc_removes_stale_temp_files_and_lock_files() {
    let (_dir, store) = temp_store();
    let tmp = store.layout_dir().join("tmp");
    // A stale temp file, as a killed writer leaves it: unlocked and older than the grace period.
    let stale = tmp.join("blob-1-0-000000000.tmp");
    std::fs::write(&stale, b"half written").expect("write");
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .expect("open")
        .set_modified(old)
        .expect("mtime");
    // A live writer's temp file.
    let mut live = store.blob_writer().expect("writer");
    std::io::Write::write_all(&mut live, b"in progress").expect("write");

    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "stale temp files are not problems");
    assert_eq!(report.stale_temp_files, vec![stale.clone()]);
    assert_eq!(report.temp_files_in_use, 1);

    let lock = store.lock_derivation(&key("held")).expect("lock");
    drop(store.lock_derivation(&key("released")).expect("lock"));

    let report = store.gc(false).expect("gc");
    assert_eq!(report.temp_files_removed, 1);
    assert_eq!(report.lock_files_removed, 1);
    assert!(!stale.exists());
    let (d, _) = live.finish().expect("live writer survives gc");
    assert!(store.has_blob(&d));
    drop(lock);
    // A lock whose file gc removed still works.
    drop(store.lock_derivation(&key("released")).expect("lock again"));
}
