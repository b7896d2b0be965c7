//! The binary cache's archive reader (`himg-archive-v1`, zstd and plain) into a real store in a
//! temporary directory.
#![no_main]

use himg_store::Store;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static STORE: (tempfile::TempDir, Store) = {
            let dir = tempfile::tempdir().expect("temporary directory");
            let store = Store::open(dir.path()).expect("store");
            (dir, store)
        };
    }
    STORE.with(|(_, store)| {
        let _ = himg::cache::archive::unpack(store, &mut &data[..]);
        let _ = himg::cache::archive::read(store, &mut &data[..]);
    });
});
