//! Outputs, derivations, layers, roots, the stat cache, schema versions and locations.

mod common;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use common::{blob_output, key, out_path, temp_store};
use himg_store::{
    LayerRecord, ObjectRef, OutputRecord, SCHEMA_VERSION, Sha256Digest, Store, StoreError, Tree,
};

#[test]
fn register_and_lookup_output() {
    let (_dir, store) = temp_store();
    assert_eq!(store.lookup_derivation(&key("a")).expect("lookup"), None);

    let dep = blob_output(&store, "dep", b"dependency");
    store
        .register_output(&[key("dep")], &dep)
        .expect("register dep");

    let tree = store.put_tree(&Tree::empty()).expect("tree");
    let extra = store.put_oci_blob(b"config").expect("oci");
    let rec = OutputRecord {
        path: out_path("app"),
        content: ObjectRef::Tree(tree),
        size: 42,
        meta: serde_json::json!({ "z": 1, "a": [true, null, "x"], "m": { "b": 2, "a": 1 } }),
        refs_outputs: vec![dep.path.clone()],
        refs_objects: vec![ObjectRef::Oci(extra)],
    };
    // Two keys: input-addressed and content-resolved.
    store
        .register_output(&[key("app-ia"), key("app-resolved")], &rec)
        .expect("register");
    assert_eq!(
        store.lookup_derivation(&key("app-ia")).expect("lookup"),
        Some(rec.clone())
    );
    assert_eq!(
        store
            .lookup_derivation(&key("app-resolved"))
            .expect("lookup"),
        Some(rec.clone())
    );
    assert_eq!(
        store.lookup_output(&rec.path).expect("lookup"),
        Some(rec.clone())
    );
    // Idempotent.
    store
        .register_output(&[key("app-ia")], &rec)
        .expect("register again");
    // Meta is stored canonically.
    let conn = rusqlite_meta(&store, rec.path.as_str());
    assert_eq!(conn, r#"{"a":[true,null,"x"],"m":{"a":1,"b":2},"z":1}"#);
}

fn rusqlite_meta(store: &Store, path: &str) -> String {
    let conn = rusqlite::Connection::open(store.db_path()).expect("sqlite");
    conn.query_row("SELECT meta FROM outputs WHERE path = ?1", [path], |r| {
        r.get(0)
    })
    .expect("row")
}

#[test]
fn register_requires_objects_and_outputs() {
    let (_dir, store) = temp_store();
    let mut rec = blob_output(&store, "x", b"x");
    rec.refs_objects = vec![ObjectRef::Oci(Sha256Digest::of(b"absent"))];
    assert!(matches!(
        store.register_output(&[key("x")], &rec),
        Err(StoreError::MissingObject(ObjectRef::Oci(_)))
    ));
    rec.refs_objects.clear();
    rec.refs_outputs = vec![out_path("not-registered")];
    assert!(matches!(
        store.register_output(&[key("x")], &rec),
        Err(StoreError::MissingOutput(_))
    ));
    // Nothing was registered by the failed attempts.
    assert_eq!(store.lookup_derivation(&key("x")).expect("lookup"), None);
}

#[test]
fn conflicting_content_is_rejected_unless_old_content_is_gone() {
    let (_dir, store) = temp_store();
    let a = blob_output(&store, "p", b"first");
    store.register_output(&[key("k1")], &a).expect("register");
    let mut b = blob_output(&store, "p", b"second");
    b.path = a.path.clone();
    assert!(matches!(
        store.register_output(&[key("k2")], &b),
        Err(StoreError::OutputConflict { .. })
    ));
    // Delete the first content: the row is stale and gets replaced.
    let ObjectRef::Blob(first) = a.content else {
        unreachable!()
    };
    std::fs::remove_file(store.blob_path(&first)).expect("rm");
    assert_eq!(store.lookup_derivation(&key("k1")).expect("lookup"), None);
    store.register_output(&[key("k2")], &b).expect("replace");
    assert_eq!(
        store.lookup_derivation(&key("k2")).expect("lookup"),
        Some(b.clone())
    );
    // k1 still maps to the path, which now has the new content.
    assert_eq!(
        store.lookup_derivation(&key("k1")).expect("lookup"),
        Some(b)
    );
}

#[test]
fn lookup_is_none_when_objects_are_missing() {
    let (_dir, store) = temp_store();
    let dep = blob_output(&store, "dep", b"dep");
    store
        .register_output(&[key("dep")], &dep)
        .expect("register");
    let mut rec = blob_output(&store, "top", b"top");
    rec.refs_outputs = vec![dep.path.clone()];
    store
        .register_output(&[key("top")], &rec)
        .expect("register");
    assert!(
        store
            .lookup_derivation(&key("top"))
            .expect("lookup")
            .is_some()
    );
    // The dependency's content vanishes: the dependent is not usable either.
    let ObjectRef::Blob(d) = dep.content else {
        unreachable!()
    };
    std::fs::remove_file(store.blob_path(&d)).expect("rm");
    assert_eq!(store.lookup_derivation(&key("dep")).expect("lookup"), None);
    assert_eq!(store.lookup_derivation(&key("top")).expect("lookup"), None);
}

#[test]
fn oci_outputs_need_only_their_oci_references() {
    let (_dir, store) = temp_store();
    // A layer-like output: an OCI blob built from (and referencing) blake3 blobs, and a
    // manifest-like one referencing another OCI blob.
    let input = store.put_blob(b"file content").expect("blob");
    let layer = store.put_oci_blob(b"layer").expect("oci");
    let other = store.put_oci_blob(b"config").expect("oci");
    let rec = OutputRecord {
        path: out_path("layer"),
        content: ObjectRef::Oci(layer),
        size: 5,
        meta: serde_json::json!({}),
        refs_outputs: vec![],
        refs_objects: vec![
            ObjectRef::Blob(input),
            ObjectRef::Oci(layer),
            ObjectRef::Oci(other),
        ],
    };
    store
        .register_output(&[key("layer")], &rec)
        .expect("register");
    // Losing an input blob does not make the OCI output unusable ...
    std::fs::remove_file(store.blob_path(&input)).expect("rm");
    assert!(
        store
            .lookup_derivation(&key("layer"))
            .expect("lookup")
            .is_some()
    );
    // ... losing an OCI blob it references does.
    std::fs::remove_file(store.oci_blob_path(&other)).expect("rm");
    assert_eq!(
        store.lookup_derivation(&key("layer")).expect("lookup"),
        None
    );
}

#[test]
fn layers() {
    let (_dir, store) = temp_store();
    let tree = store.put_tree(&Tree::empty()).expect("tree");
    assert_eq!(store.lookup_layer(&tree, "gzip-6").expect("lookup"), None);
    let blob = store.put_oci_blob(b"compressed").expect("oci");
    let rec = LayerRecord {
        tree,
        compression: "gzip-6".into(),
        diff_id: Sha256Digest::of(b"tar"),
        digest: blob,
        size: 10,
    };
    store.register_layer(&rec).expect("register");
    store.register_layer(&rec).expect("idempotent");
    assert_eq!(
        store.lookup_layer(&tree, "gzip-6").expect("lookup"),
        Some(rec.clone())
    );
    assert_eq!(store.lookup_layer(&tree, "zstd-3").expect("lookup"), None);
    // Missing blob: refused; vanished blob: not found.
    let mut bad = rec.clone();
    bad.compression = "zstd-3".into();
    bad.digest = Sha256Digest::of(b"absent");
    assert!(matches!(
        store.register_layer(&bad),
        Err(StoreError::MissingObject(_))
    ));
    bad.compression = "bad\ncompression".into();
    assert!(matches!(
        store.register_layer(&bad),
        Err(StoreError::InvalidArgument { .. })
    ));
    std::fs::remove_file(store.oci_blob_path(&blob)).expect("rm");
    assert_eq!(store.lookup_layer(&tree, "gzip-6").expect("lookup"), None);
}

#[test]
fn roots() {
    let (_dir, store) = temp_store();
    let a = blob_output(&store, "a", b"a");
    let b = blob_output(&store, "b", b"b");
    store.register_output(&[key("a")], &a).expect("a");
    store.register_output(&[key("b")], &b).expect("b");
    store
        .set_root("image:app", &[b.path.clone(), a.path.clone()])
        .expect("set");
    let roots = store.roots().expect("roots");
    assert_eq!(roots.len(), 1);
    assert_eq!(roots[0].name, "image:app");
    let mut expected = vec![a.path.clone(), b.path.clone()];
    expected.sort();
    assert_eq!(roots[0].outputs, expected);
    // Replace.
    store
        .set_root("image:app", std::slice::from_ref(&a.path))
        .expect("set");
    assert_eq!(
        store.roots().expect("roots")[0].outputs,
        vec![a.path.clone()]
    );
    assert!(matches!(
        store.set_root("other", &[out_path("unregistered")]),
        Err(StoreError::MissingOutput(_))
    ));
    assert!(matches!(
        store.set_root("", &[]),
        Err(StoreError::InvalidArgument { .. })
    ));
    assert!(store.remove_root("image:app").expect("remove"));
    assert!(!store.remove_root("image:app").expect("remove"));
    assert!(store.roots().expect("roots").is_empty());
}

#[test]
fn stat_cache() {
    let (dir, store) = temp_store();
    let file = dir.path().join("source.txt");
    std::fs::write(&file, b"source").expect("write");
    let blob = store.put_blob(b"source").expect("blob");

    // Just written: racy, so not cached.
    let meta = std::fs::metadata(&file).expect("stat");
    store
        .record_file_hashes(&[(file.clone(), meta.clone(), blob)])
        .expect("record");
    assert_eq!(store.cached_file_hash(&file, &meta).expect("cached"), None);

    // Old enough (mtime moved back; ctime is also checked, so use a file whose ctime is old:
    // we can't set ctime, so wait out the racy window instead).
    let old = SystemTime::now() - Duration::from_secs(3600);
    let f = std::fs::File::options()
        .write(true)
        .open(&file)
        .expect("open");
    f.set_modified(old).expect("set mtime");
    drop(f);
    std::thread::sleep(Duration::from_millis(2100));
    let meta = std::fs::metadata(&file).expect("stat");
    store.record_file_hash(&file, &meta, &blob).expect("record");
    assert_eq!(
        store.cached_file_hash(&file, &meta).expect("cached"),
        Some(blob)
    );
    // Any change in metadata invalidates.
    std::fs::write(&file, b"changed").expect("write");
    let meta2 = std::fs::metadata(&file).expect("stat");
    assert_eq!(store.cached_file_hash(&file, &meta2).expect("cached"), None);
    // Unknown path.
    assert_eq!(
        store
            .cached_file_hash(&dir.path().join("other"), &meta)
            .expect("cached"),
        None
    );
}

#[test]
fn derivation_locks() {
    let (_dir, store) = temp_store();
    let k = key("drv");
    let lock = store.lock_derivation(&k).expect("lock");
    assert_eq!(lock.key(), &k);
    // Held (even by this process, through another open file): try fails.
    assert!(store.try_lock_derivation(&k).expect("try").is_none());
    assert!(
        store
            .try_lock_derivation(&key("other"))
            .expect("try")
            .is_some()
    );
    drop(lock);
    assert!(store.try_lock_derivation(&k).expect("try").is_some());

    // A blocked locker proceeds once the holder drops.
    let store = std::sync::Arc::new(store);
    let lock = store.lock_derivation(&k).expect("lock");
    let s2 = store.clone();
    let t = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let _l = s2.lock_derivation(&k).expect("lock");
        start.elapsed()
    });
    std::thread::sleep(Duration::from_millis(200));
    drop(lock);
    let waited = t.join().expect("join");
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
}

