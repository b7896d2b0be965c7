//! Image tests (`test "NAME" { … }` blocks): run against a built image — commands in a bubblewrap
//! [`sandbox`], file and metadata checks against the image model — in parallel, with a result
//! [`cache`] and [`junit`] reports. [`run`] evaluates one test.

pub mod cache;
pub mod junit;
pub mod passwd;
pub mod run;
pub mod sandbox;

use std::path::{Path, PathBuf};

use himg_lang::TestSpec;
use rayon::prelude::*;
use serde::Serialize;

use crate::image::ImageView;

pub use sandbox::{Captured, Sandbox, SandboxCommand};

/// Why tests could not be run at all (a failing test is an outcome, not an error).
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error(
        "bubblewrap (`bwrap`) is not installed; command tests and `himg run` need it (Debian: `apt install bubblewrap`)"
    )]
    NoBwrap,
    #[error("cannot start the sandbox")]
    Spawn(#[source] std::io::Error),
    #[error("cannot access `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("user `{0}` is not in the image's /etc/passwd")]
    UnknownUser(String),
    #[error("group `{0}` is not in the image's /etc/group")]
    UnknownGroup(String),
}

/// One built image with everything its tests need.
pub struct Target<'a> {
    /// The image's name in the `.himg` file.
    pub image: &'a str,
    pub view: &'a ImageView,
    /// The image's root filesystem, extracted.
    pub rootfs: &'a Path,
}

/// One failed expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Failure {
    /// What was checked: `exit code`, `stdout`, `file /etc/passwd mode`, `metadata entrypoint`.
    pub check: String,
    /// One line: what was expected and what was found.
    pub message: String,
    /// A unified diff of expected against actual text, when both are text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// The result of one test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Outcome {
    pub image: String,
    pub test: String,
    pub passed: bool,
    /// Taken from the result cache instead of being run.
    pub cached: bool,
    pub duration_ms: u64,
    pub failures: Vec<Failure>,
    /// Captured output of the command, when the test ran one (for reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

/// Runs `tests` against `target` in parallel, consulting `cache` (unless `None`); results in the
/// order of `tests`.
pub fn run_all(
    target: &Target<'_>,
    tests: &[TestSpec],
    cache: Option<&cache::ResultCache>,
) -> Vec<Outcome> {
    tests
        .par_iter()
        .map(|test| {
            let digest = &target.view.digest;
            if let Some(hit) = cache.and_then(|c| c.get(digest, test)) {
                return Outcome {
                    image: target.image.to_owned(),
                    test: test.name.clone(),
                    cached: true,
                    ..hit
                };
            }
            let outcome = run::run_test(target, test);
            if let Some(c) = cache
                && outcome.passed
            {
                c.put(digest, test, &outcome);
            }
            outcome
        })
        .collect()
}
