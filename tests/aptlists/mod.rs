//! Helpers shared by the real-data tests: finding and reading the host's apt lists.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

const LISTS: &str = "/var/lib/apt/lists";

/// The host's native architecture, from dpkg.
pub fn native_arch() -> String {
    let out = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .unwrap_or_else(|e| panic!("cannot run dpkg --print-architecture: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Foreign architectures enabled on the host (usually none).
pub fn foreign_archs() -> Vec<String> {
    Command::new("dpkg")
        .arg("--print-foreign-architectures")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn is_packages_file(name: &str) -> bool {
    let Some(pos) = name.find("_Packages") else {
        return false;
    };
    matches!(
        &name[pos + "_Packages".len()..],
        "" | ".gz" | ".xz" | ".lz4" | ".zst" | ".bz2" | ".lzma"
    )
}

/// The host's `*_Packages*` lists for `arch` (and `binary-all`), in the order apt reads
/// them (`apt-get indextargets`), unknown ones last by name. Panics when there are none.
pub fn packages_files(arch: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(LISTS)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    is_packages_file(name)
                        && (name.contains(&format!("_binary-{arch}_"))
                            || name.contains("_binary-all_"))
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !found.is_empty(),
        "no Packages lists for {arch} under {LISTS}: run `apt-get update` (as root) first"
    );
    let apt_order: Vec<String> = Command::new("apt-get")
        .args([
            "indextargets",
            "--format",
            "$(FILENAME)",
            "Created-By: Packages",
        ])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let rank = |p: &Path| {
        let s = p.to_string_lossy();
        apt_order
            .iter()
            .position(|a| s.starts_with(a.as_str()) || a.starts_with(s.as_ref()))
            .unwrap_or(usize::MAX)
    };
    found.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    found
}

/// Reads a list file, decompressing with apt's own helper (which knows every compression
/// apt uses), falling back to the usual command-line tools.
pub fn read_list(path: &Path) -> String {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if ext.is_empty() || !matches!(ext, "gz" | "xz" | "lz4" | "zst" | "bz2" | "lzma") {
        return std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    }
    let helper = Command::new("/usr/lib/apt/apt-helper")
        .arg("cat-file")
        .arg(path)
        .output();
    if let Ok(out) = helper
        && out.status.success()
    {
        return String::from_utf8(out.stdout)
            .unwrap_or_else(|e| panic!("{} is not UTF-8: {e}", path.display()));
    }
    let tool = match ext {
        "gz" => "zcat",
        "xz" | "lzma" => "xzcat",
        "lz4" => "lz4cat",
        "zst" => "zstdcat",
        _ => "bzcat",
    };
    let out = Command::new(tool)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool} on {}: {e}", path.display()));
    assert!(out.status.success(), "{tool} failed on {}", path.display());
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{} is not UTF-8: {e}", path.display()))
}

/// A short repository id for a list file: the part of its name after `_dists_`
/// (suite, component, architecture), so the mirror's address is not repeated.
pub fn repo_id(path: &Path) -> String {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    match name.rfind("_dists_") {
        Some(i) => name[i + "_dists_".len()..].to_string(),
        None => name.to_string(),
    }
}
