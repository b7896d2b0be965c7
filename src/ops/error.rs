//! The operations' error type: every layer's error, and the refusals the use-cases add.

use himg_store::StoreError;

use crate::load::LoadError;
use crate::oci::OciError;
use crate::plan::PlanError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    #[error("no image named `{name}` in `{file}`")]
    NoSuchImage {
        name: String,
        file: String,
        available: Vec<String>,
    },
    #[error("{}", no_such_build(name, file, available))]
    NoSuchBuild {
        name: String,
        file: String,
        available: Vec<String>,
    },
    #[error("build `{build}` has no log: {why}")]
    NoBuildLog { build: String, why: String },
    #[error("{} not reproducible: a second run gave different outputs", if builds.len() == 1 { format!("build `{}` is", builds[0]) } else { format!("builds {} are", builds.join(", ")) })]
    NotReproducible { builds: Vec<String> },
    #[error("`{file}` declares no image")]
    NoImages { file: String },
    #[error("`{}` does not hold the pin `{from}` once as a string literal; write `{to}` there by hand", file.display())]
    PinNotLiteral {
        file: std::path::PathBuf,
        from: String,
        to: String,
    },
    #[error("inventory: {0}")]
    Inventory(String),
    #[error("graph: {0}")]
    Graph(String),
    #[error("workspace `{}` {problem}", dir.display())]
    Workspace {
        dir: std::path::PathBuf,
        problem: String,
    },
    #[error("the lock file `{lock}` is {} for image `{image}`", if *missing { "missing an entry" } else { "stale" })]
    StaleLock {
        image: String,
        lock: String,
        missing: bool,
    },
    #[error(transparent)]
    Debian(#[from] crate::debian::DebianError),
    #[error(transparent)]
    Lock(#[from] crate::debian::lockfile::LockError),
    #[error(transparent)]
    Why(#[from] crate::debian::why::WhyError),
    #[error(transparent)]
    Fetch(#[from] crate::debian::fetch::FetchError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Base(#[from] crate::registry::base::BaseError),
    #[error("{0}")]
    Layout(String),
    #[error(transparent)]
    Test(#[from] crate::testing::TestError),
    #[error("{failed} of {total} tests failed")]
    TestsFailed { failed: usize, total: usize },
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error("`{target}` holds {found} images matching {wanted}, expected exactly one")]
    ImageSelect {
        target: String,
        wanted: String,
        found: usize,
        available: Vec<String>,
    },
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error("{0}")]
    CacheConfig(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("key `{name}` already exists at {}; choose another name or remove it", path.display())]
    KeyExists {
        name: String,
        path: std::path::PathBuf,
    },
    #[error("{}", no_such_key(value, keys_dir.as_deref()))]
    NoSuchKey {
        /// The `--sign-key` value (or `key public` name) as given.
        value: String,
        /// Where named keys live (`None`: no config directory).
        keys_dir: Option<std::path::PathBuf>,
        /// The names of the keys there.
        available: Vec<String>,
    },
    #[error("--tag names one image, but this build has {count} ({}): select one with --image NAME", available.join(", "))]
    TagNeedsOneImage {
        count: usize,
        available: Vec<String>,
    },
    #[error("policy violated by {}", images.join(", "))]
    PolicyViolation { images: Vec<String> },
    #[error(transparent)]
    Vuln(#[from] crate::vuln::VulnError),
    #[error("the vulnerability database `{path}` holds no advisories")]
    EmptyVulnDb { path: std::path::PathBuf },
    #[error("cannot tell the Debian release of image `{image}`")]
    UnknownRelease { image: String },
    #[error(transparent)]
    Promote(#[from] crate::promote::PromoteError),
    #[error(transparent)]
    Provenance(#[from] crate::provenance::ProvenanceError),
    #[error("cannot access `{path}`")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn no_such_key(value: &str, keys_dir: Option<&std::path::Path>) -> String {
    if value.contains('/') {
        return format!("no secret key file `{value}` (a value with `/` is a file path)");
    }
    match keys_dir {
        Some(dir) => format!(
            "no key `{value}`: no file `{value}` here, and no `{value}.secret` in {}",
            dir.display()
        ),
        None => format!(
            "no key `{value}`: no file `{value}` here, and no config directory to look for named keys in (set HOME or HIMG_CONFIG_DIR)"
        ),
    }
}

fn no_such_build(name: &str, file: &str, available: &[String]) -> String {
    let list = if available.is_empty() {
        "its images use no build".to_owned()
    } else {
        format!("its images use: {}", available.join(", "))
    };
    if name.is_empty() {
        format!("name the build whose log to show: `{file}` has several ({list})")
    } else {
        format!("no build named `{name}` in `{file}` ({list})")
    }
}