#[test]
fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec;
    {
        let store = Store::open(dir.path()).expect("open");
        rec = blob_output(&store, "keep", b"keep");
        store
            .register_output(&[key("keep")], &rec)
            .expect("register");
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(
        store.lookup_derivation(&key("keep")).expect("lookup"),
        Some(rec)
    );
    assert_eq!(store.root(), dir.path());
    assert_eq!(store.info().expect("info").schema_version, SCHEMA_VERSION);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(dir.path()).expect("open"));
    let db = dir.path().join("v1/db.sqlite");
    let conn = rusqlite::Connection::open(&db).expect("sqlite");
    conn.execute("UPDATE schema_version SET version = 99", [])
        .expect("update");
    drop(conn);
    match Store::open(dir.path()) {
        Err(StoreError::IncompatibleVersion {
            found, supported, ..
        }) => {
            assert_eq!((found, supported), (99, SCHEMA_VERSION));
        }
        other => panic!("expected IncompatibleVersion, got {other:?}"),
    }
}

#[test]
fn default_root_rules() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    };
    let root = |vars| Store::default_root_from(env(vars)).ok();
    assert_eq!(
        root(&[
            ("HIMG_STORE", "/s"),
            ("XDG_DATA_HOME", "/x"),
            ("HOME", "/h")
        ]),
        Some(PathBuf::from("/s"))
    );
    assert_eq!(
        root(&[("XDG_DATA_HOME", "/x"), ("HOME", "/h")]),
        Some(PathBuf::from("/x/himg"))
    );
    assert_eq!(
        root(&[("HIMG_STORE", ""), ("XDG_DATA_HOME", "rel"), ("HOME", "/h")]),
        Some(PathBuf::from("/h/.local/share/himg"))
    );
    assert!(matches!(
        Store::default_root_from(env(&[])),
        Err(StoreError::NoDefaultRoot)
    ));
}

#[test]
fn info_counts() {
    let (_dir, store) = temp_store();
    let rec = blob_output(&store, "i", b"12345");
    store
        .register_output(&[key("i"), key("j")], &rec)
        .expect("register");
    store.put_tree(&Tree::empty()).expect("tree");
    store.put_oci_blob(b"oci").expect("oci");
    store
        .set_root("r", std::slice::from_ref(&rec.path))
        .expect("root");
    let info = store.info().expect("info");
    assert_eq!((info.blobs.count, info.blobs.bytes), (1, 5));
    assert_eq!((info.trees.count, info.trees.bytes), (1, 5));
    assert_eq!((info.oci_blobs.count, info.oci_blobs.bytes), (1, 3));
    assert_eq!((info.outputs, info.derivations), (1, 2));
    assert_eq!(info.roots.len(), 1);
    assert!(info.db_bytes > 0);
}
