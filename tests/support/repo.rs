//! A complete signed apt repository on disk, for tests.
//!
//! ```text
//! ROOT/
//!   pool/COMPONENT/<prefix>/<source>/<name>_<version>_<arch>.deb
//!   dists/SUITE/Release                     (unsigned copy)
//!   dists/SUITE/InRelease                   (clearsigned by every signer)
//!   dists/SUITE/COMPONENT/binary-ARCH/Packages{,.gz,.xz}
//!   dists/SUITE/COMPONENT/binary-ARCH/by-hash/SHA256/<hex>   (when Acquire-By-Hash)
//! ```
//!
//! [`RepoBuilder`] collects suites and packages; [`RepoBuilder::write`] lays the tree out and
//! returns a [`BuiltRepo`], whose tamper helpers modify files *after* signing, to test that each
//! link of the chain of trust is checked. Serve the tree with [`super::server::serve`] or use
//! [`BuiltRepo::file_url`].

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use pgp::crypto::hash::HashAlgorithm;
use sha2::{Digest, Sha256};

use super::deb::{Compression, Deb};
use super::key::{KEY_CREATED, TestKey};

/// Default `Date` of a suite: 2025-01-01T00:00:00Z.
pub const DEFAULT_DATE: i64 = 1_735_689_600;

/// An index file variant to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IndexFormat {
    /// `Packages`
    Plain,
    /// `Packages.gz`
    Gz,
    /// `Packages.xz`
    Xz,
}

impl IndexFormat {
    /// The file name suffix (`""`, `.gz`, `.xz`).
    pub fn suffix(self) -> &'static str {
        match self {
            IndexFormat::Plain => "",
            IndexFormat::Gz => ".gz",
            IndexFormat::Xz => ".xz",
        }
    }
}

/// One suite of a fixture repository.
#[derive(Debug, Clone)]
pub struct SuiteSpec {
    /// `Suite` field (defaults to the suite's directory name).
    pub suite: String,
    /// `Codename` field (defaults to the suite's directory name).
    pub codename: String,
    /// `Origin`.
    pub origin: String,
    /// `Label`.
    pub label: String,
    /// `Date`, unix seconds (also the signature time, when after key creation).
    pub date: i64,
    /// `Valid-Until`, unix seconds.
    pub valid_until: Option<i64>,
    /// `Acquire-By-Hash: yes` and the by-hash copies.
    pub acquire_by_hash: bool,
    /// Which Packages variants to write (and list in Release).
    pub formats: BTreeSet<IndexFormat>,
    /// `Architectures` (besides those of the added packages).
    pub architectures: BTreeSet<String>,
    /// `Components` (besides those of the added packages).
    pub components: BTreeSet<String>,
    /// Hash algorithm of the InRelease signatures.
    pub signature_hash: HashAlgorithm,
    packages: Vec<(String, Deb)>,
    /// Stanzas appended to every Packages index of `main` as they are (packages listed but never
    /// fetched: a realistic index size for benchmarks).
    pub extra_stanzas: String,
}

impl SuiteSpec {
    fn new(name: &str) -> Self {
        SuiteSpec {
            suite: name.to_string(),
            codename: name.to_string(),
            origin: "himg-test".into(),
            label: "himg-test".into(),
            date: DEFAULT_DATE,
            valid_until: None,
            acquire_by_hash: true,
            formats: [IndexFormat::Plain, IndexFormat::Gz, IndexFormat::Xz].into(),
            architectures: BTreeSet::new(),
            components: ["main".to_string()].into(),
            signature_hash: HashAlgorithm::Sha256,
            packages: Vec::new(),
            extra_stanzas: String::new(),
        }
    }

