//! The apt chain of trust, fetched from a hermetic fixture repository on 127.0.0.1.

#[allow(dead_code)]
mod support;

use std::path::Path;
use std::time::Duration;

use himg::debian::fetch::{Credentials, Expected, FetchError, FetchOptions, Fetcher};
use himg::debian::keyring::Keyring;
use himg::debian::release::{
    ReleaseError, fetch_inrelease, fetch_verified_index, index_path, verify_inrelease,
    verify_inrelease_named,
};
use support::repo::DEFAULT_DATE;
use support::{BuiltRepo, DebBuilder, IndexFormat, RepoBuilder, TestKey, serve};

const NOW: i64 = DEFAULT_DATE + 3600;

fn fetcher() -> Fetcher {
    Fetcher::new(FetchOptions {
        timeout: Duration::from_secs(5),
        backoff: Duration::from_millis(5),
        ..FetchOptions::default()
    })
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!("\ncaused by: {c}"));
        cur = c.source();
    }
    s
}

fn hello() -> support::Deb {
    DebBuilder::new("hello", "1.0-1", "amd64")
        .depends("libc6 (>= 2.36)")
        .file("/usr/bin/hello", b"#!/bin/sh\necho hello\n", 0o755)
        .build()
        .expect("deb")
}

fn big() -> support::Deb {
    // incompressible enough to be large: 300 KiB of pseudo-random bytes
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let data: Vec<u8> = (0..300 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    DebBuilder::new("big", "2:3.0-1", "amd64")
        .source("bigsrc (3.0-1)")
        .file("/usr/share/big/blob", &data, 0o644)
        .build()
        .expect("deb")
}

fn repo_with(key: &TestKey, edit: impl FnOnce(&mut RepoBuilder)) -> BuiltRepo {
    let mut rb = RepoBuilder::new();
    rb.sign_with(key);
    rb.suite("trixie")
        .suite_field("stable")
        .add("main", &hello())
        .add("main", &big());
    edit(&mut rb);
    rb.write_temp().expect("write repo")
}

fn keyring(key: &TestKey) -> Keyring {
    Keyring::from_bytes_named("test.gpg", &key.public_keyring()).expect("keyring")
}

#[test]
fn signed_repo_verifies_over_http_and_index_parses() {
    let key = TestKey::generate("archive");
    let repo = repo_with(&key, |_| {});
    let server = serve(repo.root()).expect("serve");
    let f = fetcher();
    let rel =
        fetch_inrelease(&f, &server.base_url, "trixie", &keyring(&key), NOW).expect("verified");
    assert_eq!(rel.codename.as_deref(), Some("trixie"));
    assert_eq!(rel.suite.as_deref(), Some("stable"));
    assert_eq!(rel.origin.as_deref(), Some("himg-test"));
    assert_eq!(rel.date, DEFAULT_DATE);
    assert_eq!(rel.architectures, vec!["amd64"]);
    assert_eq!(rel.components, vec!["main"]);
    assert!(rel.acquire_by_hash);
    assert_eq!(rel.signed_by, vec![key.fingerprint()]);
    rel.check_suite("stable").expect("suite alias");

    let dir = tempfile::tempdir().expect("tmp");
    let text = fetch_verified_index(
        &f,
        &server.base_url,
        "trixie",
        &rel,
        "main",
        "amd64",
        dir.path(),
    )
    .expect("index");
    let text = String::from_utf8(text).expect("utf8");
    assert!(text.starts_with("Package: big\n"), "{text}");
    assert!(text.contains("\nPackage: hello\n"));
    assert!(text.contains("Filename: pool/main/b/bigsrc/big_3.0-1_amd64.deb\n"));
    assert!(text.contains("Source: bigsrc (3.0-1)\n"));
    assert!(text.contains("Depends: libc6 (>= 2.36)\n"));
}

#[test]
fn wrong_key_is_refused_with_the_fix() {
    let key = TestKey::generate("archive");
    let other = TestKey::generate("someone-else");
    let repo = repo_with(&key, |_| {});
    let bytes = std::fs::read(repo.path("dists/trixie/InRelease")).expect("read");
    let err = verify_inrelease(&bytes, &keyring(&other), NOW).expect_err("must refuse");
    let msg = chain(&err);
    assert!(matches!(err, ReleaseError::UntrustedSigner { .. }), "{msg}");
    assert!(
        msg.contains("InRelease of trixie is not signed by any key in keyring test.gpg"),
        "{msg}"
    );
    assert!(
        msg.contains(&key.signing_fingerprint()),
        "names the signer: {msg}"
    );
    assert!(
        msg.contains(&other.fingerprint()),
        "names the keyring's keys: {msg}"
    );
    assert!(
        msg.contains("check `keyring` in your repository block"),
        "{msg}"
    );
}

#[test]
fn tampered_inrelease_is_refused() {
    let key = TestKey::generate("archive");
    let repo = repo_with(&key, |_| {});
    repo.tamper_inrelease_body("trixie").expect("tamper");
    let bytes = std::fs::read(repo.path("dists/trixie/InRelease")).expect("read");
    let err = verify_inrelease(&bytes, &keyring(&key), NOW).expect_err("must refuse");
    assert!(
        matches!(err, ReleaseError::InvalidSignature { .. }),
        "{}",
        chain(&err)
    );
    assert!(err.to_string().contains("does not verify"), "{err}");
}

/// Every way of damaging an InRelease — a flipped byte anywhere in the signature block, a
/// damaged armor line or checksum, a truncation at any point, a changed or unknown `Hash`
/// header, a missing or repeated block marker — is refused with a message that names the file
/// and the rule, never a parser's internal assertion, and never a panic.
#[test]
fn every_tampered_inrelease_is_refused_with_a_clean_message() {
    let key = TestKey::generate("archive");
    let repo = repo_with(&key, |_| {});
    let good = std::fs::read_to_string(repo.path("dists/trixie/InRelease")).expect("read");
    let keyring = keyring(&key);
    let untouched =
        verify_inrelease(good.as_bytes(), &keyring, NOW).expect("the untouched file verifies");
    let sig_start = good
        .find("-----BEGIN PGP SIGNATURE-----")
        .expect("signature block");
    let mut variants: Vec<(String, Vec<u8>)> = Vec::new();
    // Every byte of the signature block, flipped to another base64 character (or a bit flip).
    for i in sig_start..good.len() {
        let mut b = good.clone().into_bytes();
        b[i] = match b[i] {
            b'A' => b'B',
            b'\n' => b' ',
            c if c.is_ascii_alphanumeric() => b'A',
            c => c ^ 1,
        };
        if b != good.as_bytes() {
            variants.push((format!("signature byte {i} changed"), b));
        }
    }
    // Truncated at every line end and in the middle of every line.
    let mut cut = 0;
    while let Some(j) = good[cut..].find('\n') {
        let end = cut + j;
        if end >= good.trim_end().len() {
            break; // only the final line break would go
        }
        variants.push((
            format!("truncated at {end}"),
            good.as_bytes()[..end].to_vec(),
        ));
        variants.push((
            format!("truncated at {}", (cut + end) / 2),
            good.as_bytes()[..(cut + end) / 2].to_vec(),
        ));
        cut = end + 1;
    }
    let replace = |from: &str, to: &str| good.replacen(from, to, 1).into_bytes();
    let hash_line = good
        .lines()
        .find(|l| l.starts_with("Hash: "))
        .expect("a Hash header")
        .to_string();
    for (what, bytes) in [
        ("hash header SHA1", replace(&hash_line, "Hash: SHA1")),
        (
            "hash header unknown",
            replace(&hash_line, "Hash: WHIRLPOOL9"),
        ),
        ("hash header renamed", replace(&hash_line, "Hesh: SHA512")),
        (
            "extra header",
            replace(&hash_line, &format!("{hash_line}\nComment: x")),
        ),
        (
            "no blank line after headers",
            replace(&format!("{hash_line}\n\n"), &format!("{hash_line}\n")),
        ),
        (
            "no begin marker",
            replace("-----BEGIN PGP SIGNED MESSAGE-----\n", ""),
        ),
        (
            "wrong begin marker",
            replace(
                "-----BEGIN PGP SIGNED MESSAGE-----",
                "-----BEGIN PGP MESSAGE-----",
            ),
        ),
        (
            "no signature marker",
            replace("-----BEGIN PGP SIGNATURE-----\n", ""),
        ),
        (
            "signature marker renamed",
            replace(
                "-----BEGIN PGP SIGNATURE-----",
                "-----BEGIN PGP PUBLIC KEY BLOCK-----",
            ),
        ),
        ("no end marker", replace("-----END PGP SIGNATURE-----", "")),
        (
            "end marker renamed",
            replace("-----END PGP SIGNATURE-----", "-----END PGP MESSAGE-----"),
        ),
        ("leading text", format!("Origin: evil\n{good}").into_bytes()),
        ("two messages", format!("{good}{good}").into_bytes()),
        (
            "signature block twice",
            format!("{}{}", good, &good[sig_start..]).into_bytes(),
        ),
        ("empty", Vec::new()),
        ("not UTF-8", [good.as_bytes(), b"\xff\xfe"].concat()),
        ("NUL in the text", replace("Origin: ", "Origin: \0")),
    ] {
        variants.push((what.to_string(), bytes));
    }
    assert!(variants.len() > 200, "{} variants", variants.len());
    let mut still_valid = 0;
    for (what, bytes) in &variants {
        let verdict = std::panic::catch_unwind(|| {
            verify_inrelease_named(bytes, &keyring, NOW, Some("trixie"))
        });
        let Ok(result) = verdict else {
            panic!("{what}: verification panicked");
        };
        let Err(err) = &result else {
            // OpenPGP does not protect everything in a signature packet (the unhashed
            // subpackets, the armor checksum): a change there may still verify, but only as
            // the very same signed Release.
            assert!(
                what.starts_with("signature byte") && result.as_ref().ok() == Some(&untouched),
                "{what}: a tampered InRelease was accepted"
            );
            still_valid += 1;
            continue;
        };
        let msg = chain(err);
        assert!(msg.starts_with("InRelease of trixie "), "{what}: {msg}");
        for internal in ["assertion", "left:", "right:", "`(left"] {
            assert!(
                !msg.contains(internal),
                "{what}: internal detail in {msg:?}"
            );
        }
        assert!(
            matches!(
                err,
                ReleaseError::NotClearsigned { .. }
                    | ReleaseError::DamagedSignature { .. }
                    | ReleaseError::InvalidSignature { .. }
                    | ReleaseError::UntrustedSigner { .. }
            ),
            "{what}: {msg}"
        );
    }
    assert!(
        still_valid * 10 < variants.len(),
        "{still_valid} of {} changes left a valid signature",
        variants.len()
    );
}

/// himg splits clearsigned messages itself (linear, with its own messages); the text it
/// verifies is exactly the OpenPGP library's: dash escapes, trailing blanks, CR LF, empty lines.
#[test]
fn clearsigned_text_is_split_as_the_openpgp_library_does() {
    use himg::debian::clearsigned::split;
    use pgp::composed::CleartextSignedMessage;
    let key = TestKey::generate("archive");
    for text in [
        "A: b\n",
        "A: b  \t\n",
        "A: b\n-----BEGIN PGP SIGNATURE-----\n- x\n-y\n",
        "A: b\r\nC: d\r\n",
        "x\n\n\ny\n\n",
        "no line break at the end",
        "",
    ] {
        let signed = String::from_utf8(key.sign_cleartext(text)).expect("utf8");
        let ours = split(&signed).expect("splits");
        let (theirs, _) = CleartextSignedMessage::from_string(&signed).expect("parses");
        assert_eq!(ours.signed_text, theirs.signed_text(), "{text:?}");
        // (The library's signer does not trim trailing blanks; GnuPG does, as the RFC says.)
        let blanks_at_line_ends = text.contains(" \n") || text.contains("\t\n");
        assert!(
            blanks_at_line_ends
                || theirs.signatures().iter().all(|sig| matches!(
                    keyring(&key).check_signature(sig, ours.signed_text.as_bytes(), NOW),
                    himg::debian::keyring::SigCheck::Good { .. }
                )),
            "{text:?}"
        );
    }
}

#[test]
fn garbage_and_unsigned_release_are_refused() {
    let key = TestKey::generate("archive");
    let repo = repo_with(&key, |_| {});
    let plain = std::fs::read(repo.path("dists/trixie/Release")).expect("read");
    let err = verify_inrelease(&plain, &keyring(&key), NOW).expect_err("unsigned");
    assert!(matches!(err, ReleaseError::NotClearsigned { .. }), "{err}");
    let err = verify_inrelease(b"<html>503</html>", &keyring(&key), NOW).expect_err("html");
    assert!(matches!(err, ReleaseError::NotClearsigned { .. }), "{err}");
    // Unsigned text appended after the signature must not be parsed, and the parser refuses it.
    let mut signed = std::fs::read(repo.path("dists/trixie/InRelease")).expect("read");
    signed.extend_from_slice(b"\nValid-Until: Sat, 01 Jan 2000 00:00:00 UTC\n");
    assert!(verify_inrelease(&signed, &keyring(&key), NOW).is_err());
}

#[test]
fn expired_valid_until_is_refused_and_a_snapshot_is_judged_at_its_time() {
    let key = TestKey::generate("archive");
    let until = DEFAULT_DATE + 86_400;
    let repo = repo_with(&key, |rb| {
        rb.suite("trixie").valid_until(Some(until));
    });
    let bytes = std::fs::read(repo.path("dists/trixie/InRelease")).expect("read");
    let err = verify_inrelease(&bytes, &keyring(&key), until + 1).expect_err("expired");
    let msg = err.to_string();
    assert!(matches!(err, ReleaseError::Expired { .. }), "{msg}");
    assert!(
        msg.contains("InRelease of trixie expired on 2025-01-02 00:00:00 UTC (Valid-Until"),
        "{msg}"
    );
    let ok = verify_inrelease(&bytes, &keyring(&key), until - 1).expect("still valid");
    assert_eq!(ok.valid_until, Some(until));
}

#[test]
fn date_in_the_future_is_refused_beyond_ten_minutes() {
    let key = TestKey::generate("archive");
    let repo = repo_with(&key, |_| {});
    let bytes = std::fs::read(repo.path("dists/trixie/InRelease")).expect("read");
    verify_inrelease(&bytes, &keyring(&key), DEFAULT_DATE - 599).expect("within skew");
    let err = verify_inrelease(&bytes, &keyring(&key), DEFAULT_DATE - 601).expect_err("future");
    assert!(matches!(err, ReleaseError::NotYetValid { .. }), "{err}");
    assert!(
        err.to_string().contains("check this machine's clock"),
        "{err}"
    );
}

#[test]
fn sha1_signatures_are_refused() {
    // Ed25519 refuses to sign SHA-1 digests at all; RSA still can, so sign with RSA.
    let key = TestKey::generate_with(
        "archive",
        support::TestKeyOptions {
            rsa: true,
            signing_subkey: true,
        },
    );
    let repo = repo_with(&key, |rb| {
        rb.suite("trixie")
            .signature_hash(pgp::crypto::hash::HashAlgorithm::Sha1);
    });
    let bytes = std::fs::read(repo.path("dists/trixie/InRelease")).expect("read");
    let err = verify_inrelease(&bytes, &keyring(&key), NOW).expect_err("sha1");
    assert!(err.to_string().contains("SHA1"), "{err}");
}

#[test]
fn unknown_signers_are_ignored_when_one_signature_is_good() {
    let key = TestKey::generate("archive");
    let stranger = TestKey::generate("stranger");
    let mut rb = RepoBuilder::new();
    rb.sign_with(&stranger).sign_with(&key);
    rb.suite("trixie").add("main", &hello());
    let repo = rb.write_temp().expect("repo");
    let bytes = std::fs::read(repo.path("dists/trixie/InRelease")).expect("read");
    let rel = verify_inrelease(&bytes, &keyring(&key), NOW).expect("one good signature suffices");
    assert_eq!(rel.signed_by, vec![key.fingerprint()]);
}

#[test]
fn keys_signing_with_the_primary_and_rsa_keys_work() {
    use support::TestKeyOptions;
    for opts in [
        TestKeyOptions {
            rsa: false,
            signing_subkey: false,
        },
        TestKeyOptions {
            rsa: true,
            signing_subkey: true,
        },
    ] {
        let key = TestKey::generate_with("variant", opts);
        let repo = repo_with(&key, |_| {});
        let bytes = std::fs::read(repo.path("dists/trixie/InRelease")).expect("read");
        verify_inrelease(&bytes, &keyring(&key), NOW).expect("verifies");
    }
}

#[test]
fn suite_mismatch_is_refused() {
    let key = TestKey::generate("archive");
    let repo = repo_with(&key, |_| {});
    repo.resign_release("trixie", |t| {
        t.replace("Codename: trixie", "Codename: bookworm")
            .replace("Suite: stable", "Suite: oldstable")
    })
    .expect("resign");
    let server = serve(repo.root()).expect("serve");
    let err = fetch_inrelease(&fetcher(), &server.base_url, "trixie", &keyring(&key), NOW)
        .expect_err("replayed suite");
    assert!(matches!(err, ReleaseError::SuiteMismatch { .. }), "{err}");
}

#[test]
fn tampered_packages_xz_is_refused_by_sha256() {
    let key = TestKey::generate("archive");
    let repo = repo_with(&key, |_| {});
    repo.tamper_index("trixie", "main", "amd64", ".xz")
        .expect("tamper");
    let server = serve(repo.root()).expect("serve");
    let f = fetcher();
    let rel =
        fetch_inrelease(&f, &server.base_url, "trixie", &keyring(&key), NOW).expect("release");
    let dir = tempfile::tempdir().expect("tmp");
    let err = fetch_verified_index(
        &f,
        &server.base_url,
        "trixie",
        &rel,
        "main",
        "amd64",
        dir.path(),
    )
    .expect_err("tampered");
    let ReleaseError::Fetch { source, .. } = &err else {
        panic!("{}", chain(&err));
    };
    assert!(
        matches!(source, FetchError::Sha256Mismatch { .. }),
        "{}",
        chain(&err)
    );
    let msg = chain(&err);
    assert!(
        msg.contains("sha256") && msg.contains("but the index says"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("ls").count(),
        0,
        "nothing left behind"
    );
}

#[test]
fn size_lies_are_refused() {
    let key = TestKey::generate("archive");
    // The file grew after signing: refused once it passes the signed size.
    let repo = repo_with(&key, |_| {});
    repo.append_bytes(
        &BuiltRepo::index_rel("trixie", "main", "amd64", ".xz"),
        b"extra",
    )
    .expect("grow");
    repo.remove_by_hash("trixie").expect("rm by-hash");
    let server = serve(repo.root()).expect("serve");
    let f = fetcher();
    let rel =
        fetch_inrelease(&f, &server.base_url, "trixie", &keyring(&key), NOW).expect("release");
    let dir = tempfile::tempdir().expect("tmp");
    let err = fetch_verified_index(
        &f,
        &server.base_url,
        "trixie",
        &rel,
        "main",
        "amd64",
        dir.path(),
    )
    .expect_err("too big");
    let msg = chain(&err);
    assert!(msg.contains("or more but the index says"), "{msg}");

    // The signed Release claims a larger size than the file has.
    let repo = repo_with(&key, |rb| {
        rb.suite("trixie").by_hash(false);
    });
    let xz = std::fs::read(repo.path(&BuiltRepo::index_rel("trixie", "main", "amd64", ".xz")))
        .expect("xz");
    let real = xz.len();
    repo.resign_release("trixie", |t| {
        t.lines()
            .map(|l| {
                if l.ends_with(" main/binary-amd64/Packages.xz") {
                    l.replacen(&format!(" {real} "), &format!(" {} ", real + 10), 1)
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    })
    .expect("resign");
    let server = serve(repo.root()).expect("serve");
    let rel =
        fetch_inrelease(&f, &server.base_url, "trixie", &keyring(&key), NOW).expect("release");
    let err = fetch_verified_index(
        &f,
        &server.base_url,
        "trixie",
        &rel,
        "main",
        "amd64",
        dir.path(),
    )
    .expect_err("too small");
    let msg = chain(&err);
    assert!(
        msg.contains(&format!("size {real} but the index says {}", real + 10)),
        "{msg}"
    );
}

#[test]
fn by_hash_is_used_when_offered_with_fallback_and_cache() {
    let key = TestKey::generate("archive");
    let repo = repo_with(&key, |_| {});
    let server = serve(repo.root()).expect("serve");
    let f = fetcher();
    let rel =
        fetch_inrelease(&f, &server.base_url, "trixie", &keyring(&key), NOW).expect("release");
    let choice = index_path(&rel, "main", "amd64").expect("choice");
    assert_eq!(choice.path, "main/binary-amd64/Packages.xz");
    let by_hash = choice.by_hash_path.clone().expect("by-hash offered");
    let dir = tempfile::tempdir().expect("tmp");
    let first = fetch_verified_index(
        &f,
        &server.base_url,
        "trixie",
        &rel,
        "main",
        "amd64",
        dir.path(),
    )
    .expect("index");
    assert_eq!(server.requests(&format!("/dists/trixie/{by_hash}")), 1);
    assert_eq!(
        server.requests("/dists/trixie/main/binary-amd64/Packages.xz"),
        0
    );

    // A second fetch into the same directory uses the verified file: no network.
    let before = server.total_requests();
    let second = fetch_verified_index(
        &f,
        &server.base_url,
        "trixie",
        &rel,
        "main",
        "amd64",
        dir.path(),
    )
    .expect("cached");
    assert_eq!(first, second);
    assert_eq!(
        server.total_requests(),
        before,
        "no request for a cached index"
    );

    // A mirror without by-hash copies: 404, then the plain path.
    repo.remove_by_hash("trixie").expect("rm");
    let dir2 = tempfile::tempdir().expect("tmp");
    let third = fetch_verified_index(
        &f,
        &server.base_url,
        "trixie",
        &rel,
        "main",
        "amd64",
        dir2.path(),
    )
    .expect("fallback");
    assert_eq!(first, third);
    assert_eq!(server.requests(&format!("/dists/trixie/{by_hash}")), 2);
    assert_eq!(
        server.requests("/dists/trixie/main/binary-amd64/Packages.xz"),
        1
    );
}

#[test]
fn without_by_hash_or_xz_the_plain_path_and_gz_are_used() {
    let key = TestKey::generate("archive");
    let repo = repo_with(&key, |rb| {
        rb.suite("trixie")
            .by_hash(false)
            .formats(&[IndexFormat::Gz]);
    });
    let server = serve(repo.root()).expect("serve");
    let f = fetcher();
    let rel =
        fetch_inrelease(&f, &server.base_url, "trixie", &keyring(&key), NOW).expect("release");
    assert!(!rel.acquire_by_hash);
    let choice = index_path(&rel, "main", "amd64").expect("choice");
    assert_eq!(choice.path, "main/binary-amd64/Packages.gz");
    assert_eq!(choice.by_hash_path, None);
    let dir = tempfile::tempdir().expect("tmp");
    let text = fetch_verified_index(
        &f,
        &server.base_url,
        "trixie",
        &rel,
        "main",
        "amd64",
        dir.path(),
    )
    .expect("index");
    assert!(text.starts_with(b"Package: "));
    assert_eq!(
        server.requests("/dists/trixie/main/binary-amd64/Packages.gz"),
        1
    );
    let err = fetch_verified_index(
        &f,
        &server.base_url,
        "trixie",
        &rel,
        "main",
        "arm64",
        dir.path(),
    )
    .expect_err("no arm64");
    assert!(
        err.to_string()
            .contains("lists no Packages index for main/binary-arm64"),
        "{err}"
    );
}

/// The `Filename`, `Size` and `SHA256` of a package in Packages text.
fn stanza_of(packages: &str, name: &str) -> (String, Expected) {
    let stanza = packages
        .split("\n\n")
        .find(|s| s.starts_with(&format!("Package: {name}\n")))
        .expect("stanza");
    let get = |k: &str| {
        stanza
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}: ")))
            .expect("field")
            .to_string()
    };
    let mut sha = [0u8; 32];
    hex::decode_to_slice(get("SHA256"), &mut sha).expect("hex");
    (
        get("Filename"),
        Expected {
            size: get("Size").parse().expect("size"),
            sha256: sha,
        },
    )
}

fn packages_text(repo: &BuiltRepo) -> String {
    std::fs::read_to_string(repo.path(&BuiltRepo::index_rel("trixie", "main", "amd64", "")))
        .expect("Packages")
}

#[test]
fn download_resumes_after_a_dropped_connection() {
    let key = TestKey::generate("archive");
    let repo = repo_with(&key, |_| {});
    let (filename, expect) = stanza_of(&packages_text(&repo), "big");
    let server = serve(repo.root()).expect("serve");
    let path = format!("/{filename}");
    server.drop_connection_once(&path, expect.size / 2);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("big.deb");
    fetcher()
        .download(&server.url(&path), &dest, Some(expect))
        .expect("resumed download");
    assert_eq!(
        std::fs::read(&dest).expect("read"),
        std::fs::read(repo.path(&filename)).expect("orig")
    );
    let log: Vec<_> = server
        .request_log()
        .into_iter()
        .filter(|r| r.path == path)
        .collect();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        log[1].range.as_deref(),
        Some(format!("bytes={}-", expect.size / 2).as_str())
    );
    assert_eq!(log[1].status, 206);
}

#[test]
fn download_without_expectation_still_detects_truncation() {
    let key = TestKey::generate("archive");
    let repo = repo_with(&key, |_| {});
    let (filename, expect) = stanza_of(&packages_text(&repo), "big");
    let server = serve(repo.root()).expect("serve");
    let path = format!("/{filename}");
    server.drop_connection_once(&path, 1000);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("big.deb");
    fetcher()
        .download(&server.url(&path), &dest, None)
        .expect("download");
    assert_eq!(std::fs::metadata(&dest).expect("meta").len(), expect.size);
}

#[test]
fn retries_on_503_then_gives_up() {
    let key = TestKey::generate("archive");
    let repo = repo_with(&key, |_| {});
    let server = serve(repo.root()).expect("serve");
    let f = fetcher();
    server.fail_with_503("/dists/trixie/InRelease", 2);
    fetch_inrelease(&f, &server.base_url, "trixie", &keyring(&key), NOW).expect("third try works");
    assert_eq!(server.requests("/dists/trixie/InRelease"), 3);

    let (filename, expect) = stanza_of(&packages_text(&repo), "hello");
    let path = format!("/{filename}");
    let dir = tempfile::tempdir().expect("tmp");
    server.fail_with_503(&path, 2);
    f.download(&server.url(&path), &dir.path().join("h.deb"), Some(expect))
        .expect("download after 503s");

    server.fail_with_503(&path, 10);
    let err = f
        .download(&server.url(&path), &dir.path().join("h2.deb"), Some(expect))
        .expect_err("gives up");
    let msg = chain(&err);
    assert!(
        msg.contains("gave up after 4 attempts") && msg.contains("HTTP 503"),
        "{msg}"
    );
    assert!(!dir.path().join("h2.deb").exists());

    let err = f
        .download(&server.url("/nope"), &dir.path().join("n"), None)
        .expect_err("404");
    assert!(err.is_not_found());
    assert_eq!(server.requests("/nope"), 1, "404 is not retried");
}

#[test]
fn tampered_deb_is_refused_against_its_packages_stanza() {
    let key = TestKey::generate("archive");
    let repo = repo_with(&key, |_| {});
    let (filename, expect) = stanza_of(&packages_text(&repo), "hello");
    repo.tamper_deb("hello").expect("tamper");
    let server = serve(repo.root()).expect("serve");
    let dir = tempfile::tempdir().expect("tmp");
    let err = fetcher()
        .download(
            &server.url(&format!("/{filename}")),
            &dir.path().join("h.deb"),
            Some(expect),
        )
        .expect_err("tampered");
    assert!(matches!(err, FetchError::Sha256Mismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&hex::encode(expect.sha256)),
        "names the expected digest: {msg}"
    );
}

#[test]
fn credentials_go_only_to_the_matching_host_and_path() {
    let key = TestKey::generate("archive");
    let repo = repo_with(&key, |_| {});
    let server = serve(repo.root()).expect("serve");
    let other = serve(repo.root()).expect("serve");
    let port = server.base_url.rsplit(':').next().expect("port");
    let auth = Credentials::parse(&format!(
        "machine http://127.0.0.1:{port}/dists/trixie login alice password s3cret\n"
    ))
    .expect("auth");
    let f = Fetcher::new(FetchOptions {
        credentials: auth,
        backoff: Duration::from_millis(5),
        ..FetchOptions::default()
    });
    f.get_bytes(&server.url("/dists/trixie/InRelease"), 1 << 20)
        .expect("in path");
    f.get_bytes(&server.url("/dists/trixie/Release"), 1 << 20)
        .expect("in path");
    let (filename, _) = stanza_of(&packages_text(&repo), "hello");
    f.get_bytes(&server.url(&format!("/{filename}")), 1 << 20)
        .expect("pool");
    f.get_bytes(&other.url("/dists/trixie/InRelease"), 1 << 20)
        .expect("other host");

    let expected = "Basic YWxpY2U6czNjcmV0"; // alice:s3cret
    for r in server.request_log() {
        let want = r.path.starts_with("/dists/trixie/").then_some(expected);
        assert_eq!(r.authorization.as_deref(), want, "{r:?}");
    }
    assert!(
        other
            .request_log()
            .iter()
            .all(|r| r.authorization.is_none()),
        "other port got nothing"
    );
}

#[test]
fn auth_file_from_path() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("auth.conf");
    std::fs::write(
        &p,
        "machine https://private.test/debian\n  login bob\n  password pw\n",
    )
    .expect("write");
    let c = Credentials::load(&p).expect("load");
    assert_eq!(
        c.for_url("https://private.test/debian/pool/x.deb"),
        Some(("bob", "pw"))
    );
    std::fs::write(&p, "machine https://private.test/debian login bob\n").expect("write");
    let err = Credentials::load(&p).expect_err("incomplete");
    assert!(
        err.to_string()
            .contains("needs both `login` and `password`"),
        "{err}"
    );
}

#[test]
fn file_url_repository_works() {
    let key = TestKey::generate("archive");
    let repo = repo_with(&key, |_| {});
    let f = fetcher();
    let base = repo.file_url();
    let rel = fetch_inrelease(&f, &base, "trixie", &keyring(&key), NOW).expect("file InRelease");
    let dir = tempfile::tempdir().expect("tmp");
    let text = fetch_verified_index(&f, &base, "trixie", &rel, "main", "amd64", dir.path())
        .expect("index");
    assert!(text.starts_with(b"Package: "));
    let (filename, expect) = stanza_of(&packages_text(&repo), "big");
    f.download(
        &format!("{base}/{filename}"),
        &dir.path().join("b.deb"),
        Some(expect),
    )
    .expect("file deb");
    repo.tamper_deb("big").expect("tamper");
    let err = f
        .download(
            &format!("{base}/{filename}"),
            &dir.path().join("b2.deb"),
            Some(expect),
        )
        .expect_err("tampered file");
    assert!(matches!(err, FetchError::Sha256Mismatch { .. }), "{err}");
    let err = f
        .download(&format!("{base}/missing"), &dir.path().join("m"), None)
        .expect_err("missing");
    assert!(err.is_not_found());
}

#[test]
fn get_bytes_caps_size() {
    let key = TestKey::generate("archive");
    let repo = repo_with(&key, |_| {});
    let server = serve(repo.root()).expect("serve");
    let err = fetcher()
        .get_bytes(&server.url("/dists/trixie/InRelease"), 100)
        .expect_err("cap");
    assert!(
        matches!(err, FetchError::TooLarge { max: 100, .. }),
        "{err}"
    );
}

#[test]
fn keyring_formats() {
    let a = TestKey::generate("a");
    let b = TestKey::generate("b");
    let mut both = a.public_keyring();
    both.extend(b.public_keyring());
    let k = Keyring::from_bytes(&both).expect("binary, two keys");
    assert_eq!(k.fingerprints(), vec![a.fingerprint(), b.fingerprint()]);
    let armored = format!("{}\n{}", a.public_armored(), b.public_armored());
    let k = Keyring::from_bytes(armored.as_bytes()).expect("two armor blocks");
    assert_eq!(k.len(), 2);
    let k = Keyring::from_bytes(&a.secret_key_bytes()).expect("secret key → public part");
    assert_eq!(k.fingerprints(), vec![a.fingerprint()]);
    assert!(Keyring::from_bytes(b"hello world").is_err());
    let mut kbx = vec![0u8; 32];
    kbx[8..12].copy_from_slice(b"KBXf");
    let err = Keyring::from_bytes_named("pubring.kbx", &kbx).expect_err("keybox");
    assert!(err.to_string().contains("gpg --export"), "{err}");
    let err = Keyring::from_file(Path::new("/nonexistent/k.gpg")).expect_err("missing");
    assert!(err.to_string().contains("/nonexistent/k.gpg"), "{err}");
}

#[test]
fn keys_and_repos_are_deterministic() {
    let a1 = TestKey::generate("same");
    let a2 = TestKey::generate("same");
    assert_eq!(a1.fingerprint(), a2.fingerprint());
    let r1 = repo_with(&a1, |_| {});
    let r2 = repo_with(&a2, |_| {});
    for rel in [
        "dists/trixie/InRelease",
        "dists/trixie/main/binary-amd64/Packages.xz",
    ] {
        assert_eq!(
            std::fs::read(r1.path(rel)).expect("r1"),
            std::fs::read(r2.path(rel)).expect("r2"),
            "{rel}"
        );
    }
}
