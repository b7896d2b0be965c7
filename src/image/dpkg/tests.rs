use super::*;

/// Two stanzas as dpkg writes them in a Debian trixie image (libc6 abridged), plus a removed package.
const STATUS: &str = "\
Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 341
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 13.8+deb13u1
Replaces: base, dpkg (<= 1.15.0), miscutils
Provides: base
Pre-Depends: awk
Breaks: debian-security-support (<< 2019.04.25), initscripts (<< 2.88dsf-13.3)
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy of a Debian system, and
 several important miscellaneous files.

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12925
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc (2.41-12)
Version: 2.41-12+b1
Replaces: libc6-amd64
Depends: libgcc-s1
Recommends: libidn2-0 (>= 2.0.5~)
Breaks: aide (<< 0.17.3-4+b3), busybox (<< 1.30.1-6),
 fakechroot (<< 2.19-3.5), glibc-tools (<< 2.41)
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
Homepage: https://www.gnu.org/software/libc/libc.html

Package: oldpkg
Status: deinstall ok config-files
Architecture: all
Version: 1.0
";

fn entry(kind: FileKind, layer: usize) -> FileEntry {
    FileEntry {
        kind,
        mode: 0o644,
        ..FileEntry::implicit_dir(layer)
    }
}

#[test]
fn parses_status_stanzas() {
    let stanzas = parse_stanzas(STATUS);
    assert_eq!(stanzas.len(), 3);
    assert!(stanzas[1]["breaks"].contains("fakechroot (<< 2.19-3.5)"));
    let pkgs: Vec<InstalledPackage> = stanzas.iter().filter_map(package_of).collect();
    assert_eq!(pkgs.len(), 2, "config-files only package is not installed");
    let base = &pkgs[0];
    assert_eq!(
        (
            base.name.as_str(),
            base.version.as_str(),
            base.source.as_str()
        ),
        ("base-files", "13.8+deb13u1", "base-files")
    );
    assert_eq!(base.source_version, "13.8+deb13u1");
    assert_eq!(base.depends, ["awk"]);
    assert_eq!(base.provides, ["base"]);
    assert_eq!(base.installed_size_kib, Some(341));
    let libc = &pkgs[1];
    assert_eq!(
        (libc.source.as_str(), libc.source_version.as_str()),
        ("glibc", "2.41-12")
    );
    assert_eq!(libc.version, "2.41-12+b1");
    assert_eq!(libc.depends, ["libgcc-s1"]);
    assert_eq!(libc.architecture, "amd64");
}

#[test]
fn source_field_forms() {
    let s = |v: &str| parse_source(Some(&v.to_owned()), "bin", "1-1");
    assert_eq!(s("glibc (2.36-9)"), ("glibc".into(), "2.36-9".into()));
    assert_eq!(s("glibc"), ("glibc".into(), "1-1".into()));
    assert_eq!(
        parse_source(None, "bin", "1-1"),
        ("bin".into(), "1-1".into())
    );
}

#[test]
fn lists_resolve_merged_usr_and_pick_the_main_layer() {
    let mut files = BTreeMap::new();
    files.insert("usr".to_owned(), entry(FileKind::Dir, 0));
    files.insert("usr/lib".to_owned(), entry(FileKind::Dir, 0));
    files.insert(
        "lib".to_owned(),
        entry(
            FileKind::Symlink {
                target: "usr/lib".into(),
            },
            0,
        ),
    );
    files.insert("usr/lib/libc.so.6".to_owned(), entry(FileKind::File, 2));
    files.insert("usr/lib/ld.so".to_owned(), entry(FileKind::File, 2));
    files.insert("usr/share".to_owned(), entry(FileKind::Dir, 1));
    files.insert("usr/share/doc".to_owned(), entry(FileKind::File, 1));
    let list = "/.\n/lib\n/lib/libc.so.6\n/./lib/ld.so\n/usr/share/doc\n/usr/share/gone\n";
    let paths = list_paths(list, &files);
    assert_eq!(
        paths,
        ["lib", "usr/lib/ld.so", "usr/lib/libc.so.6", "usr/share/doc"]
    );
    assert_eq!(main_layer(&paths, &files), Some(2));

    let mut captured = BTreeMap::new();
    captured.insert(STATUS.to_owned(), Vec::new());
    captured.insert(super::STATUS.to_owned(), STATUS.as_bytes().to_vec());
    captured.insert(format!("{INFO}libc6:amd64.list"), list.as_bytes().to_vec());
    files.insert(super::STATUS.to_owned(), entry(FileKind::File, 2));
    let pkgs = packages(&captured, &files);
    assert_eq!(pkgs.len(), 2);
    assert_eq!(pkgs[1].name, "libc6");
    assert_eq!(pkgs[1].files.len(), 4);
    assert_eq!(pkgs[1].layer, Some(2));
    assert!(pkgs[0].files.is_empty() && pkgs[0].layer.is_none());
}

#[test]
fn selects_dpkg_files() {
    assert!(is_dpkg_file("var/lib/dpkg/status"));
    assert!(is_dpkg_file("var/lib/dpkg/status.d/libc6"));
    assert!(is_dpkg_file("var/lib/dpkg/info/libc6:amd64.list"));
    assert!(!is_dpkg_file("var/lib/dpkg/info/libc6:amd64.md5sums"));
    assert!(!is_dpkg_file("var/lib/dpkg/status-old"));
}
