//! Shared helpers for the end-to-end tests: a copy of `examples/` in a temp dir with the static hello
//! program compiled, the himg binary with an isolated store, and the real tools that judge its output.
//!
//! A test that needs a tool fails when the tool is missing (`bash tests/run.sh` installs them): no
//! test ever skips silently.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub mod registry;
pub mod sbom;

/// Path of the himg binary under test.
pub fn himg_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_himg"))
}

/// Fails the test with a clear message when `tool` is not on PATH.
pub fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "the test needs `{tool}`, which is not installed; run `bash tests/run.sh`, which installs it"
    );
}

/// A scratch project: a copy of the repository's `examples/` with hello compiled, and its own store.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub store: PathBuf,
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        copy_dir(&examples, &dir.path().join("examples"));
        let project = Project {
            store: dir.path().join("store"),
            dir,
        };
        project.compile_hello();
        project
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Compiles examples/hello/hello.c statically to examples/hello/build/hello.
    pub fn compile_hello(&self) {
        require_tool("gcc");
        let out = self.path("examples/hello/build/hello");
        std::fs::create_dir_all(out.parent().expect("parent")).expect("mkdir build");
        let status = Command::new("gcc")
            .args(["-static", "-Os", "-o"])
            .arg(&out)
            .arg(self.path("examples/hello/hello.c"))
            .status()
            .expect("run gcc");
        assert!(
            status.success(),
            "gcc -static failed (is libc6-dev installed?)"
        );
    }

    /// `himg ARGS` with this project's store, run in the project directory.
    pub fn himg(&self, args: &[&str]) -> Output {
        self.himg_in(self.dir.path(), &self.store, args)
    }

    pub fn himg_in(&self, cwd: &Path, store: &Path, args: &[&str]) -> Output {
        Command::new(himg_bin())
            .current_dir(cwd)
            .env("HIMG_STORE", store)
            .env_remove("SOURCE_DATE_EPOCH")
            .args(args)
            .output()
            .expect("run himg")
    }

    /// `himg ARGS` as on the day `today` (`HIMG_TODAY`, which judges policy waivers).
    pub fn himg_on(&self, today: &str, args: &[&str]) -> Output {
        Command::new(himg_bin())
            .current_dir(self.dir.path())
            .env("HIMG_STORE", &self.store)
            .env("HIMG_TODAY", today)
            .env_remove("SOURCE_DATE_EPOCH")
            .args(args)
            .output()
            .expect("run himg")
    }

    /// `himg build FILE --out OUT --json`, asserting success; returns the JSON report.
    pub fn build(&self, file: &str, out: &str) -> Value {
        let output = self.himg(&["build", file, "--out", out, "--json"]);
        assert_success(&output, "himg build");
        serde_json::from_slice(&output.stdout).expect("build --json prints JSON")
    }
}

pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed with {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs a tool, asserting success; returns stdout.
pub fn run_tool(cmd: &mut Command) -> String {
    let output = cmd.output().expect("spawn tool");
    assert_success(&output, &format!("{cmd:?}"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let ty = entry.file_type().expect("file type");
        let dest = to.join(entry.file_name());
        if ty.is_dir() {
            copy_dir(&entry.path(), &dest);
        } else if ty.is_symlink() {
            let target = std::fs::read_link(entry.path()).expect("readlink");
            std::os::unix::fs::symlink(target, &dest).expect("symlink");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

/// The image entry of a build report by name.
pub fn image<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["images"]
        .as_array()
        .and_then(|imgs| imgs.iter().find(|i| i["name"] == name))
        .unwrap_or_else(|| panic!("no image `{name}` in report {report}"))
}

/// Layer digests of an image entry of a build report.
pub fn layer_digests(img: &Value) -> Vec<String> {
    img["layers"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .map(|l| l["digest"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}