    /// Adds a package to `component` (an `all` package goes into every architecture).
    pub fn add(&mut self, component: &str, deb: &Deb) -> &mut Self {
        self.components.insert(component.to_string());
        if deb.architecture != "all" {
            self.architectures.insert(deb.architecture.clone());
        }
        self.packages.push((component.to_string(), deb.clone()));
        self
    }
    /// Sets `Date`.
    pub fn date(&mut self, t: i64) -> &mut Self {
        self.date = t;
        self
    }
    /// Sets `Valid-Until`.
    pub fn valid_until(&mut self, t: Option<i64>) -> &mut Self {
        self.valid_until = t;
        self
    }
    /// Turns Acquire-By-Hash on or off.
    pub fn by_hash(&mut self, yes: bool) -> &mut Self {
        self.acquire_by_hash = yes;
        self
    }
    /// Chooses the Packages variants.
    pub fn formats(&mut self, f: &[IndexFormat]) -> &mut Self {
        self.formats = f.iter().copied().collect();
        self
    }
    /// Sets the `Suite` field (e.g. `stable` for a codename directory).
    pub fn suite_field(&mut self, s: &str) -> &mut Self {
        self.suite = s.to_string();
        self
    }
    /// Adds an architecture even without packages for it.
    pub fn arch(&mut self, a: &str) -> &mut Self {
        self.architectures.insert(a.to_string());
        self
    }
    /// Sets the signature hash (e.g. SHA-1, to test that it is refused).
    pub fn signature_hash(&mut self, h: HashAlgorithm) -> &mut Self {
        self.signature_hash = h;
        self
    }

    fn archs(&self) -> BTreeSet<String> {
        if self.architectures.is_empty() {
            ["amd64".to_string()].into()
        } else {
            self.architectures.clone()
        }
    }
}

/// Collects suites, packages and signing keys.
#[derive(Debug, Clone, Default)]
pub struct RepoBuilder {
    suites: BTreeMap<String, SuiteSpec>,
    signers: Vec<TestKey>,
}

/// The pool path of a package: `pool/main/h/hello/hello_1.0-1_amd64.deb`.
pub fn pool_path(component: &str, deb: &Deb) -> String {
    let src = &deb.source;
    let prefix = if src.starts_with("lib") && src.len() > 3 {
        &src[..4]
    } else {
        &src[..src.len().min(1)]
    };
    format!("pool/{component}/{prefix}/{src}/{}", deb.file_name())
}

/// `Sat, 01 Jan 2000 00:00:00 UTC`.
pub fn rfc2822(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let s = t.rem_euclid(86_400);
    // civil from days (proleptic Gregorian)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} UTC",
        WD[days.rem_euclid(7) as usize],
        MON[(m - 1) as usize],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes)
}

impl RepoBuilder {
    /// An empty repository.
    pub fn new() -> Self {
        RepoBuilder::default()
    }

    /// The suite `name` (created on first use).
    pub fn suite(&mut self, name: &str) -> &mut SuiteSpec {
        self.suites
            .entry(name.to_string())
            .or_insert_with(|| SuiteSpec::new(name))
    }

    /// Adds a key that signs every InRelease (several keys give several signatures).
    pub fn sign_with(&mut self, key: &TestKey) -> &mut Self {
        self.signers.push(key.clone());
        self
    }

    /// Writes the tree into a new temporary directory, removed when the [`BuiltRepo`] drops.
    pub fn write_temp(&self) -> io::Result<BuiltRepo> {
        let tmp = tempfile::Builder::new()
            .prefix("himg-fixture-repo")
            .tempdir()?;
        let mut built = self.write(tmp.path())?;
        built.tmp = Some(tmp);
        Ok(built)
    }

    /// Writes the tree under `root`.
    pub fn write(&self, root: &Path) -> io::Result<BuiltRepo> {
        let mut debs = BTreeMap::new();
        for spec in self.suites.values() {
            for (component, deb) in &spec.packages {
                let rel = pool_path(component, deb);
                write_file(&root.join(&rel), &deb.bytes)?;
                debs.insert(deb.package.clone(), rel);
            }
        }
        for (name, spec) in &self.suites {
            self.write_suite(root, name, spec)?;
        }
        Ok(BuiltRepo {
            root: root.to_path_buf(),
            tmp: None,
            debs,
            suites: self.suites.clone(),
            signers: self.signers.clone(),
        })
    }

