//! Evaluated image specifications: the typed output of the language, the input of the composer.
//!
//! Everything here is plain data with deterministic order (declaration order, or sorted maps), so two
//! evaluations of the same text give equal values. Paths to project files are already resolved to
//! [`SourcePath`]s (normalised, relative to the loader root), so the composer never re-interprets text.

use std::collections::BTreeMap;

use serde::Serialize;

/// A normalised, `/`-separated path understood by a [`crate::SourceLoader`] (never absolute, never
/// containing `.` or `..` components after normalisation; may start with `../` segments when a file
/// refers above the loader root).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SourcePath(pub String);

impl SourcePath {
    /// The path as a `/`-separated string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Normalises a relative `/`-separated path lexically: empty and `.` components are dropped, `..`
    /// removes the component before it (or is kept at the front when there is none). The loader root
    /// itself is `.`. Absolute paths and paths containing NUL are refused.
    pub fn normalize(path: &str) -> Result<SourcePath, PathError> {
        if path.starts_with('/') {
            return Err(PathError::Absolute(path.to_owned()));
        }
        if path.contains('\0') {
            return Err(PathError::Nul);
        }
        let mut parts: Vec<&str> = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.last().is_some_and(|last| *last != "..") {
                        parts.pop();
                    } else {
                        parts.push("..");
                    }
                }
                other => parts.push(other),
            }
        }
        if parts.is_empty() {
            Ok(SourcePath(".".to_owned()))
        } else {
            Ok(SourcePath(parts.join("/")))
        }
    }

    /// The directory containing this file path (`.` for a file at the root).
    pub fn parent(&self) -> SourcePath {
        match self.0.rsplit_once('/') {
            Some((dir, _)) => SourcePath(dir.to_owned()),
            None => SourcePath(".".to_owned()),
        }
    }

    /// Resolves `relative` against this path taken as a directory, then normalises.
    pub fn join(&self, relative: &str) -> Result<SourcePath, PathError> {
        if relative.starts_with('/') {
            return Err(PathError::Absolute(relative.to_owned()));
        }
        SourcePath::normalize(&format!("{}/{}", self.0, relative))
    }
}

/// Why a text is not a valid [`SourcePath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("`{0}` is absolute; paths are relative to the file that names them")]
    Absolute(String),
    #[error("path contains a NUL byte")]
    Nul,
}

impl std::fmt::Display for SourcePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The result of evaluating one `.himg` file: every image it declares, in declaration order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluated {
    /// The entry file, as given to the loader.
    pub entry: SourcePath,
    /// Images declared by the entry file itself (not those only declared by imports).
    pub images: Vec<ImageSpec>,
    /// Every file the evaluation read (the entry, imports), sorted, for cache invalidation.
    pub files_read: Vec<SourcePath>,
    /// Builds declared by the entry file itself (`build "NAME" { … }`), in declaration order. Images
    /// reach the builds they use through their items; this list is for `himg log` and tooling.
    pub builds: Vec<BuildSpec>,
}

/// Every image `specs` need, each once in the order first reached: the images themselves, their
/// `from` chains, and the environments of the builds their items use (and of the builds those
/// consume), with those environments' chains.
pub fn images_reached(specs: &[ImageSpec]) -> Vec<&ImageSpec> {
    reached(specs).0
}

/// Every build `specs` use, each once in the order first reached: builds whose outputs an item
/// copies, the builds those consume, and the builds the environments' images use.
pub fn builds_reached(specs: &[ImageSpec]) -> Vec<&BuildSpec> {
    reached(specs).1
}

fn reached(specs: &[ImageSpec]) -> (Vec<&ImageSpec>, Vec<&BuildSpec>) {
    let mut images: Vec<&ImageSpec> = Vec::new();
    let mut builds: Vec<&BuildSpec> = Vec::new();
    let mut image_queue: Vec<&ImageSpec> = specs.iter().rev().collect();
    let mut build_queue: Vec<&BuildSpec> = Vec::new();
    let same_image =
        |a: &ImageSpec, b: &ImageSpec| a.name == b.name && a.declared_in == b.declared_in;
    loop {
        while let Some(image) = image_queue.pop() {
            if images.iter().any(|i| same_image(i, image)) {
                continue;
            }
            images.push(image);
            for layer in &image.layers {
                for item in &layer.items {
                    if let ContentItem::BuildOutput { build, .. } = item {
                        build_queue.push(build);
                    }
                }
            }
            if let Some(base) = &image.base {
                image_queue.push(base);
            }
        }
        let Some(build) = build_queue.pop() else {
            break;
        };
        if builds
            .iter()
            .any(|b| b.name == build.name && b.declared_in == build.declared_in)
        {
            continue;
        }
        builds.push(build);
        image_queue.push(&build.environment);
        for source in &build.sources {
            if let BuildSource::Output { build, .. } = source {
                build_queue.push(build);
            }
        }
    }
    (images, builds)
}

