//! The `.deb` reader: ar container, control and data tarballs, every compression, into memory.
#![no_main]

use himg::debian::unpack::{MemorySink, UnpackOptions, unpack_deb};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut sink = MemorySink::new();
    let _ = unpack_deb(data, "fuzz", &UnpackOptions::default(), &mut sink);
});
