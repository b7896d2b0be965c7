//! Build derivations: a `build` block's command run in a sandbox over its environment image's
//! root filesystem, with its sources in a writable work directory, and its declared outputs
//! captured into the store as one tree.
//!
//! `environment` extracts an image's root filesystem once per manifest and shares it read-only;
//! `workdir` places store trees into the work directory; `capture` turns what the command left
//! in the output directory into store objects (sorted, no times, no owners, only files,
//! directories and symlinks); `run` ties them together under bubblewrap with a fixed environment,
//! no network (unless the build declares the hash of its output), a time limit and a kept log.

mod capture;
mod environment;
mod run;
mod workdir;

use std::path::PathBuf;

pub use capture::{OutputEntry, list_tree};
pub use environment::{ROOTS_DIR, environment_root};
pub use run::{BuildRequest, Placement, Produced, hash_of, run_build, sweep_scratch};
pub use workdir::lookup;

/// Version of the build rules (the sandbox's fixed environment, the work directory's layout, the
/// capture of outputs): part of every build's key, bumped when they change what a build produces.
pub const RULES: u32 = 2;

/// The architecture this himg runs on, in Debian's spelling (what `architectures` lists): builds
/// run natively, as does the configure step (`debian::configure::runs_here`).
pub fn native_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        "arm" => "armhf",
        "powerpc64" => "ppc64el",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// Why a build could not run or what it did wrong.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "the build command exited with code {code}; the last lines of its log ({log}):\n{tail}"
    )]
    Failed {
        code: i32,
        log: PathBuf,
        tail: String,
        /// Whether it ran without the network (it declares no `hash`).
        offline: bool,
    },
    #[error(
        "the build command ran longer than its timeout of {seconds} s and was killed; the last lines of its log ({log}):\n{tail}"
    )]
    TimedOut {
        seconds: u32,
        log: PathBuf,
        tail: String,
    },
    #[error(
        "the build did not create its declared output `{path}` under /out (it created: {found})"
    )]
    MissingOutput { path: String, found: String },
    #[error("output `{path}` is a {kind}; outputs hold only files, directories and symlinks")]
    UnsupportedOutput { path: String, kind: &'static str },
    #[error("output path `{path}` is not valid UTF-8 or not a valid file name")]
    BadOutputName { path: String },
    #[error("output `{path}` lies below a symlink (`{link}`) in /out")]
    OutputBelowSymlink { path: String, link: String },
    #[error(
        "the fixed-output build's outputs hash to `{got}`, not the declared `{declared}`; if the new outputs are right, set `hash = \"{got}\"`"
    )]
    HashMismatch { declared: String, got: String },
    #[error("source `{path}` of the build: {problem}")]
    Source { path: String, problem: String },
    #[error("the environment image {manifest}: {problem}")]
    Environment { manifest: String, problem: String },
    #[error("cannot run bubblewrap (`bwrap`), which runs builds: {0}")]
    Sandbox(String),
    #[error("I/O error on `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] himg_store::StoreError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
}

/// An `Io` error maker for `path`.
pub(crate) fn io_err(path: &std::path::Path) -> impl Fn(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}