/// The work directory of a build inside its sandbox: sources are placed here, writable.
pub const BUILD_WORKDIR: &str = "/build";
/// Where a build writes its outputs (also in `$out`).
pub const BUILD_OUTDIR: &str = "/out";
/// Seconds a build may run when it declares no `timeout`.
pub const DEFAULT_BUILD_TIMEOUT: u32 = 3600;

/// One `build "NAME" { … }` block: a command run in a sandbox over an environment image's root
/// filesystem, whose declared outputs are captured into the store (a derivation, like Nix's).
///
/// ```text
/// build "hello" {
///   environment = images.toolchain
///   source "hello" { include = ["*.c"] }
///   run = "gcc -static -Os -o $out/hello hello.c"
///   outputs = ["hello"]
/// }
/// image "app" { copy builds.hello { path = "hello", to = "/usr/local/bin/hello" } }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildSpec {
    /// `build "NAME"`: unique among the builds of one file; same character set as image names.
    pub name: String,
    /// The file that declared it.
    pub declared_in: SourcePath,
    /// `environment = images.X`: the image whose root filesystem the command runs in, read-only.
    pub environment: Box<ImageSpec>,
    /// `source "path" { … }` and `source builds.X { … }` blocks, in declaration order: what is
    /// placed into the work directory ([`BUILD_WORKDIR`]) before the command runs.
    pub sources: Vec<BuildSource>,
    /// The argv. `run = "script"` is `["/bin/sh", "-euc", script]`; `run = [argv…]` as written.
    pub run: Vec<String>,
    /// `env = { KEY = "value" }`, declaration order, set over the sandbox's fixed variables
    /// (`PATH`, `HOME`, `TZ`, `LANG`, `TMPDIR`); `out` and `SOURCE_DATE_EPOCH` cannot be set.
    pub env: Vec<(String, String)>,
    /// `outputs = ["bin/app", "lib"]`: paths relative to [`BUILD_OUTDIR`] the command must create;
    /// exactly these are captured. Normalised, sorted, none below another. Never empty.
    pub outputs: Vec<String>,
    /// `timeout = SECONDS` (default [`DEFAULT_BUILD_TIMEOUT`]).
    pub timeout: u32,
    /// `hash = "blake3:HEX"`: a fixed-output build (a fetch): it gets the network, and its
    /// captured outputs must hash to this. `None`: no network at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// One source of a build, placed into the work directory.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BuildSource {
    /// `source "SRC" { to = "dir", include = [...], exclude = [...] }`: project files, like `copy`.
    /// A file source lands at `to` (default: its file name); a directory source's contents land
    /// under `to` (default `.`, the work directory itself).
    Files {
        source: SourcePath,
        source_is_dir: bool,
        /// Relative to the work directory, normalised (`.` for the work directory).
        to: String,
        include: Vec<String>,
        exclude: Vec<String>,
    },
    /// `source builds.X { path = "target", to = "target" }`: another build's outputs (all of them,
    /// or the one `path` names, which is a declared output or lies below one), placed at `to`
    /// (relative to the work directory, default `.`).
    Output {
        build: Box<BuildSpec>,
        path: Option<String>,
        to: String,
    },
}

