//! The generated dpkg database read by the real `dpkg-query`, and compared with the host's own database
//! for packages installed here at the same version.

use std::process::Command;

use super::super::dpkgdb::*;
use super::super::minimize::{MinimizePolicy, minimize};
use super::super::unpack::UnpackOptions;
use super::support::*;

const ALL: [&str; 8] = [
    "libc6",
    "base-files",
    "tzdata",
    "ca-certificates",
    "python3-minimal",
    "busybox",
    "zlib1g",
    "libssl",
];

fn host_stanza(package: &str, arch: &str) -> Option<String> {
    let status = std::fs::read_to_string("/var/lib/dpkg/status").ok()?;
    status
        .split("\n\n")
        .find(|s| {
            control_field(s, "Package").as_deref() == Some(package)
                && control_field(s, "Architecture").as_deref() == Some(arch)
        })
        .map(|s| format!("{}\n", s.trim_matches('\n')))
}

#[test]
fn dpkg_query_reads_generated_database() {
    let admin = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(admin.path().join("info")).expect("info dir");
    let mut stanzas = Vec::new();
    let mut expected = Vec::new();
    let mut compared_with_host = 0;
    for name in ALL {
        let (u, _) = unpack_real(name, &UnpackOptions::default());
        let stanza = status_stanza_with_conffiles(&u.control, &u.conffile_md5s);
        let pkg = control_field(&u.control, "Package").expect("Package");
        let version = control_field(&u.control, "Version").expect("Version");
        let arch = control_field(&u.control, "Architecture").expect("Architecture");
        expected.push(format!("{pkg} {version}"));

        // Same version installed on this host: our stanza and file list are dpkg's own.
        if let Some(host) = host_stanza(&pkg, &arch)
            && control_field(&host, "Version").as_deref() == Some(version.as_str())
        {
            // apt records the archive's Priority/Section overrides (from the Packages index).
            let prio = control_field(&host, "Priority").unwrap_or_default();
            let section = control_field(&host, "Section").unwrap_or_default();
            let with_index = status_stanza_full(
                &u.control,
                &u.conffile_md5s,
                &[("Priority", &prio), ("Section", &section)],
            );
            assert_eq!(
                with_index, host,
                "{pkg}: status stanza differs from the host's"
            );
            let host_list = std::fs::read_to_string(format!(
                "/var/lib/dpkg/info/{}.list",
                info_name(&u.control).expect("name")
            ))
            .expect("host .list");
            let mut host_lines: Vec<&str> = host_list.lines().collect();
            host_lines.sort();
            let ours = info_list(&u.entries);
            let mut our_lines: Vec<&str> = ours.lines().collect();
            our_lines.sort();
            assert_eq!(
                our_lines, host_lines,
                "{pkg}: .list differs from the host's"
            );
            compared_with_host += 1;
        }

        for (path, text) in info_files(&u.control, &u.entries, u.md5sums.as_deref(), &u.conffiles)
            .expect("info files")
        {
            let file = path
                .strip_prefix("/var/lib/dpkg/")
                .expect("under /var/lib/dpkg");
            std::fs::write(admin.path().join(file), text).expect("write info file");
        }
        stanzas.push(stanza);

        // status.d stanzas parse on their own.
        let single = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(single.path().join("info")).expect("info");
        let entries = status_d_entries(&u.control, u.md5sums.as_deref()).expect("status.d");
        assert_eq!(entries[0].0, format!("/var/lib/dpkg/status.d/{pkg}"));
        std::fs::write(single.path().join("status"), &entries[0].1).expect("write");
        let out = run(Command::new("dpkg-query")
            .arg(format!("--admindir={}", single.path().display()))
            .args(["-W", "-f", "${Package} ${Version}\n"]));
        assert_eq!(out, format!("{pkg} {version}\n"));
    }
    std::fs::write(admin.path().join("status"), status_file(&stanzas)).expect("write status");
    let (format_path, format) = info_format_file();
    std::fs::write(
        admin
            .path()
            .join(format_path.trim_start_matches("/var/lib/dpkg/")),
        format,
    )
    .expect("format");
    let admindir = format!("--admindir={}", admin.path().display());
    let out = run(Command::new("dpkg-query").arg(&admindir).args([
        "-W",
        "-f",
        "${Package} ${Version}\n",
    ]));
    expected.sort();
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);

    // `dpkg -L` and `dpkg -S` work from the .list files (shipped paths, as dpkg records them).
    let listed = run(Command::new("dpkg-query")
        .arg(&admindir)
        .args(["-L", "libc6"]));
    assert!(
        listed
            .lines()
            .any(|l| l == "/lib/x86_64-linux-gnu/libc.so.6"),
        "{listed}"
    );
    let owner = run(Command::new("dpkg-query")
        .arg(&admindir)
        .args(["-S", "/usr/bin/python3"]));
    assert!(owner.starts_with("python3-minimal: "), "{owner}");
    let status = run(Command::new("dpkg-query").arg(&admindir).args([
        "-W",
        "-f",
        "${db:Status-Abbrev}|${Conffiles}\n",
        "libc6",
    ]));
    assert!(status.starts_with("ii |"), "{status}");
    assert!(
        status.contains("/etc/ld.so.conf.d/x86_64-linux-gnu.conf "),
        "{status}"
    );
    eprintln!("compared {compared_with_host} packages byte-for-byte with the host's dpkg database");
}

/// After minimize, the list shrinks with the entries (dpkg's `path-exclude` does the same).
#[test]
fn list_follows_minimize() {
    let (u, _) = unpack_real("busybox", &UnpackOptions::default());
    let full = info_list(&u.entries);
    let m = minimize(u.entries, &MinimizePolicy::default());
    let small = info_list(&m.kept);
    assert!(full.contains("/usr/share/man/man1/busybox.1.gz\n"));
    assert!(!small.contains("/usr/share/man"));
    assert!(small.starts_with("/.\n"));
    assert!(small.contains("\n/bin/busybox\n"), "{small}");
    assert!(small.contains("\n/usr/share/doc/busybox/copyright\n"));
}
