use super::*;

fn raw(path: &str, kind: RawKind) -> RawEntry {
    RawEntry {
        path: path.to_owned(),
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: 0,
    }
}

fn keys(m: &Merger) -> Vec<&str> {
    m.files.keys().map(String::as_str).collect()
}

#[test]
fn implicit_parents_and_overwrite() {
    let mut m = Merger::default();
    let a = m.apply(0, "d", &raw("a/b/c", RawKind::File)).unwrap();
    assert_eq!(
        a,
        Applied::Wrote {
            path: "a/b/c".into(),
            new_parents: vec!["a".into(), "a/b".into()],
            removed: vec![],
            kept_dir: false
        }
    );
    assert_eq!(keys(&m), ["a", "a/b", "a/b/c"]);
    // A file replacing a directory removes the subtree.
    let a = m.apply(1, "d", &raw("a", RawKind::File)).unwrap();
    let Applied::Wrote { removed, .. } = a else {
        panic!()
    };
    assert_eq!(
        removed,
        vec![
            ("a/b/c".into(), false),
            ("a/b".into(), true),
            ("a".into(), true)
        ]
    );
    assert_eq!(keys(&m), ["a"]);
}

#[test]
fn whiteouts_hide_lower_layers_only() {
    let mut m = Merger::default();
    m.apply(0, "d", &raw("etc", RawKind::Dir)).unwrap();
    m.apply(0, "d", &raw("etc/a", RawKind::File)).unwrap();
    m.apply(0, "d", &raw("etc/b", RawKind::File)).unwrap();
    m.apply(1, "d", &raw("etc/c", RawKind::File)).unwrap();
    // Opaque after a same-layer sibling: the sibling stays.
    let r = m.apply(1, "d", &raw("etc", RawKind::Opaque)).unwrap();
    assert_eq!(
        r,
        Applied::Removed {
            deleted: "etc".into(),
            removed: vec![("etc/b".into(), false), ("etc/a".into(), false)]
        }
    );
    assert_eq!(keys(&m), ["etc", "etc/c"]);
    m.apply(2, "d", &raw("etc", RawKind::Whiteout)).unwrap();
    assert!(m.files.is_empty());
    // Whiteout of something absent does nothing.
    let r = m.apply(3, "d", &raw("nope/x", RawKind::Whiteout)).unwrap();
    assert!(matches!(r, Applied::Removed { removed, .. } if removed.is_empty()));
}

#[test]
fn symlinked_parents_resolve_inside_the_root() {
    let mut m = Merger::default();
    m.apply(0, "d", &raw("usr/bin", RawKind::Dir)).unwrap();
    m.apply(0, "d", &raw("bin", RawKind::Symlink("usr/bin".into())))
        .unwrap();
    m.apply(0, "d", &raw("abs", RawKind::Symlink("/usr".into())))
        .unwrap();
    let a = m.apply(0, "d", &raw("bin/ls", RawKind::File)).unwrap();
    assert!(matches!(a, Applied::Wrote { ref path, .. } if path == "usr/bin/ls"));
    let a = m.apply(0, "d", &raw("abs/bin/cat", RawKind::File)).unwrap();
    assert!(matches!(a, Applied::Wrote { ref path, .. } if path == "usr/bin/cat"));
    // A link climbing out of the root is refused when used as a directory.
    m.apply(0, "d", &raw("evil", RawKind::Symlink("../../etc".into())))
        .unwrap();
    let e = m
        .apply(0, "d", &raw("evil/passwd", RawKind::File))
        .unwrap_err();
    assert!(matches!(e, ImageError::EscapingLink { .. }), "{e}");
    // A loop is refused.
    m.apply(0, "d", &raw("l1", RawKind::Symlink("l2".into())))
        .unwrap();
    m.apply(0, "d", &raw("l2", RawKind::Symlink("l1".into())))
        .unwrap();
    assert!(m.apply(0, "d", &raw("l1/x", RawKind::File)).is_err());
    // Below a regular file.
    let e = m
        .apply(0, "d", &raw("bin/ls/x", RawKind::File))
        .unwrap_err();
    assert!(matches!(e, ImageError::ParentNotDirectory { .. }), "{e}");
}

#[test]
fn hardlinks_point_at_files() {
    let mut m = Merger::default();
    let mut f = raw("a", RawKind::File);
    f.size = 3;
    f.mode = 0o4755;
    m.apply(0, "d", &f).unwrap();
    m.files.get_mut("a").unwrap().sha256 = Some("sha256:x".into());
    m.apply(0, "d", &raw("b", RawKind::Hardlink("a".into())))
        .unwrap();
    let b = &m.files["b"];
    assert_eq!(b.kind, FileKind::Hardlink { target: "a".into() });
    assert_eq!(
        (b.size, b.mode, b.sha256.as_deref()),
        (3, 0o4755, Some("sha256:x"))
    );
    assert!(
        m.apply(0, "d", &raw("c", RawKind::Hardlink("zz".into())))
            .is_err()
    );
    m.apply(0, "d", &raw("dir", RawKind::Dir)).unwrap();
    assert!(
        m.apply(0, "d", &raw("c", RawKind::Hardlink("dir".into())))
            .is_err()
    );
}