/// One image, fully evaluated and validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageSpec {
    /// The image name (`image "NAME"`), unique within one file; used as `org.opencontainers.image.ref.name`.
    pub name: String,
    /// The file that declared it.
    pub declared_in: SourcePath,
    /// An image this one extends (`from = images.base` or an imported image): its layers are reused as
    /// they are and its config is the starting point for this one's.
    pub base: Option<Box<ImageSpec>>,
    /// A registry image this one extends (`from = "HOST/REPO[:TAG]@sha256:…"`), pinned by digest: its
    /// layers are reused as they are and its config is the starting point for this one's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_reference: Option<String>,
    /// Target architectures in Debian/OCI spelling (`amd64`, `arm64`, ...). Never empty; the default is
    /// `["amd64"]`. More than one gives an OCI index with one manifest per architecture.
    pub architectures: Vec<String>,
    /// Runtime configuration (OCI image config `config` section). Only what this image sets; merging
    /// with the base is the composer's job.
    pub config: ConfigSpec,
    /// Manifest annotations, sorted. `source`, `revision`, `version` and `description` fields in the
    /// image body land here as `org.opencontainers.image.*`.
    pub annotations: BTreeMap<String, String>,
    /// Accounts; `/etc/passwd`, `/etc/group` and `/etc/shadow` are generated from these (plus the base's).
    pub users: Vec<UserSpec>,
    pub groups: Vec<GroupSpec>,
    /// Content, grouped into layers, in declaration order. Items declared outside any `layer` block are
    /// collected into a layer named `contents` placed after the explicit layers.
    pub layers: Vec<LayerSpec>,
    /// Maximum number of layers for the whole image, counting the base image's (`max_layers = N`).
    pub max_layers: Option<u32>,
    /// Layer compression (`compression = "gzip" | "zstd"`); default gzip.
    pub compression: Compression,
    /// Debian packages (`repository` blocks and the `packages` list), if the image declares any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<PackagesSpec>,
    /// OpenVEX files `himg scan` applies to this image (`vex = ["vex/app.openvex.json"]`): the base's,
    /// then the image's own, without repeats.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vex: Vec<SourcePath>,
    /// The hardening policy checked against the built image (`policy = …`; the base's when the image
    /// declares none). Not image content: it never changes a digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicySpec>,
    /// `test "NAME" { … }` blocks, in declaration order. Tests never change the image: the composer
    /// ignores them, `himg test` runs them against the built image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestSpec>,
    /// Where the image is published (`publish = "HOST/REPOSITORY[:TAG]"`): the repository a
    /// workspace push sends it to, and how a workspace tells that another file's registry base is
    /// this image. Not image content, and not inherited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<String>,
}

/// Policy baselines: `none` checks only the rules named in `enable`.
pub const POLICY_BASELINES: &[&str] = &["none", "baseline", "strict"];

/// Every policy rule, by name (the composer's rule table matches this list).
pub const POLICY_RULES: &[&str] = &[
    "non-root-user",
    "no-setuid",
    "no-world-writable",
    "no-world-writable-dirs",
    "no-temp-files",
    "no-secrets",
    "ca-bundle",
    "no-shell",
    "no-package-manager",
    "no-compiler",
    "max-size",
    "max-vulnerabilities",
];

/// Severities `max_vulnerabilities` counts.
pub const SEVERITIES: &[&str] = &["critical", "high", "medium", "low", "negligible", "unknown"];

/// `policy = "strict"` or `policy { baseline = …, enable = […], disable = […], max_size = …,
/// max_vulnerabilities = { … }, waive "RULE" { … } }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicySpec {
    /// `baseline` (the default), `strict` or `none`.
    pub baseline: String,
    /// Rules added to the baseline, sorted.
    pub enable: Vec<String>,
    /// Rules of the baseline turned off, sorted.
    pub disable: Vec<String>,
    /// Maximum size of the image's files, in bytes (turns on `max-size`).
    pub max_size: Option<u64>,
    /// Maximum count of known vulnerabilities per severity (turns on `max-vulnerabilities`).
    pub max_vulnerabilities: BTreeMap<String, u32>,
    /// Exceptions, in declaration order.
    pub waivers: Vec<WaiverSpec>,
}

impl Default for PolicySpec {
    fn default() -> Self {
        PolicySpec {
            baseline: "baseline".to_owned(),
            enable: Vec::new(),
            disable: Vec::new(),
            max_size: None,
            max_vulnerabilities: BTreeMap::new(),
            waivers: Vec::new(),
        }
    }
}

/// `waive "RULE" { path = "/usr/bin/su" | package = "login", reason = "…", until = "2027-03-01" }`.
/// Without `path` or `package` it waives every violation of the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaiverSpec {
    pub rule: String,
    /// An absolute path or glob (`/usr/lib/**`).
    pub path: Option<String>,
    pub package: Option<String>,
    pub reason: String,
    /// The last day the waiver holds, `YYYY-MM-DD`.
    pub until: String,
}

/// One `test "NAME" { … }` block: a command to run in the sandbox, file checks and metadata checks,
/// any combination of them (at least one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestSpec {
    pub name: String,
    /// `run = [argv…]` and what its result must be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandTest>,
    /// `file "/path" { … }` blocks, in declaration order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileTest>,
    /// `metadata { … }`: expectations on the image config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataTest>,
}

