//! Round trips of blobs, trees and OCI blobs.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;

use common::temp_store;
use himg_store::{
    B3Digest, Node, ObjectRef, Sha256Digest, StoreError, Tree, TreeEntry, TreeError, hash_file,
};

#[test]
fn blob_round_trip() {
    let (_dir, store) = temp_store();
    let d = store.put_blob(b"hello").expect("put");
    assert_eq!(d, B3Digest::of(b"hello"));
    assert!(store.has_blob(&d));
    let mut s = String::new();
    store
        .open_blob(&d)
        .expect("open")
        .read_to_string(&mut s)
        .expect("read");
    assert_eq!(s, "hello");
    assert_eq!(store.read_blob(&d).expect("read"), b"hello");
    // Idempotent.
    assert_eq!(store.put_blob(b"hello").expect("put again"), d);

    let path = store.blob_path(&d);
    let hex = d.to_hex();
    assert!(path.ends_with(format!("v1/blobs/b3/{}/{}", &hex[..2], &hex[2..])));
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o444);

    let missing = B3Digest::of(b"nope");
    assert!(!store.has_blob(&missing));
    assert!(matches!(
        store.open_blob(&missing),
        Err(StoreError::MissingObject(ObjectRef::Blob(m))) if m == missing
    ));
    // The empty blob is a blob like any other.
    let empty = store.put_blob(b"").expect("empty");
    assert_eq!(store.read_blob(&empty).expect("read"), b"");
}

#[test]
fn blob_writer_streams() {
    let (_dir, store) = temp_store();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut w = store.blob_writer().expect("writer");
    for chunk in data.chunks(100_000) {
        w.write_all(chunk).expect("write");
    }
    let (d, size) = w.finish().expect("finish");
    assert_eq!(size, data.len() as u64);
    assert_eq!(d, B3Digest::of(&data));
    assert_eq!(store.read_blob(&d).expect("read"), data);
    // Writing the same content again is fine and leaves one file.
    let mut w = store.blob_writer().expect("writer");
    w.write_all(&data).expect("write");
    assert_eq!(w.finish().expect("finish").0, d);
    // A dropped writer leaves nothing behind.
    let mut w = store.blob_writer().expect("writer");
    w.write_all(b"abandoned").expect("write");
    drop(w);
    assert!(!store.has_blob(&B3Digest::of(b"abandoned")));
    let tmp = store.layout_dir().join("tmp");
    assert_eq!(std::fs::read_dir(tmp).expect("tmp").count(), 0);
}

#[test]
fn put_blob_from_path_and_hash_file() {
    let (dir, store) = temp_store();
    for len in [0usize, 10, 128 * 1024 - 1, 128 * 1024, 1_000_000] {
        let src = dir.path().join(format!("src-{len}"));
        let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        std::fs::write(&src, &data).expect("write");
        assert_eq!(
            hash_file(&src).expect("hash"),
            (B3Digest::of(&data), len as u64)
        );
        let (d, size) = store.put_blob_from_path(&src).expect("put");
        assert_eq!((d, size), (B3Digest::of(&data), len as u64));
        assert_eq!(store.read_blob(&d).expect("read"), data);
        // Again: already present.
        assert_eq!(store.put_blob_from_path(&src).expect("again"), (d, size));
    }
    assert!(
        store
            .put_blob_from_path(&dir.path().join("missing"))
            .is_err()
    );
}

