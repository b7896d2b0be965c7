//! Command-line arguments (clap): every command, flag and its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `himg --version`: the crate version and the commit it was built from.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("HIMG_COMMIT"), ")");

/// himg — declarative, reproducible OCI images from `.himg` files.
#[derive(Debug, Parser)]
#[command(name = "himg", version = VERSION, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Store directory (default: $HIMG_STORE, else $XDG_DATA_HOME/himg, else ~/.local/share/himg).
    #[arg(long, global = true, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Print nothing on stderr except errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Colour in human output: auto (on a terminal), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// The project root of the .himg file (default: its directory). Imports, copy sources,
    /// keyrings and VEX files must resolve inside it, symlinks included.
    #[arg(long, global = true, value_name = "DIR")]
    pub project_root: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl From<ColorChoice> for crate::printer::ColorChoice {
    fn from(c: ColorChoice) -> Self {
        match c {
            ColorChoice::Auto => crate::printer::ColorChoice::Auto,
            ColorChoice::Always => crate::printer::ColorChoice::Always,
            ColorChoice::Never => crate::printer::ColorChoice::Never,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, evaluate and validate a .himg file (exit 1 on any error).
    Check(CheckArgs),
    /// Rewrite a .himg file in the canonical layout.
    Fmt(FmtArgs),
    /// Print the evaluated image specs.
    Eval(EvalArgs),
    /// Build images into an OCI layout (or an archive).
    Build(BuildArgs),
    /// Resolve the Debian packages of every image and write FILE.lock.
    Lock(LockArgs),
    /// Re-resolve packages against the newest indexes; show and write what changes.
    Update(UpdateArgs),
    /// Why is a Debian package in an image: the dependency paths from the requested packages.
    Why(WhyArgs),
    /// Which images of a workspace (or file) will change, and why, from derivation keys alone.
    Affected(AffectedArgs),
    /// Across workspaces, files, layouts and references: which images hold a package (below a
    /// version) or are affected by an advisory.
    Inventory(InventoryArgs),
    /// Push an image of an OCI layout to a registry (only missing blobs are uploaded).
    Push(PushArgs),
    /// Pull an image from a registry into an OCI layout.
    Pull(PullArgs),
    /// Build if needed, then run the images' `test` blocks (exit 6 when a test fails).
    Test(TestArgs),
    /// Run an image's entrypoint (or a command) in the test sandbox, on this terminal.
    Run(RunArgs),
    /// Print the derivation graph (DOT, or JSON with --json).
    Graph(GraphArgs),
    /// Print the log of a build step (`build "NAME"`) of a .himg file.
    Log(LogArgs),
    /// Show an image: config, annotations, layers with sizes and the packages each holds.
    Inspect(InspectArgs),
    /// Compare two images: packages, files per layer, config and size.
    Diff(DiffArgs),
    /// Write the software bill of materials of an image (SPDX 2.3 or CycloneDX 1.6 JSON).
    Sbom(SbomArgs),
    /// Print the SLSA provenance (in-toto statement, or signed DSSE envelope) of a built image.
    Provenance(ProvenanceArgs),
    /// Check images against their hardening policies (exit 5 on a violation).
    Audit(AuditArgs),
    /// Inspect and maintain the store.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Match an image's Debian packages against the vulnerability database.
    Scan(ScanArgs),
    /// Import and inspect vulnerability data (Debian security tracker JSON, OSV).
    #[command(subcommand)]
    Vulndb(VulndbCommand),
    /// Copy one image digest to the next stage's repository after its gates pass; sign a record.
    Promote(PromoteArgs),
    /// Signing keys (binary caches, provenance, promotion records): generate, list, show.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Print the effective configuration: every setting, its value and where it came from
    /// (`default`, `file PATH`, `env NAME`).
    Config(ConfigArgs),
    /// Binary caches: push outputs, serve a cache over HTTP.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Write the manual pages (roff): `himg.1` on stdout, or one page per command with --out.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print JSON: `{"file", "file_exists", "settings": [{"key", "value", "source"}]}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an Ed25519 key pair; keep the secret key (0600) and print the public key `NAME:base64`.
    Generate {
        /// The key's name (e.g. `team-a-1`): signatures say which key made them.
        name: String,
        /// Where to write the secret key (default: `<config dir>/keys/NAME.secret`).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// List the keys of `<config dir>/keys`: name, public key `NAME:base64`, file (sorted by name).
    List {
        /// Print a JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print the public key `NAME:base64` of a key, to paste into `--trusted-key`.
    Public {
        /// The key's NAME (`himg key generate NAME`) or a secret key FILE.
        #[arg(value_name = "NAME|FILE")]
        name: String,
    },
}

/// How to reach and trust binary caches (shared by `build` and `cache push`).
#[derive(Debug, Clone, Args, Default)]
pub struct CacheArgs {
    /// Binary caches to substitute from, in priority order (`file://DIR`, `http(s)://HOST/PATH`,
    /// `oci://REGISTRY/REPO`; default: $HIMG_SUBSTITUTERS, else the config file).
    #[arg(long, value_name = "URL,...", value_delimiter = ',')]
    pub substituters: Vec<String>,
    /// A public key `NAME:base64` whose signatures are trusted (repeatable; also the config file).
    #[arg(long = "trusted-key", value_name = "NAME:KEY")]
    pub trusted_keys: Vec<String>,
    /// The key that signs pushed entries: a secret key FILE, else the NAME of a key `himg key
    /// generate` made (default: the config file's, else the only generated key).
    #[arg(long, value_name = "NAME|FILE")]
    pub sign_key: Option<String>,
    /// Bearer token for HTTP caches (default: $HIMG_CACHE_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    pub cache_token: Option<String>,
}

impl CacheArgs {
    pub fn options(&self) -> crate::ops::config::CacheOptions {
        crate::ops::config::CacheOptions {
            substituters: self.substituters.clone(),
            trusted_keys: self.trusted_keys.clone(),
            sign_key: self.sign_key.clone(),
            cache_token: self.cache_token.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Upload the outputs of the images of FILE (everything of their closure the store has).
    Push {
        /// The cache: `file://DIR`, `http(s)://HOST/PATH` or `oci://REGISTRY/REPO`.
        url: String,
        /// .himg files whose images to push.
        #[arg(required_unless_present = "roots")]
        files: Vec<PathBuf>,
        /// Push the closure of every GC root instead (every image built into this store).
        #[arg(long, conflicts_with = "files")]
        roots: bool,
        #[command(flatten)]
        cache: CacheArgs,
        /// Print a JSON report on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Serve a binary cache over HTTP (put TLS in front with a reverse proxy).
    Serve {
        /// Address to listen on, e.g. `127.0.0.1:8080`.
        #[arg(long, value_name = "ADDR")]
        listen: String,
        /// Where the cache keeps its files (default: `<store>/cache-server`).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The tokens file (TOML; see the book). Without it, anyone may read and push.
        #[arg(long, value_name = "FILE")]
        tokens: Option<PathBuf>,
        /// Delete entries not read or written for this many days (checked hourly).
        #[arg(long, value_name = "DAYS")]
        retention_days: Option<u64>,
    },
    /// Print the sha256 to put in a tokens file for TOKEN.
    HashToken {
        /// The token.
        token: String,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The .himg file.
    pub file: PathBuf,
    /// Print the outcome as JSON on stdout: the images, or every diagnostic with its code, file,
    /// line, column and byte range (for editors and CI).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command (`himg.1`, `himg-build.1`, …) into this directory (created if
    /// needed) instead of printing `himg.1` on stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// The .himg files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Do not write; exit 1 if a file is not formatted.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The .himg file.
    pub file: PathBuf,
    /// Print JSON (the only format for now; accepted for clarity).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// An OCI image layout directory.
    Oci,
    /// A tar of an OCI image layout.
    OciArchive,
    /// A tar that `docker load` accepts (one architecture).
    DockerArchive,
}

impl From<OutputFormat> for crate::output::OutputFormat {
    fn from(f: OutputFormat) -> Self {
        match f {
            OutputFormat::Oci => crate::output::OutputFormat::Oci,
            OutputFormat::OciArchive => crate::output::OutputFormat::OciArchive,
            OutputFormat::DockerArchive => crate::output::OutputFormat::DockerArchive,
        }
    }
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The .himg file.
    pub file: PathBuf,
    /// Build only these images (repeatable; default: every image the file declares). NAME is an
    /// image the file declares; to name the output, use --tag.
    #[arg(long = "image", value_name = "NAME")]
    pub images: Vec<String>,
    /// Name the built image `REPO[:TAG]` in the output (repeatable; TAG defaults to `latest`):
    /// `RepoTags` of a docker-archive, `org.opencontainers.image.ref.name` in an OCI layout's
    /// index.json. Names one image: with several in the file, select it with --image.
    #[arg(long = "tag", value_name = "REPO[:TAG]", value_parser = parse_tag)]
    pub tags: Vec<String>,
    /// Where to write the output.
    #[arg(long, short, default_value = "result")]
    pub out: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Oci)]
    pub format: OutputFormat,
    /// For docker-archive of a multi-arch image: which architecture.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// Print one JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// Fail if the lock file is missing or stale instead of resolving packages.
    #[arg(long)]
    pub locked: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// After the build, push the images' outputs to this cache.
    #[arg(long, value_name = "URL")]
    pub push_to: Option<String>,
    /// For a workspace: build only this part of its files (`2/4`: the second of four; files are
    /// dealt in turn, the same split on every runner).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::ops::workspace::Shard>,
    /// Do not evaluate the images' policies after the build.
    #[arg(long)]
    pub no_policy: bool,
    /// Do not write SBOMs beside the output (`OUT.sbom/`).
    #[arg(long)]
    pub no_sbom: bool,
    /// After the build, run every build step once more and compare its outputs with the recorded
    /// ones (exit code 14, with a diff, when they differ).
    #[arg(long)]
    pub check: bool,
}

/// A `--tag` checked against the Docker reference grammar (`[HOST[:PORT]/]PATH[:TAG]`).
fn parse_tag(value: &str) -> Result<String, String> {
    crate::ops::build::check_tag_grammar(&[value.to_owned()])
        .map(|()| value.to_owned())
        .map_err(|e| format!("{e} (a tag is a Docker reference `[HOST[:PORT]/]PATH[:TAG]`)"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SbomFormat {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
}

impl From<SbomFormat> for crate::sbom::Format {
    fn from(f: SbomFormat) -> Self {
        match f {
            SbomFormat::Spdx => crate::sbom::Format::Spdx,
            SbomFormat::Cyclonedx => crate::sbom::Format::CycloneDx,
        }
    }
}

#[derive(Debug, Args)]
pub struct SbomArgs {
    /// A .himg file (built first), an OCI layout directory, an oci-archive or docker-archive, or a
    /// registry reference `HOST/REPO[:TAG][@DIGEST]` (pulled and verified first).
    pub target: PathBuf,
    /// The SBOM format.
    #[arg(long, value_enum, default_value_t = SbomFormat::Spdx)]
    pub format: SbomFormat,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// The image (needed when the target holds several).
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,
    /// The architecture (needed for a multi-architecture image).
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// Allow plain http for a registry reference that is not on loopback (loopback registries always may).
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// A .himg file (built first; its images' `policy` apply), an OCI layout, an archive, or a
    /// registry reference `HOST/REPO[:TAG][@DIGEST]` (pulled and verified first).
    pub target: PathBuf,
    /// Only these images (repeatable).
    #[arg(long = "image", value_name = "NAME")]
    pub images: Vec<String>,
    /// Check this baseline (`baseline`, `strict`, `none`) instead of the declared policies.
    #[arg(long, value_name = "NAME")]
    pub policy: Option<String>,
    /// Allow plain http for a registry reference that is not on loopback (loopback registries always may).
    #[arg(long)]
    pub insecure: bool,
    /// Print one JSON report on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The .himg file.
    pub file: PathBuf,
    /// Test only these images (repeatable; default: every image the file declares).
    #[arg(long = "image", value_name = "NAME")]
    pub images: Vec<String>,
    /// Also write a JUnit XML report to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Run every test, ignoring cached results.
    #[arg(long)]
    pub no_cache: bool,
    /// Print one JSON report on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The .himg file.
    pub file: PathBuf,
    /// The image to run (required when the file declares several).
    #[arg(long = "image", value_name = "NAME")]
    pub image: Option<String>,
    /// Share the host's network with the sandbox.
    #[arg(long)]
    pub network: bool,
    /// Run as this user (`name`, `uid`, `uid:gid`) instead of the image's.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// The command to run instead of the entrypoint and cmd (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The .himg file.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Workspace directories, .himg files, OCI layouts or archives, registry references.
    #[arg(required = true)]
    pub targets: Vec<PathBuf>,
    /// Images holding this Debian binary package.
    #[arg(long, value_name = "NAME", conflicts_with = "advisory")]
    pub package: Option<String>,
    /// … at a version below this one (Debian version order).
    #[arg(long, value_name = "VERSION", requires = "package")]
    pub below: Option<String>,
    /// Images affected by this advisory (DSA/DLA/CVE id or alias; needs `himg vulndb import`).
    #[arg(long, value_name = "ID")]
    pub advisory: Option<String>,
    /// Allow plain http for registries that are not on loopback.
    #[arg(long)]
    pub insecure: bool,
    /// The vulnerability database (default: the store's).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Print the rows as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AffectedArgs {
    /// A workspace directory, or one .himg file.
    pub target: PathBuf,
    /// Compare with the files at this git revision (default: with what the store has built).
    #[arg(long, value_name = "GIT-REV")]
    pub since: Option<String>,
    /// Print the answer as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The .himg file.
    pub file: PathBuf,
    /// The image (as named in the file).
    pub image: String,
    /// The package to explain.
    pub package: String,
    /// The architecture (default: the image's first).
    #[arg(long)]
    pub arch: Option<String>,
    /// Show every shortest path (up to 1000), not only the first five.
    #[arg(long)]
    pub all: bool,
    /// Print the answer as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The .himg file.
    pub file: PathBuf,
    /// Only let these packages change (default: all).
    pub packages: Vec<String>,
    /// Do not write the lock; exit 10 when updates exist (for a scheduled CI job).
    #[arg(long)]
    pub check: bool,
    /// Print the updates as JSON on stdout (with the advisories each one fixes).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// An OCI layout directory (what `himg build --out DIR` writes), or a .himg file (built first).
    pub layout: PathBuf,
    /// Where to: `HOST[:PORT]/REPOSITORY[:TAG]`.
    pub reference: String,
    /// The image of the layout to push (by its ref name); needed when the layout holds several.
    #[arg(long)]
    pub image: Option<String>,
    /// Allow plain http for a registry that is not on loopback (loopback registries always may).
    #[arg(long)]
    pub insecure: bool,
    /// Also attach each pushed manifest's SBOMs (SPDX and CycloneDX) as OCI artifacts referring to
    /// it, tagged `sha256-<hex>.spdx` and `sha256-<hex>.cdx`.
    #[arg(long)]
    pub sbom: bool,
    /// Also attach each pushed manifest's signed SLSA provenance (a DSSE envelope) as an OCI
    /// artifact referring to it, tagged `sha256-<hex>.att` (needs a .himg file).
    #[arg(long)]
    pub provenance: bool,
    /// The key that signs the provenance: a NAME of `himg key generate NAME`, or a secret key file
    /// (default: the key `cache push` signs with).
    #[arg(long, value_name = "NAME|FILE", requires = "provenance")]
    pub sign_key: Option<String>,
    /// Mount blobs the registry holds in this repository instead of uploading them (default: the
    /// repository of the image's registry base, when it is on the same registry).
    #[arg(long, value_name = "REPOSITORY")]
    pub mount_from: Option<String>,
    /// For a workspace (LAYOUT is a directory of .himg files, REF a `HOST/PREFIX`): the tag each
    /// image is pushed with, to `HOST/PREFIX/IMAGE:TAG`.
    #[arg(long, value_name = "TAG", default_value = "latest")]
    pub tag: String,
    /// Print a JSON report on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProvenanceArgs {
    /// The .himg file (built first, reusing the store).
    #[arg(required_unless_present = "verify")]
    pub file: Option<PathBuf>,
    /// Instead: fetch the provenance attached to REF's image manifests (`himg push --provenance`)
    /// and check its signature by a `--trusted-key` and its subject (exit 13 when it fails).
    #[arg(long, value_name = "REF", conflicts_with_all = ["file", "sign", "out", "image"])]
    pub verify: Option<String>,
    /// A public key `NAME:base64` whose provenance signatures are trusted (repeatable).
    #[arg(long = "trusted-key", value_name = "NAME:KEY", requires = "verify")]
    pub trusted_keys: Vec<String>,
    /// Allow plain http for `--verify`'s registry (loopback registries always may).
    #[arg(long, requires = "verify")]
    pub insecure: bool,
    /// Which image (by name) when the file declares several.
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,
    /// Which architecture when the image has several.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// Write the statement (or envelope) to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print a signed DSSE envelope instead of the bare statement.
    #[arg(long)]
    pub sign: bool,
    /// The key that signs: a NAME of `himg key generate NAME`, or a secret key file (default: the
    /// key `cache push` signs with).
    #[arg(long, value_name = "NAME|FILE", requires = "sign")]
    pub sign_key: Option<String>,
    /// With `--verify`: print the verified statements as JSON on stdout.
    #[arg(long, requires = "verify")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A .himg file (built first), an OCI layout directory, an oci-archive or docker-archive, or a
    /// registry reference `HOST[:PORT]/REPOSITORY[:TAG|@sha256:…]`.
    pub target: String,
    /// Which image (by name) when the target holds several.
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,
    /// Which architecture when the image has several.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// Allow plain http for a registry reference (a registry on localhost).
    #[arg(long)]
    pub insecure: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Show what the packages' maintainer scripts did at build time: the scripts run, failures,
    /// the files they made, and what was not kept and why.
    #[arg(long)]
    pub scripts: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old image: any target `himg inspect` accepts.
    pub a: String,
    /// The new image.
    pub b: String,
    /// Which image (by name) on both sides when a target holds several.
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,
    /// Which architecture on both sides.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// Allow plain http for registry references.
    #[arg(long)]
    pub insecure: bool,
    /// Print the full report (every path) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// `HOST[:PORT]/REPOSITORY[:TAG|@sha256:…]`.
    pub reference: String,
    /// The OCI layout directory to write (created or updated).
    #[arg(long, short)]
    pub out: PathBuf,
    /// The ref name in the layout (default: the tag, else `latest`).
    #[arg(long)]
    pub name: Option<String>,
    /// Allow plain http for a registry that is not on loopback (loopback registries always may).
    #[arg(long)]
    pub insecure: bool,
    /// Print a JSON report on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// The .himg file.
    pub file: PathBuf,
    /// The build's name (may be left out when the file's images use one build).
    pub build: Option<String>,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The .himg file.
    pub file: PathBuf,
    /// Only these images.
    #[arg(long = "image", value_name = "NAME")]
    pub images: Vec<String>,
    /// Only steps of these kinds (repeatable or comma-separated: `layer,config,manifest`); edges
    /// follow the paths through the steps left out.
    #[arg(long = "kind", value_name = "KIND", value_delimiter = ',')]
    pub kinds: Vec<String>,
    /// Group the steps only one image uses in a box named after the image.
    #[arg(long)]
    pub cluster: bool,
    /// Colour each step by whether its output is in the store (green) or would be built (orange).
    #[arg(long)]
    pub stored: bool,
    /// JSON instead of DOT.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Re-hash every object and check every reference; exit 4 on any problem.
    Verify {
        /// Remove what is damaged and every output derived from it (the next build rebuilds
        /// them); exit 0 once the store is consistent again.
        #[arg(long)]
        repair: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete everything no root reaches.
    Gc {
        /// Report what would be deleted without deleting.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// List GC roots (each build registers its images).
    Roots {
        #[arg(long)]
        json: bool,
        /// Remove the named root.
        #[arg(long, value_name = "NAME")]
        remove: Option<String>,
    },
    /// Sizes and counts.
    Info {
        #[arg(long)]
        json: bool,
    },
}

/// Parses a `--fail-on` severity.
fn parse_severity(text: &str) -> Result<crate::vuln::Severity, String> {
    crate::vuln::Severity::parse(text).ok_or_else(|| {
        "expected one of unknown, negligible, low, medium, high, critical".to_string()
    })
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// A .himg file (built first, reusing the store), an OCI layout directory, an archive, or a
    /// registry reference `HOST/REPO[:TAG][@DIGEST]` (pulled and verified first).
    pub target: PathBuf,
    /// Scan only these images (repeatable; default: all).
    #[arg(long = "image", value_name = "NAME")]
    pub images: Vec<String>,
    /// Scan only this architecture.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// The Debian release (`trixie`, `13`, `Debian:13`); overrides the lock and /etc/os-release.
    #[arg(long, value_name = "RELEASE")]
    pub release: Option<String>,
    /// Print the report as JSON on stdout.
    #[arg(long, conflicts_with = "sarif")]
    pub json: bool,
    /// Print the report as SARIF 2.1.0 on stdout (for code-scanning dashboards).
    #[arg(long)]
    pub sarif: bool,
    /// Exit 11 when a finding not suppressed by VEX has this severity or higher.
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub fail_on: Option<crate::vuln::Severity>,
    /// An OpenVEX file to apply (repeatable; added to the image's own `vex` files).
    #[arg(long = "vex", value_name = "FILE")]
    pub vex: Vec<PathBuf>,
    /// The vulnerability database (default: vulndb.sqlite in the store directory).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Allow plain http for a registry reference that is not on loopback (loopback registries always may).
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Subcommand)]
pub enum VulndbCommand {
    /// Import the Debian security tracker JSON or OSV records (a .json file, a directory or a .zip;
    /// a path or an http(s):// URL); replaces what the same source imported before.
    Import {
        /// File, directory or URL.
        source: String,
        /// The vulnerability database (default: vulndb.sqlite in the store directory).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Sources, record counts, import times and the database version.
    Status {
        /// The vulnerability database (default: vulndb.sqlite in the store directory).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The image: `HOST/REPO[:TAG][@sha256:…]` (resolved to its digest first); or a workspace
    /// directory, whose images `himg push DIR --from`'s PREFIX holds.
    #[arg(required_unless_present = "show")]
    pub source: Option<String>,
    /// Where it goes: `HOST/REPO[:TAG]`; the manifest is copied byte for byte. For a workspace:
    /// `HOST/PREFIX`, each image going to `HOST/PREFIX/IMAGE:TAG` (a published image to
    /// `HOST/PREFIX/` + its repository path).
    #[arg(required_unless_present = "show")]
    pub destination: Option<String>,
    /// For a workspace: the `HOST/PREFIX` its images were pushed to (`himg push DIR PREFIX`).
    #[arg(long, value_name = "HOST/PREFIX")]
    pub from: Option<String>,
    /// For a workspace: the tag of every image, at the source and the destination.
    #[arg(long, value_name = "TAG", default_value = "latest")]
    pub tag: String,
    /// The stage the image enters (`staging`, `prod`, …): names the record.
    #[arg(long, value_name = "NAME", required_unless_present = "show")]
    pub stage: Option<String>,
    /// Gate: every image must pass this baseline (`baseline`, `strict`, `none`); exit 5 if not.
    #[arg(long, value_name = "BASELINE")]
    pub policy: Option<String>,
    /// Gate: no finding of this severity or higher (needs an imported vulnerability database);
    /// exit 11 if there is one.
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub fail_on: Option<crate::vuln::Severity>,
    /// Gate: a record of this stage, for the same digest, in the source repository, signed by a
    /// `--trusted-key` (or a key of the config file's `[promote] trusted-keys`); exit 12 if there
    /// is none.
    #[arg(long, value_name = "STAGE")]
    pub require_stage: Option<String>,
    /// A public key `NAME:base64` whose promotion records are trusted (repeatable).
    #[arg(long = "trusted-key", value_name = "NAME:KEY")]
    pub trusted_keys: Vec<String>,
    /// The key that signs the record: a NAME of `himg key generate NAME`, or a secret key file
    /// (default: the key `cache push` signs with).
    #[arg(long, value_name = "NAME|FILE")]
    pub sign_key: Option<String>,
    /// Allow plain http for a registry that is not on loopback (loopback registries always may).
    #[arg(long)]
    pub insecure: bool,
    /// Instead of promoting: list the promotion records of REF's digest in REF's repository.
    #[arg(long, value_name = "REF", conflicts_with_all = ["source", "destination", "stage", "policy", "fail_on", "require_stage", "sign_key"])]
    pub show: Option<String>,
    /// Print a JSON report on stdout.
    #[arg(long)]
    pub json: bool,
}
