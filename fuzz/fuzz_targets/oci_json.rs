//! OCI documents as a registry or an image layout serves them: manifests, indexes, image
//! configs, digests; each parsed document is written back canonically.
#![no_main]

use himg::oci::config::ImageConfig;
use himg::oci::manifest::{Index, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::from_json(data) {
        let _ = m.to_canonical_json();
    }
    if let Ok(i) = Index::from_json(data) {
        let _ = i.to_canonical_json();
    }
    let _ = ImageConfig::from_json(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = himg_store::Sha256Digest::try_from(text);
        let _ = himg_store::ObjectRef::try_from(text);
        let _ = himg_store::Sha256Digest::from_hex(text);
    }
});