#[test]
fn oci_round_trip() {
    let (_dir, store) = temp_store();
    let d = store.put_oci_blob(b"{}").expect("put");
    assert_eq!(d, Sha256Digest::of(b"{}"));
    assert!(store.has_oci_blob(&d));
    assert!(
        store
            .oci_blob_path(&d)
            .ends_with(format!("v1/oci/sha256/{}", d.to_hex()))
    );
    let mut w = store.oci_blob_writer().expect("writer");
    w.write_all(b"layer ").expect("write");
    w.write_all(b"bytes").expect("write");
    let (d2, size) = w.finish().expect("finish");
    assert_eq!((d2, size), (Sha256Digest::of(b"layer bytes"), 11));
    let mut v = Vec::new();
    store
        .open_oci_blob(&d2)
        .expect("open")
        .read_to_end(&mut v)
        .expect("read");
    assert_eq!(v, b"layer bytes");
    assert!(matches!(
        store.open_oci_blob(&Sha256Digest::of(b"x")),
        Err(StoreError::MissingObject(ObjectRef::Oci(_)))
    ));
}

#[test]
fn tree_round_trip_and_children_required() {
    let (_dir, store) = temp_store();
    let a = store.put_blob(b"a").expect("blob");
    let sub = store.put_tree(&Tree::empty()).expect("empty tree");
    let tree = Tree::from_entries(vec![
        TreeEntry {
            name: "a.txt".into(),
            node: Node::File {
                blob: a,
                size: 1,
                executable: false,
            },
        },
        TreeEntry {
            name: "bin".into(),
            node: Node::Dir { tree: sub },
        },
        TreeEntry {
            name: "link".into(),
            node: Node::Symlink {
                target: "a.txt".into(),
            },
        },
    ])
    .expect("tree");
    let d = store.put_tree(&tree).expect("put tree");
    assert_eq!(d, tree.digest().expect("digest"));
    assert!(store.has_tree(&d));
    assert_eq!(store.get_tree(&d).expect("get"), tree);
    assert_eq!(store.put_tree(&tree).expect("again"), d);

    let missing_blob = B3Digest::of(b"not stored");
    let t = Tree::from_entries(vec![TreeEntry {
        name: "f".into(),
        node: Node::File {
            blob: missing_blob,
            size: 10,
            executable: true,
        },
    }])
    .expect("tree");
    assert!(matches!(
        store.put_tree(&t),
        Err(StoreError::MissingObject(ObjectRef::Blob(b))) if b == missing_blob
    ));
    let t = Tree::from_entries(vec![TreeEntry {
        name: "d".into(),
        node: Node::Dir { tree: missing_blob },
    }])
    .expect("tree");
    assert!(matches!(
        store.put_tree(&t),
        Err(StoreError::MissingObject(ObjectRef::Tree(_)))
    ));
    let unsorted = Tree {
        entries: vec![
            TreeEntry {
                name: "z".into(),
                node: Node::Symlink { target: "x".into() },
            },
            TreeEntry {
                name: "a".into(),
                node: Node::Symlink { target: "x".into() },
            },
        ],
    };
    assert!(matches!(
        store.put_tree(&unsorted),
        Err(StoreError::InvalidTree {
            object: None,
            source: TreeError::Unsorted { .. }
        })
    ));
    assert!(matches!(
        store.get_tree(&missing_blob),
        Err(StoreError::MissingObject(ObjectRef::Tree(_)))
    ));
}

#[test]
fn get_tree_detects_corruption() {
    let (_dir, store) = temp_store();
    let t = Tree::from_entries(vec![TreeEntry {
        name: "l".into(),
        node: Node::Symlink {
            target: "target".into(),
        },
    }])
    .expect("tree");
    let d = store.put_tree(&t).expect("put");
    common::flip_byte(&store.tree_path(&d), 12);
    assert!(matches!(
        store.get_tree(&d),
        Err(StoreError::Corrupt { object: ObjectRef::Tree(o), .. }) if o == d
    ));
    let b = store.put_blob(b"blob data").expect("put");
    common::flip_byte(&store.blob_path(&b), 0);
    assert!(matches!(
        store.read_blob(&b),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn errors_have_sources_and_context() {
    let (_dir, store) = temp_store();
    let err = store
        .put_blob_from_path(std::path::Path::new("/nonexistent/file"))
        .expect_err("missing file");
    assert!(err.is_not_found());
    assert!(err.to_string().contains("/nonexistent/file"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
}