    fn write_suite(&self, root: &Path, name: &str, spec: &SuiteSpec) -> io::Result<()> {
        let dists = root.join("dists").join(name);
        let archs = spec.archs();
        let mut listed: BTreeMap<String, (u64, String)> = BTreeMap::new();
        for component in &spec.components {
            for arch in &archs {
                let mut entries: Vec<&Deb> = spec
                    .packages
                    .iter()
                    .filter(|(c, d)| {
                        c == component && (d.architecture == *arch || d.architecture == "all")
                    })
                    .map(|(_, d)| d)
                    .collect();
                entries.sort_by(|a, b| (&a.package, &a.version).cmp(&(&b.package, &b.version)));
                let mut text = String::new();
                for d in entries {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(&format!(
                        "{}\nFilename: {}\nSize: {}\nSHA256: {}\n",
                        d.control,
                        pool_path(component, d),
                        d.bytes.len(),
                        d.sha256_hex()
                    ));
                }
                if component == "main" && !spec.extra_stanzas.is_empty() {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(&spec.extra_stanzas);
                }
                let dir = format!("{component}/binary-{arch}");
                for fmt in &spec.formats {
                    let bytes = match fmt {
                        IndexFormat::Plain => text.clone().into_bytes(),
                        IndexFormat::Gz => Compression::Gzip.compress(text.as_bytes())?,
                        IndexFormat::Xz => Compression::Xz.compress(text.as_bytes())?,
                    };
                    let rel = format!("{dir}/Packages{}", fmt.suffix());
                    write_file(&dists.join(&rel), &bytes)?;
                    let digest = hex::encode(Sha256::digest(&bytes));
                    if spec.acquire_by_hash {
                        write_file(
                            &dists.join(format!("{dir}/by-hash/SHA256/{digest}")),
                            &bytes,
                        )?;
                    }
                    listed.insert(rel, (bytes.len() as u64, digest));
                }
            }
        }
        let mut release = format!(
            "Origin: {}\nLabel: {}\nSuite: {}\nCodename: {}\nDate: {}\n",
            spec.origin,
            spec.label,
            spec.suite,
            spec.codename,
            rfc2822(spec.date)
        );
        if let Some(v) = spec.valid_until {
            release.push_str(&format!("Valid-Until: {}\n", rfc2822(v)));
        }
        if spec.acquire_by_hash {
            release.push_str("Acquire-By-Hash: yes\n");
        }
        release.push_str(&format!(
            "Architectures: {}\nComponents: {}\nDescription: himg test repository\nSHA256:\n",
            archs.into_iter().collect::<Vec<_>>().join(" "),
            spec.components
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        ));
        for (path, (size, digest)) in &listed {
            release.push_str(&format!(" {digest} {size:>16} {path}\n"));
        }
        write_file(&dists.join("Release"), release.as_bytes())?;
        if !self.signers.is_empty() {
            let inrelease = sign(&self.signers, &release, spec)?;
            write_file(&dists.join("InRelease"), &inrelease)?;
        }
        Ok(())
    }
}

fn sign(signers: &[TestKey], text: &str, spec: &SuiteSpec) -> io::Result<Vec<u8>> {
    let keys: Vec<&TestKey> = signers.iter().collect();
    let when = spec.date.max(KEY_CREATED + 1);
    TestKey::sign_cleartext_many(&keys, text, when, spec.signature_hash)
}

/// A repository written to disk. Holds its temporary directory, if any.
#[derive(Debug)]
pub struct BuiltRepo {
    root: PathBuf,
    tmp: Option<tempfile::TempDir>,
    debs: BTreeMap<String, String>,
    suites: BTreeMap<String, SuiteSpec>,
    signers: Vec<TestKey>,
}