/// A command run in the sandbox and the expectations on its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandTest {
    /// The argv; the program is looked up in the image's `PATH` when it has no `/`.
    pub run: Vec<String>,
    /// Added to (overriding) the image's environment.
    pub env: Vec<(String, String)>,
    /// `user = "name"`, `"uid"` or `"uid:gid"`; default: the image's `run_as`.
    pub user: Option<String>,
    /// Default: the image's `workdir`, else `/`.
    pub workdir: Option<String>,
    /// Text given on standard input (default: empty).
    pub stdin: Option<String>,
    /// Expected exit code (default 0).
    pub exit_code: i32,
    /// Exact expected standard output / error.
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    /// Substrings that must appear.
    pub stdout_contains: Vec<String>,
    pub stderr_contains: Vec<String>,
    /// Regular expressions (Rust `regex` syntax) that must match somewhere.
    pub stdout_matches: Vec<String>,
    pub stderr_matches: Vec<String>,
    /// Seconds before the sandbox is killed (default 60).
    pub timeout: u32,
    /// Give the command the host's network (default: no network at all).
    pub network: bool,
}

/// Expectations on one path of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileTest {
    /// Absolute, normalised path inside the image.
    pub path: String,
    /// `exists = false` asserts the path is absent (default true).
    pub exists: bool,
    /// `type = "file" | "dir" | "symlink"`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Permission bits including setuid/setgid/sticky (`mode = 0o755`).
    pub mode: Option<u32>,
    /// Numeric owner (`owner = "app"` or a uid) and group (`group = "app"` or a gid).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Substrings the (regular) file's content must hold.
    pub contains: Vec<String>,
    /// Regular expressions the content must match.
    pub matches: Vec<String>,
    /// The symlink's target, exactly.
    pub target: Option<String>,
}

/// Expectations on the image config (the merged result of the image and its bases).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct MetadataTest {
    pub user: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// Variables that must be set to exactly these values (others may exist).
    pub env: Vec<(String, String)>,
    /// Labels that must be set to exactly these values (others may exist).
    pub labels: BTreeMap<String, String>,
    /// The exact set of exposed ports, normalised like `ports` (`8080/tcp`), sorted.
    pub ports: Option<Vec<String>>,
    pub workdir: Option<String>,
}

/// The Debian packages of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackagesSpec {
    /// Where packages come from, in priority order (the image's own, else its base's).
    pub repositories: Vec<RepositorySpec>,
    /// Requested packages as written: `python3`, `python3 (>= 3.11)`, `python3=3.11.2-1`, `libc6:arm64`.
    pub install: Vec<String>,
    /// Names never installed (`!perl-base`), sorted; dependencies on them are dropped and reported.
    pub exclude: Vec<String>,
    /// Keep /usr/share/doc, man and info pages (`keep_docs = true`); copyright files are always kept.
    pub keep_docs: bool,
    /// Locales kept under /usr/share/locale (`locales = [...]`); default `["C.UTF-8"]`.
    pub locales: Vec<String>,
    /// Absolute path globs left out of every package (`path_exclude = [...]`, dpkg's `path-exclude`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub path_exclude: Vec<String>,
    /// Exceptions to `path_exclude` (`path_include = [...]`, dpkg's `path-include`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub path_include: Vec<String>,
    /// Package files that keep their setuid/setgid bits (`keep_setuid = ["/usr/bin/su"]`),
    /// absolute, normalised, sorted; every other package file loses them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keep_setuid: Vec<String>,
    /// Alternatives pinned to a choice (`alternatives = { java = "/usr/lib/jvm/…/bin/java" }`):
    /// name → absolute path; the others stay in auto mode (highest priority wins).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub alternatives: std::collections::BTreeMap<String, String>,
}

/// One apt repository: `repository "debian" { url, suites, components, keyring }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepositorySpec {
    pub name: String,
    /// `mirror://NAME/…`, `http(s)://…` or `file://…` (never with credentials).
    pub url: String,
    pub suites: Vec<String>,
    /// Default `["main"]`.
    pub components: Vec<String>,
    /// The OpenPGP keyring that must sign the repository's InRelease files.
    pub keyring: SourcePath,
}

