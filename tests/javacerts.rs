//! The Java trust store judged by the JDK itself: a store generated from the host's Mozilla CA set
//! (`/usr/share/ca-certificates/mozilla`, from ca-certificates) is listed by the host's `keytool`, which
//! must read every entry under the alias ca-certificates-java would give it. Fails (does not skip)
//! when `keytool` or the certificates are missing; `bash tests/run.sh` installs both.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use himg::debian::javacerts;

const MOZILLA: &str = "/usr/share/ca-certificates/mozilla";

fn host_certs() -> Vec<(String, Vec<u8>)> {
    let mut certs = Vec::new();
    let dir = std::fs::read_dir(MOZILLA)
        .unwrap_or_else(|e| panic!("cannot read {MOZILLA} ({e}); run `bash tests/run.sh`"));
    for entry in dir {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "crt") {
            let bytes = std::fs::read(&path).expect("read certificate");
            certs.push((path.to_string_lossy().into_owned(), bytes));
        }
    }
    assert!(
        certs.len() >= 100,
        "only {} certificates in {MOZILLA}",
        certs.len()
    );
    certs
}

#[test]
fn keytool_lists_every_host_ca() {
    common::require_tool("keytool");
    let certs = host_certs();
    let store = javacerts::java_cacerts(&certs, 1_700_000_000).expect("store");
    assert_eq!(
        store,
        javacerts::java_cacerts(&certs, 1_700_000_000).expect("store"),
        "not reproducible"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("cacerts");
    std::fs::write(&out, &store).expect("write store");

    let listed = Command::new("keytool")
        .args(["-list", "-storepass", "changeit", "-keystore"])
        .arg(&out)
        .output()
        .expect("run keytool");
    let stdout = String::from_utf8_lossy(&listed.stdout);
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(
        listed.status.success(),
        "keytool failed:\n{stdout}\n{stderr}"
    );
    assert!(
        !format!("{stdout}{stderr}").to_lowercase().contains("error"),
        "keytool reported an error:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("Keystore type: JKS"), "{stdout}");

    let aliases: BTreeSet<&str> = stdout
        .lines()
        .filter(|l| l.contains(", trustedCertEntry,"))
        .filter_map(|l| l.split(", ").next())
        .collect();
    assert!(aliases.len() >= 100, "{} entries:\n{stdout}", aliases.len());
    let expected: BTreeSet<String> = certs.iter().map(|(p, _)| javacerts::alias(p)).collect();
    let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(aliases, expected);
    assert!(stdout.contains(&format!("Your keystore contains {} entries", certs.len())));
}
