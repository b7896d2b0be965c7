//! Shared helpers of the data-driven test harnesses.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use himg_lang::MemoryLoader;

/// Every file below `root`, as (`/`-separated relative path, absolute path), sorted.
pub fn files_below(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, path));
            }
        }
    }
    out.sort();
    out
}

/// A loader holding every file below `root` (executable bits kept).
pub fn load_dir(root: &Path) -> MemoryLoader {
    let mut loader = MemoryLoader::new();
    for (rel, path) in files_below(root) {
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if is_executable(&path) {
            loader.insert_executable(rel, bytes);
        } else {
            loader.insert(rel, bytes);
        }
    }
    loader
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(_: &Path) -> bool {
    false
}

/// The `.himg` files directly in `dir`, sorted by name.
pub fn cases(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| name.ends_with(".himg"))
        .collect();
    out.sort();
    out
}

pub fn bless() -> bool {
    std::env::var_os("BLESS").is_some_and(|v| v == "1")
}

/// Compares `actual` with the file at `expected_path`, or rewrites it under `BLESS=1`.
/// Returns a description of the mismatch.
pub fn check_expected(expected_path: &Path, actual: &str) -> Option<String> {
    if bless() {
        fs::write(expected_path, actual)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        return None;
    }
    match fs::read_to_string(expected_path) {
        Ok(expected) if expected == actual => None,
        Ok(expected) => Some(format!(
            "{} differs (run with BLESS=1 to accept)\n--- expected\n{expected}\n--- actual\n{actual}",
            expected_path.display()
        )),
        Err(_) => Some(format!(
            "{} is missing (run with BLESS=1 to create)\n--- actual\n{actual}",
            expected_path.display()
        )),
    }
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
