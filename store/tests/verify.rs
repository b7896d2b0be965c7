//! verify finds exactly what is broken; repair removes it.

mod common;

use common::{blob_output, flip_byte, key, out_path, temp_store};
use himg_store::{
    Issue, LayerRecord, Node, ObjectRef, OutputRecord, Sha256Digest, Store, Subject, Tree,
    TreeEntry,
};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    blob: himg_store::B3Digest,
    tree: himg_store::B3Digest,
    oci: Sha256Digest,
}

fn fixture() -> Fixture {
    let (dir, store) = temp_store();
    let blob = store.put_blob(&vec![7u8; 300_000]).expect("blob");
    let tree = store
        .put_tree(
            &Tree::from_entries(vec![TreeEntry {
                name: "big".into(),
                node: Node::File {
                    blob,
                    size: 300_000,
                    executable: false,
                },
            }])
            .expect("tree"),
        )
        .expect("put");
    let oci = store.put_oci_blob(b"{\"layers\":[]}").expect("oci");
    let rec = OutputRecord {
        path: out_path("out"),
        content: ObjectRef::Tree(tree),
        size: 300_000,
        meta: serde_json::Value::Null,
        refs_outputs: vec![],
        refs_objects: vec![ObjectRef::Oci(oci)],
    };
    store
        .register_output(&[key("out")], &rec)
        .expect("register");
    store
        .set_root("r", std::slice::from_ref(&rec.path))
        .expect("root");
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.objects_checked, 3);
    assert!(report.bytes_checked >= 300_000);
    Fixture {
        _dir: dir,
        store,
        blob,
        tree,
        oci,
    }
}

fn only_problem(store: &Store) -> (Subject, String) {
    let report = store.verify().expect("verify");
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
    let p = &report.problems[0];
    (p.subject.clone(), p.issue.to_string())
}

#[test]
fn corrupt_blob_is_reported_exactly() {
    let f = fixture();
    flip_byte(&f.store.blob_path(&f.blob), 150_000);
    let (subject, issue) = only_problem(&f.store);
    assert_eq!(subject, Subject::Object(ObjectRef::Blob(f.blob)));
    assert!(issue.starts_with("corrupt"), "{issue}");
}

#[test]
fn corrupt_tree_is_reported_exactly() {
    let f = fixture();
    flip_byte(&f.store.tree_path(&f.tree), 9);
    let (subject, issue) = only_problem(&f.store);
    assert_eq!(subject, Subject::Object(ObjectRef::Tree(f.tree)));
    assert!(issue.starts_with("corrupt"), "{issue}");
}

#[test]
fn corrupt_oci_blob_is_reported_exactly() {
    let f = fixture();
    flip_byte(&f.store.oci_blob_path(&f.oci), 0);
    let (subject, issue) = only_problem(&f.store);
    assert_eq!(subject, Subject::Object(ObjectRef::Oci(f.oci)));
    assert!(issue.starts_with("corrupt"), "{issue}");
}

#[test]
fn deleted_objects_are_reported() {
    let f = fixture();
    std::fs::remove_file(f.store.blob_path(&f.blob)).expect("rm");
    let report = f.store.verify().expect("verify");
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
    assert_eq!(
        report.problems[0].subject,
        Subject::Object(ObjectRef::Tree(f.tree))
    );
    assert!(matches!(
        report.problems[0].issue,
        Issue::MissingChild(ObjectRef::Blob(b)) if b == f.blob
    ));
    // The output whose tree lost a blob still looks present (its own objects exist), but
    // a missing referenced object makes lookup return None.
    std::fs::remove_file(f.store.oci_blob_path(&f.oci)).expect("rm");
    assert_eq!(
        f.store.lookup_derivation(&key("out")).expect("lookup"),
        None
    );
    let report = f.store.verify().expect("verify");
    assert!(report.problems.iter().any(|p| {
        p.subject == Subject::Output(out_path("out").to_string())
            && matches!(p.issue, Issue::MissingObject(ObjectRef::Oci(_)))
    }));
}

#[test]
fn stray_files_are_reported() {
    let f = fixture();
    let stray = f.store.layout_dir().join("blobs/b3/zz");
    std::fs::write(&stray, b"?").expect("write");
    let (subject, issue) = only_problem(&f.store);
    assert_eq!(subject, Subject::File(stray));
    assert!(issue.contains("unexpected"), "{issue}");
}

