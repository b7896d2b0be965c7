//! Signed and unsigned Debian indexes: InRelease verification (clearsigned framing, signature
//! packets, the Release fields) against a fixed keyring, Release and Packages parsing, deb822
//! stanzas and dependency relations.
#![no_main]

use himg::debian::{control, index, keyring::Keyring, release};
use libfuzzer_sys::fuzz_target;

/// The public key that signed `corpus/debian_index/inrelease-*` (a fixture key of the tests).
const KEYRING: &[u8] = include_bytes!("../keys/fixture.gpg");
/// 2025-01-01T01:00:00Z, when the seed InRelease files are valid.
const NOW: i64 = 1_735_693_200;

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static KEYS: Keyring = Keyring::from_bytes_named("fixture.gpg", KEYRING).expect("keyring");
    }
    KEYS.with(|k| {
        let _ = release::verify_inrelease(data, k, NOW);
    });
    let _ = Keyring::from_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(r) = release::parse_release(text, "fuzz") {
            let _ = release::index_path(&r, "main", "amd64");
        }
        let _ = index::parse_packages(text);
        let _ = control::parse_stanzas(text);
        let _ = control::parse_relations(text);
    }
    for ext in ["P.xz", "P.gz", "P.zst"] {
        let _ = release::decompress_index(ext, data);
    }
});