/// `config` of an OCI image: only the values this image declares (None = inherit / unset).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ConfigSpec {
    /// `run_as = "name"` or `"uid[:gid]"`.
    pub user: Option<String>,
    /// `env = { KEY = "value" }`, declaration order; a key here overrides the base's value.
    pub env: Vec<(String, String)>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `ports = [8080, "53/udp"]` normalised to `8080/tcp`, `53/udp`; sorted and de-duplicated.
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSpec {
    pub name: String,
    pub uid: u32,
    /// Primary group id; defaults to `uid`.
    pub gid: u32,
    /// Defaults to `/home/NAME` (`/root` for uid 0).
    pub home: String,
    /// Defaults to `/sbin/nologin`.
    pub shell: String,
    /// GECOS field; defaults to the name.
    pub gecos: String,
    /// Create the home directory (owned by uid:gid, mode 0o700) in the accounts layer; default true.
    pub create_home: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupSpec {
    pub name: String,
    pub gid: u32,
    /// Supplementary members (user names).
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerSpec {
    /// `layer "NAME"`; `contents` for the implicit layer.
    pub name: String,
    pub items: Vec<ContentItem>,
}

/// Numeric ownership, resolved from names against the image's (and base's) accounts at evaluation time.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    /// Names the evaluator could not resolve because the image extends a registry image, whose
    /// accounts it cannot see: the composer resolves them against that base's `/etc/passwd` and
    /// `/etc/group` (`uid` and `gid` are 0 until then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred: Option<DeferredOwner>,
}

/// The account names an [`Owner`] leaves to the composer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DeferredOwner {
    /// The `owner` name (its primary group is the default group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The `group` name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// No `group` was given: the gid is the deferred user's primary group.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub primary_group: bool,
}

/// One thing placed into the image filesystem. Every destination path is absolute, normalised, `/`-separated.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContentItem {
    /// `copy "SRC" { to = "/dest", include = [...], exclude = [...], mode = 0o644, owner = "app" }`.
    /// A file source lands at `to` exactly; a directory source's contents land under `to`.
    Copy {
        source: SourcePath,
        source_is_dir: bool,
        to: String,
        /// Globs (gitignore-like `**` syntax) relative to a directory source; empty = everything.
        include: Vec<String>,
        exclude: Vec<String>,
        /// Mode for copied files; None = 0o755 if the source is executable, else 0o644.
        mode: Option<u32>,
        /// Mode for directories created by the copy; None = 0o755.
        dir_mode: Option<u32>,
        owner: Owner,
    },
    /// `file "/path" { text = "...", mode = 0o644, owner = ... }` — inline content.
    File {
        path: String,
        text: String,
        mode: u32,
        owner: Owner,
    },
    /// `symlink "/path" { target = "..." }`.
    Symlink {
        path: String,
        target: String,
        owner: Owner,
    },
    /// `dir "/path" { mode = 0o755, owner = ... }` — an empty directory (or a directory's metadata).
    Dir {
        path: String,
        mode: u32,
        owner: Owner,
    },
    /// `copy builds.X { path = "bin/app", to = "/usr/local/bin/app", mode, dir_mode, owner }`: a
    /// build's outputs (all of them, or the one `path` names — a declared output or below one)
    /// placed like a `copy` of project files: a file lands at `to`, a directory's contents under it.
    BuildOutput {
        build: Box<BuildSpec>,
        path: Option<String>,
        to: String,
        mode: Option<u32>,
        dir_mode: Option<u32>,
        owner: Owner,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(s: &str) -> SourcePath {
        SourcePath(s.to_owned())
    }

    #[test]
    fn normalize_join_parent() {
        assert_eq!(SourcePath::normalize("./a//b/../c"), Ok(sp("a/c")));
        assert_eq!(SourcePath::normalize("a/.."), Ok(sp(".")));
        assert_eq!(SourcePath::normalize("../../x"), Ok(sp("../../x")));
        assert!(SourcePath::normalize("/etc").is_err());
        assert!(SourcePath::normalize("a\0b").is_err());
        assert_eq!(sp("lib/a.himg").parent(), sp("lib"));
        assert_eq!(sp("a.himg").parent(), sp("."));
        assert_eq!(sp("../x.himg").parent(), sp(".."));
        assert_eq!(sp("lib").join("../b.himg"), Ok(sp("b.himg")));
        assert_eq!(sp(".").join("../up.himg"), Ok(sp("../up.himg")));
        assert_eq!(sp("..").join("../up.himg"), Ok(sp("../../up.himg")));
        assert!(sp("lib").join("/abs").is_err());
    }
}