#[test]
fn repair_removes_corruption_and_dependents() {
    let f = fixture();
    // An independent healthy output and layer, which repair must leave alone.
    let healthy = blob_output(&f.store, "healthy", b"fine");
    f.store
        .register_output(&[key("healthy")], &healthy)
        .expect("register");
    let layer_blob = f.store.put_oci_blob(b"layer").expect("oci");
    let layer = LayerRecord {
        tree: f.tree,
        compression: "zstd-3".into(),
        diff_id: Sha256Digest::of(b"t"),
        digest: layer_blob,
        size: 5,
    };
    f.store.register_layer(&layer).expect("layer");

    flip_byte(&f.store.blob_path(&f.blob), 1);
    let report = f.store.repair().expect("repair");
    assert_eq!(report.found.problems.len(), 1);
    // The corrupt blob and the tree that contains it.
    let mut removed = report.objects_removed.clone();
    removed.sort();
    let mut expected = vec![ObjectRef::Blob(f.blob), ObjectRef::Tree(f.tree)];
    expected.sort();
    assert_eq!(removed, expected);
    assert_eq!(report.outputs_removed, vec![out_path("out").to_string()]);
    assert_eq!(report.derivations_removed, 1);
    assert_eq!(report.roots_affected, vec!["r".to_owned()]);
    assert_eq!(report.layers_removed, 0, "the layer's blob is fine");

    assert!(f.store.verify().expect("verify").is_ok());
    assert_eq!(
        f.store.lookup_derivation(&key("out")).expect("lookup"),
        None
    );
    assert_eq!(
        f.store.lookup_derivation(&key("healthy")).expect("lookup"),
        Some(healthy)
    );
    assert_eq!(
        f.store.lookup_layer(&f.tree, "zstd-3").expect("layer"),
        Some(layer)
    );
    // The next build re-creates everything.
    let blob = f.store.put_blob(&vec![7u8; 300_000]).expect("blob");
    assert_eq!(blob, f.blob);
    assert_eq!(f.store.read_blob(&blob).expect("read").len(), 300_000);
}

#[test]
fn a_tree_whose_file_size_lies_is_refused_reported_and_repaired() {
    let (_dir, store) = temp_store();
    let a = store.put_blob(b"a").expect("blob");
    let lying = Tree::from_entries(vec![TreeEntry {
        name: "a.txt".into(),
        node: Node::File {
            blob: a,
            size: 2,
            executable: false,
        },
    }])
    .expect("tree");
    assert!(matches!(
        store.put_tree(&lying),
        Err(himg_store::StoreError::SizeMismatch {
            declared: 2,
            actual: 1,
            ..
        })
    ));
    // One that got in anyway (written by an older himg, or by hand) is found and removed.
    let d = lying.digest().expect("digest");
    let path = store.tree_path(&d);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, lying.encode().expect("encode")).expect("write");
    let (subject, issue) = only_problem(&store);
    assert_eq!(subject, Subject::Object(ObjectRef::Tree(d)));
    assert!(issue.contains("declares 2 bytes"), "{issue}");
    let report = store.repair().expect("repair");
    assert_eq!(report.objects_removed, vec![ObjectRef::Tree(d)]);
    assert!(store.verify().expect("verify").is_ok());
}

#[test]
fn repair_removes_every_output_derived_from_a_damaged_one() {
    let (_dir, store) = temp_store();
    // A source file, a layer packed from it, a manifest built from the layer, and a manifest that
    // came from a cache (it names the layer's blob, but no input output).
    let source = store.put_blob(b"source file").expect("blob");
    let layer_blob = store.put_oci_blob(b"layer made from it").expect("oci");
    let layer = OutputRecord {
        path: out_path("layer"),
        content: ObjectRef::Oci(layer_blob),
        size: 18,
        meta: serde_json::Value::Null,
        refs_outputs: vec![],
        refs_objects: vec![ObjectRef::Blob(source), ObjectRef::Oci(layer_blob)],
    };
    store
        .register_output(&[key("layer")], &layer)
        .expect("layer");
    let layer_row = LayerRecord {
        tree: himg_store::B3Digest::of(b"listing"),
        compression: "gzip".into(),
        diff_id: Sha256Digest::of(b"tar"),
        digest: layer_blob,
        size: 18,
    };
    store.register_layer(&layer_row).expect("layer row");
    let manifest_blob = store.put_oci_blob(b"manifest").expect("oci");
    let manifest = OutputRecord {
        path: out_path("manifest"),
        content: ObjectRef::Oci(manifest_blob),
        size: 8,
        meta: serde_json::Value::Null,
        refs_outputs: vec![layer.path.clone()],
        refs_objects: vec![ObjectRef::Oci(manifest_blob), ObjectRef::Oci(layer_blob)],
    };
    store
        .register_output(&[key("manifest")], &manifest)
        .expect("manifest");
    let cached_blob = store.put_oci_blob(b"cached manifest").expect("oci");
    let cached = OutputRecord {
        path: out_path("cached"),
        content: ObjectRef::Oci(cached_blob),
        size: 15,
        meta: serde_json::Value::Null,
        refs_outputs: vec![],
        refs_objects: vec![ObjectRef::Oci(cached_blob), ObjectRef::Oci(layer_blob)],
    };
    store
        .register_output(&[key("cached")], &cached)
        .expect("cached");
    let healthy = blob_output(&store, "healthy", b"fine");
    store
        .register_output(&[key("healthy")], &healthy)
        .expect("healthy");

    flip_byte(&store.blob_path(&source), 1);
    let report = store.repair().expect("repair");
    assert_eq!(report.objects_removed, vec![ObjectRef::Blob(source)]);
    let mut want = vec![
        out_path("cached").to_string(),
        out_path("layer").to_string(),
        out_path("manifest").to_string(),
    ];
    want.sort();
    assert_eq!(report.outputs_removed, want);
    assert_eq!(
        report.layers_removed, 1,
        "the layer may hold the damaged bytes"
    );
    assert_eq!(
        store
            .lookup_layer(&layer_row.tree, "gzip")
            .expect("lookup layer"),
        None
    );
    assert_eq!(
        store.lookup_derivation(&key("healthy")).expect("lookup"),
        Some(healthy)
    );
    assert!(store.verify().expect("verify").is_ok());
}
