//! The CA bundle against the real `update-ca-certificates`, run on the unpacked ca-certificates package,
//! and against this host's own bundle.

use std::collections::BTreeSet;
use std::process::Command;

use super::super::cabundle::{CERTS_DIR, ca_bundle, ca_cert_links, is_ca_cert};
use super::super::unpack::{DebEntryKind, UnpackOptions};
use super::support::*;

#[test]
fn bundle_matches_update_ca_certificates() {
    let (u, sink) = unpack_real("ca-certificates", &UnpackOptions::default());
    let certs: Vec<(String, Vec<u8>)> = u
        .entries
        .iter()
        .filter(|e| is_ca_cert(&e.path))
        .filter_map(|e| match &e.kind {
            DebEntryKind::File { content, .. } => {
                Some((e.path.clone(), sink.get(content)?.to_vec()))
            }
            _ => None,
        })
        .collect();
    assert!(certs.len() > 100, "only {} certificates", certs.len());
    let ours = ca_bundle(&certs);

    // Run the real script on the same files: every certificate enabled, as the package's config does.
    let root = tempfile::tempdir().expect("tempdir");
    materialise(root.path(), &u.entries, &sink);
    let certs_dir = root.path().join(CERTS_DIR.trim_start_matches('/'));
    let mut names: Vec<String> = certs
        .iter()
        .map(|(p, _)| {
            p.strip_prefix(&format!("{CERTS_DIR}/"))
                .expect("below")
                .to_owned()
        })
        .collect();
    names.sort();
    let conf = root.path().join("ca-certificates.conf");
    std::fs::write(
        &conf,
        names.iter().map(|n| format!("{n}\n")).collect::<String>(),
    )
    .expect("conf");
    let out_dir = root.path().join("etc-ssl-certs");
    let empty = root.path().join("empty");
    std::fs::create_dir_all(&out_dir).expect("out");
    std::fs::create_dir_all(&empty).expect("empty");
    run(Command::new("update-ca-certificates")
        .arg("--certsconf")
        .arg(&conf)
        .arg("--certsdir")
        .arg(&certs_dir)
        .arg("--localcertsdir")
        .arg(&empty)
        .arg("--etccertsdir")
        .arg(&out_dir)
        .arg("--hooksdir")
        .arg(&empty));
    let theirs =
        std::fs::read_to_string(out_dir.join("ca-certificates.crt")).expect("bundle written");
    assert!(
        ours == theirs,
        "bundle differs from update-ca-certificates ({} vs {} bytes)",
        ours.len(),
        theirs.len()
    );

    // The <name>.pem links it made (the hash links aside) are the ones we describe.
    let made: BTreeSet<String> = std::fs::read_dir(&out_dir)
        .expect("read out")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pem"))
        .collect();
    let cert_paths: Vec<String> = certs.iter().map(|(p, _)| p.clone()).collect();
    let links = ca_cert_links(&cert_paths);
    let ours_links: BTreeSet<String> = links
        .iter()
        .map(|(l, _)| l.strip_prefix("/etc/ssl/certs/").expect("etc").to_owned())
        .collect();
    assert_eq!(ours_links, made);
    for (link, target) in &links {
        let on_disk =
            std::fs::read_link(out_dir.join(link.strip_prefix("/etc/ssl/certs/").expect("etc")))
                .expect("link");
        assert_eq!(
            on_disk,
            certs_dir.join(
                target
                    .strip_prefix(&format!("{CERTS_DIR}/"))
                    .expect("below")
            )
        );
    }
}

/// This host's bundle holds exactly our bundle's certificates (plus local ones, if any). The order is
/// not compared: on a host where `ca-certificates` was upgraded, `/etc/ca-certificates.conf` lists the
/// new certificates after the old ones, while a fresh install (what an image is) lists them sorted —
/// `bundle_matches_update_ca_certificates` checks the order against a fresh run.
#[test]
fn bundle_matches_host() {
    let conf =
        std::fs::read_to_string("/etc/ca-certificates.conf").expect("host has ca-certificates");
    let mut certs = Vec::new();
    for line in conf.lines() {
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let path = format!("{CERTS_DIR}/{line}");
        if let Ok(bytes) = std::fs::read(&path) {
            certs.push((path, bytes));
        }
    }
    let blocks = |text: &str| -> BTreeSet<String> {
        text.split_inclusive("-----END CERTIFICATE-----")
            .map(|b| b.trim().to_owned())
            .filter(|b| b.starts_with("-----BEGIN CERTIFICATE-----"))
            .collect()
    };
    let ours = ca_bundle(&certs);
    let host = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").expect("host bundle");
    let (ours, host) = (blocks(&ours), blocks(&host));
    assert_eq!(ours.len(), certs.len());
    let missing = ours.difference(&host).count();
    assert_eq!(
        missing,
        0,
        "{missing} of our {} certificates are not in the host's bundle",
        ours.len()
    );
}
