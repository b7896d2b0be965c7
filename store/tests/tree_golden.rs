//! The tree encoding is a storage format: these bytes and digests must never change.
//! If this test fails, you changed the format — add a new format version instead.

use himg_store::{B3Digest, Node, Tree, TreeEntry};

fn golden_tree() -> Tree {
    Tree::from_entries(vec![
        TreeEntry {
            name: "bin".into(),
            node: Node::Dir {
                tree: B3Digest::from_bytes([0x11; 32]),
            },
        },
        TreeEntry {
            name: "hello.sh".into(),
            node: Node::File {
                blob: B3Digest::from_bytes([0xab; 32]),
                size: 0x0102_0304,
                executable: true,
            },
        },
        TreeEntry {
            name: "lib".into(),
            node: Node::Symlink {
                target: "usr/lib".into(),
            },
        },
    ])
    .expect("valid tree")
}

const GOLDEN_HEX: &str = concat!(
    "01",       // version
    "03000000", // 3 entries
    // "bin": dir
    "0300",
    "62696e",
    "02",
    "1111111111111111111111111111111111111111111111111111111111111111",
    // "hello.sh": executable file of 0x01020304 bytes
    "0800",
    "68656c6c6f2e7368",
    "01",
    "abababababababababababababababababababababababababababababababab",
    "0403020100000000",
    "01",
    // "lib": symlink to "usr/lib"
    "0300",
    "6c6962",
    "03",
    "0700",
    "7573722f6c6962",
);

const GOLDEN_DIGEST: &str = "b3:bae4fa0e5fef59dcf383aea5905c3dce352639d21d3fb414c1499166379338c4";
const EMPTY_DIGEST: &str = "b3:7784b17d1d8ff658cfe8f0e111316a964c95233a486ccbdfaf86539c9e3e3a30";

#[test]
fn golden_encoding() {
    let t = golden_tree();
    let enc = t.encode().expect("encode");
    assert_eq!(hex::encode(&enc), GOLDEN_HEX);
    assert_eq!(Tree::decode(&enc).expect("decode"), t);
    assert_eq!(t.digest().expect("digest").to_string(), GOLDEN_DIGEST);
}

#[test]
fn golden_empty_tree() {
    let enc = Tree::empty().encode().expect("encode");
    assert_eq!(enc, [1, 0, 0, 0, 0]);
    assert_eq!(
        Tree::empty().digest().expect("digest").to_string(),
        EMPTY_DIGEST
    );
}
