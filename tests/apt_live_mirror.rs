//! Live smoke test against the host's own Debian mirror (read from its apt sources at run
//! time). It FAILS, with a message, when the mirror cannot be reached: it never skips.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use himg::debian::fetch::{FetchOptions, Fetcher};
use himg::debian::keyring::Keyring;
use himg::debian::mirror::MirrorResolver;
use himg::debian::release::{fetch_inrelease, fetch_verified_index};

const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!("\ncaused by: {c}"));
        cur = c.source();
    }
    s
}

#[test]
fn host_mirror_inrelease_and_index_verify() {
    // Only the host's apt sources: no environment, no config file.
    let resolver = MirrorResolver::new(Vec::<(String, String)>::new(), None, Path::new("/"))
        .expect("reading the host's apt sources");
    let base = resolver.resolve("mirror://debian").unwrap_or_else(|e| {
        panic!(
            "live test: the host's apt sources name no Debian mirror: {}",
            chain(&e)
        )
    });
    // The host's release: the first plain suite (no `-updates`, `-security`, …) of that mirror.
    let suite = resolver
        .host_sources()
        .iter()
        .filter(|s| s.mirror_name() == Some("debian") && s.types.iter().any(|t| t == "deb"))
        .flat_map(|s| s.suites.iter())
        .find(|s| !s.contains('-') && !s.contains('/'))
        .cloned()
        .expect("live test: no plain suite for the debian mirror in the host's apt sources");
    let keyring = Keyring::from_file(Path::new(KEYRING))
        .unwrap_or_else(|e| panic!("live test: {}", chain(&e)));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let fetcher = Fetcher::new(FetchOptions {
        timeout: Duration::from_secs(60),
        ..FetchOptions::default()
    });
    let release = fetch_inrelease(&fetcher, &base, &suite, &keyring, now).unwrap_or_else(|e| {
        panic!(
            "live test FAILED: cannot fetch and verify the InRelease of {suite} from the host's mirror \
             (is the network or the mirror down?):\n{}",
            chain(&e)
        )
    });
    assert!(!release.signed_by.is_empty());
    assert!(
        release.components.iter().any(|c| c == "main"),
        "{:?}",
        release.components
    );
    let dir = tempfile::tempdir().expect("tmp");
    let text = fetch_verified_index(
        &fetcher,
        &base,
        &suite,
        &release,
        "main",
        "amd64",
        dir.path(),
    )
    .unwrap_or_else(|e| {
        panic!(
            "live test FAILED: cannot fetch the main/binary-amd64 index of {suite}:\n{}",
            chain(&e)
        )
    });
    let text = std::str::from_utf8(&text).expect("the index is UTF-8");
    let first = text.lines().next().unwrap_or("");
    assert!(
        first.starts_with("Package:"),
        "first line of the index: {first:?}"
    );
    let stanzas = text.split("\n\n").filter(|s| !s.trim().is_empty()).count();
    assert!(
        stanzas > 10_000,
        "only {stanzas} packages in {suite} main/amd64"
    );
    assert!(text.contains("\nPackage: libc6\n") || text.starts_with("Package: libc6\n"));
}
