//! The `.himg` parser, evaluator and formatter on arbitrary text (an in-memory project: a library
//! file to import, a file and a directory to copy, a keyring).
#![no_main]

use himg_lang::{MemoryLoader, SourcePath, evaluate, format_source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut loader = MemoryLoader::new();
    loader.insert("main.himg", data.to_vec());
    loader.insert("lib.himg", "let x = 1\nlet f(a) = a + x\nimage \"l\" {}\n");
    loader.insert("build/hello", "bin");
    loader.insert("site/index.html", "x");
    loader.insert("keys/debian.gpg", "key");
    if let Err(d) = evaluate(&SourcePath("main.himg".into()), &loader) {
        let _ = d.render();
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Err(d) = format_source("main.himg", text)
    {
        let _ = d.render();
    }
});