impl BuiltRepo {
    /// The repository root (the directory holding `dists/` and `pool/`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `file:///…` URL of the root.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.root.display())
    }

    /// A path inside the repository.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The pool path of a package, as in its `Filename` field.
    pub fn deb_rel(&self, package: &str) -> Option<&str> {
        self.debs.get(package).map(String::as_str)
    }

    /// `dists/SUITE/COMPONENT/binary-ARCH/Packages{suffix}`.
    pub fn index_rel(suite: &str, component: &str, arch: &str, suffix: &str) -> String {
        format!("dists/{suite}/{component}/binary-{arch}/Packages{suffix}")
    }

    /// Flips the lowest bit of one byte (at `offset`, default the middle) of a file.
    pub fn flip_byte(&self, rel: &str, offset: Option<usize>) -> io::Result<()> {
        let path = self.path(rel);
        let mut bytes = std::fs::read(&path)?;
        if bytes.is_empty() {
            return Err(io::Error::other(format!("{rel} is empty")));
        }
        let i = offset.unwrap_or(bytes.len() / 2).min(bytes.len() - 1);
        bytes[i] ^= 1;
        std::fs::write(path, bytes)
    }

    /// Appends bytes to a file (its size no longer matches the index).
    pub fn append_bytes(&self, rel: &str, extra: &[u8]) -> io::Result<()> {
        let path = self.path(rel);
        let mut bytes = std::fs::read(&path)?;
        bytes.extend_from_slice(extra);
        std::fs::write(path, bytes)
    }

    /// Changes one character of the signed body of `dists/SUITE/InRelease` (in the `Label`
    /// value), leaving the armor and signature intact.
    pub fn tamper_inrelease_body(&self, suite: &str) -> io::Result<()> {
        let path = self.path(&format!("dists/{suite}/InRelease"));
        let text = std::fs::read_to_string(&path)?;
        let Some(i) = text.find("Label: ") else {
            return Err(io::Error::other("no Label in InRelease"));
        };
        let mut bytes = text.into_bytes();
        let j = i + "Label: ".len();
        bytes[j] = if bytes[j] == b'X' { b'Y' } else { b'X' };
        std::fs::write(path, bytes)
    }

    /// Flips a byte in `Packages{suffix}` and in its by-hash copy.
    pub fn tamper_index(
        &self,
        suite: &str,
        component: &str,
        arch: &str,
        suffix: &str,
    ) -> io::Result<()> {
        let rel = Self::index_rel(suite, component, arch, suffix);
        let original = std::fs::read(self.path(&rel))?;
        self.flip_byte(&rel, None)?;
        let by_hash = format!(
            "dists/{suite}/{component}/binary-{arch}/by-hash/SHA256/{}",
            hex::encode(Sha256::digest(&original))
        );
        if self.path(&by_hash).exists() {
            self.flip_byte(&by_hash, None)?;
        }
        Ok(())
    }

    /// Flips a byte in a package's `.deb` in the pool.
    pub fn tamper_deb(&self, package: &str) -> io::Result<()> {
        let rel = self
            .deb_rel(package)
            .ok_or_else(|| io::Error::other(format!("no package {package}")))?
            .to_string();
        self.flip_byte(&rel, None)
    }

    /// Deletes every `by-hash` directory of a suite (a mirror without by-hash copies).
    pub fn remove_by_hash(&self, suite: &str) -> io::Result<()> {
        let spec = self
            .suites
            .get(suite)
            .ok_or_else(|| io::Error::other(format!("no suite {suite}")))?;
        for c in &spec.components {
            for a in spec.archs() {
                let dir = self.path(&format!("dists/{suite}/{c}/binary-{a}/by-hash"));
                if dir.exists() {
                    std::fs::remove_dir_all(dir)?;
                }
            }
        }
        Ok(())
    }

    /// Rewrites `dists/SUITE/Release` with `edit` and re-signs InRelease with the repository's
    /// keys (e.g. to serve another suite's name, or to lie about a size while signed).
    pub fn resign_release(&self, suite: &str, edit: impl FnOnce(&str) -> String) -> io::Result<()> {
        let spec = self
            .suites
            .get(suite)
            .ok_or_else(|| io::Error::other(format!("no suite {suite}")))?;
        let dists = self.path(&format!("dists/{suite}"));
        let text = edit(&std::fs::read_to_string(dists.join("Release"))?);
        std::fs::write(dists.join("Release"), &text)?;
        std::fs::write(dists.join("InRelease"), sign(&self.signers, &text, spec)?)
    }
}

/// Writes (replacing what `dir` held) a repository signed by `key` with one suite `suite` holding
/// `debs` in `main` — the usual fixture of the end-to-end tests.
pub fn publish(dir: &Path, key: &TestKey, suite: &str, debs: &[Deb]) -> io::Result<BuiltRepo> {
    let _ = std::fs::remove_dir_all(dir);
    let mut repo = RepoBuilder::new();
    repo.sign_with(key);
    let s = repo.suite(suite);
    for d in debs {
        s.add("main", d);
    }
    repo.write(dir)
}

/// The usual fixture of a project's end-to-end test: [`publish`] into `project/repo`, serve it on
/// 127.0.0.1, and write the key's public keyring to `project/fixture.gpg` (what a `.himg`'s
/// `keyring = "fixture.gpg"` names).
pub fn serve_fixture(
    project: &Path,
    key: &TestKey,
    suite: &str,
    debs: &[Deb],
) -> io::Result<crate::support::TestServer> {
    publish(&project.join("repo"), key, suite, debs)?;
    let server = crate::support::serve(&project.join("repo"))?;
    std::fs::write(project.join("fixture.gpg"), key.public_keyring())?;
    Ok(server)
}
