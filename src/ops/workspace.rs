//! Workspaces: every `.himg` file under a directory handled as one — discovered, ordered so that a
//! file comes after the files it imports, locked and built in one session (one InRelease fetch and
//! one parse per index, one store, shared derivations) with one report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::build::{BuildOptions, Built};
use super::lock::Locked;
use super::{Error, Session};
use crate::registry::Reference;

/// Directories a workspace walk never enters: hidden ones (`.git`), Cargo's `target`, and build
/// outputs (`*.sbom`, OCI layouts).
fn skipped_dir(name: &str) -> bool {
    name.starts_with('.') || name == "target" || name == "node_modules" || name.ends_with(".sbom")
}

/// One `.himg` file of a workspace.
#[derive(Debug, Clone)]
pub struct Member {
    /// The file, as found under the workspace directory.
    pub file: PathBuf,
    /// Its path relative to the workspace directory, `/`-separated (its name in reports).
    pub name: String,
    /// The images it declares (none: a library other files import).
    pub images: Vec<String>,
    /// The other members it imports, by name.
    pub imports: Vec<String>,
    /// Its images that declare `publish`: (image, `HOST/REPO[:TAG]`).
    pub publishes: Vec<(String, String)>,
    /// The registry bases (`from = "HOST/REPO:TAG@sha256:…"`) its images are built on.
    pub registry_bases: Vec<String>,
    /// The other members whose published images it is built on, by name (placed before it).
    pub built_on: Vec<String>,
}

impl Member {
    /// Whether this member publishes the repository a registry base `pin` names (and its tag,
    /// when the publish names one).
    fn publishes_base(&self, pin: &str) -> bool {
        let Ok(pinned) = pin.parse::<Reference>() else {
            return false;
        };
        self.publishes.iter().any(|(_, p)| {
            p.parse::<Reference>().is_ok_and(|r| {
                super::pins::publish_covers(&r.registry, &r.repository, r.tag.as_deref(), &pinned)
            })
        })
    }
}

/// The `.himg` files under a directory, each after the members it imports.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub dir: PathBuf,
    pub members: Vec<Member>,
}

impl Workspace {
    /// The members that declare images (the ones there is something to build, lock or test).
    pub fn with_images(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| !m.images.is_empty())
    }

    /// The part of the workspace shard `shard` builds: the members with images taken in turn
    /// (the first to shard 1, the second to shard 2, …, in workspace order), libraries and the
    /// members that publish a base other members are built on kept in every shard (their builds
    /// are shared through the binary cache). Every runner of a CI matrix computes the same split
    /// from the same files.
    pub fn shard(&self, shard: Shard) -> Workspace {
        let bases: BTreeSet<&String> = self.members.iter().flat_map(|m| &m.built_on).collect();
        let mut turn = 0u32;
        let members = self
            .members
            .iter()
            .filter(|m| {
                if m.images.is_empty() || bases.contains(&m.name) {
                    return true;
                }
                let mine = turn % shard.count == shard.index - 1;
                turn += 1;
                mine
            })
            .cloned()
            .collect();
        Workspace {
            dir: self.dir.clone(),
            members,
        }
    }
}

/// One of `count` parts of a workspace (`--shard INDEX/COUNT`, 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}` is not INDEX/COUNT with 1 <= INDEX <= COUNT (e.g. 2/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<u32>().map_err(|_| bad())?,
            n.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// Whether `target` names a workspace (a directory that is not an OCI image layout) rather than
/// one file or one layout.
pub fn is_workspace(target: &Path) -> bool {
    target.is_dir() && !target.join("oci-layout").exists()
}

/// The session a workspace is handled in: every file is loaded below the workspace directory
/// (unless a project root is already set), so members may import each other.
pub fn session_for<'p>(session: &Session<'p>, dir: &Path) -> Session<'p> {
    match session.project_root() {
        Some(_) => session.clone(),
        None => session.clone().with_project_root(Some(dir.to_path_buf())),
    }
}

/// Finds and evaluates every `.himg` file under `dir` and orders them: a file after the files it
/// imports, otherwise by name.
pub fn discover(session: &Session<'_>, dir: &Path) -> Result<Workspace, Error> {
    let session = session_for(session, dir);
    let mut files = Vec::new();
    let walk = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || !e.file_type().is_dir()
                || !e.file_name().to_str().is_some_and(skipped_dir)
        });
    for entry in walk {
        let entry = entry.map_err(|e| Error::Workspace {
            dir: dir.to_path_buf(),
            problem: e.to_string(),
        })?;
        if entry.file_type().is_file() && entry.path().extension().is_some_and(|x| x == "himg") {
            files.push(entry.into_path());
        }
    }
    if files.is_empty() {
        return Err(Error::Workspace {
            dir: dir.to_path_buf(),
            problem: "holds no `.himg` file".into(),
        });
    }
    let mut members = BTreeMap::new();
    for file in files {
        let name = relative_name(dir, &file);
        let loaded = session.load(&file)?;
        let imports = loaded
            .evaluated
            .files_read
            .iter()
            .map(|p| p.as_str().trim_start_matches("./").to_owned())
            .filter(|p| *p != name)
            .collect();
        let images = &loaded.evaluated.images;
        let mut registry_bases: Vec<String> = images
            .iter()
            .filter_map(|i| crate::debian::locking::registry_base_of(i).map(str::to_owned))
            .collect();
        registry_bases.sort();
        registry_bases.dedup();
        members.insert(
            name.clone(),
            Member {
                file,
                name,
                images: images.iter().map(|i| i.name.clone()).collect(),
                imports,
                publishes: images
                    .iter()
                    .filter_map(|i| Some((i.name.clone(), i.publish.clone()?)))
                    .collect(),
                registry_bases,
                built_on: Vec::new(),
            },
        );
    }
    link_published_bases(&mut members);
    Ok(Workspace {
        dir: dir.to_path_buf(),
        members: ordered(members),
    })
}

/// Fills each member's `built_on`: the members that publish a registry base it pins.
fn link_published_bases(members: &mut BTreeMap<String, Member>) {
    let all: Vec<Member> = members.values().cloned().collect();
    for m in members.values_mut() {
        m.built_on = all
            .iter()
            .filter(|p| p.name != m.name && m.registry_bases.iter().any(|b| p.publishes_base(b)))
            .map(|p| p.name.clone())
            .collect();
    }
}

/// `file`'s path below `dir`, `/`-separated.
fn relative_name(dir: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(dir).unwrap_or(file);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Members in dependency order (a file after the members it imports and the members that publish
/// the registry bases it pins), ties by name. Imports are acyclic (the language refuses a cycle);
/// a cycle through published bases (a publishes what b pins and the other way round) cannot be
/// built from scratch, and is placed by name.
fn ordered(mut members: BTreeMap<String, Member>) -> Vec<Member> {
    let names: BTreeSet<String> = members.keys().cloned().collect();
    for m in members.values_mut() {
        m.imports.retain(|i| names.contains(i));
    }
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    while !members.is_empty() {
        let ready: Vec<String> = members
            .values()
            .filter(|m| {
                m.imports
                    .iter()
                    .chain(&m.built_on)
                    .all(|i| placed.contains(i))
            })
            .map(|m| m.name.clone())
            .collect();
        // Never empty without a cycle; place the rest by name rather than loop forever.
        let ready = if ready.is_empty() {
            members.keys().cloned().collect()
        } else {
            ready
        };
        for name in ready {
            if let Some(m) = members.remove(&name) {
                placed.insert(name);
                out.push(m);
            }
        }
    }
    out
}

/// Where a member's images are written under the workspace output directory: its name without
/// `.himg` (`products/api.himg` → `OUT/products/api`).
pub fn member_out(out: &Path, member: &Member) -> PathBuf {
    out.join(member.name.trim_end_matches(".himg"))
}

/// Locks every member that declares packages, in order, in one session.
pub fn lock(session: &Session<'_>, ws: &Workspace) -> Result<Vec<(Member, Locked)>, Error> {
    let session = session_for(session, &ws.dir);
    let mut out = Vec::new();
    for member in ws.with_images() {
        let locked = super::lock::lock(&session, &member.file)?;
        out.push((member.clone(), locked));
    }
    Ok(out)
}

/// Updates every member (registry-base pins, then packages), in order, in one session: the
/// template's `file` is replaced per member. A member that publishes a base another member is
/// built on is built right after its update (into the store only), and the pins on it follow that
/// build: a base update cascades to the files built on it in the same run. When checking, a
/// publisher whose own update is pending is not built (the run already reports a change).
pub fn update(
    session: &Session<'_>,
    ws: &Workspace,
    template: &super::lock::UpdateOptions,
) -> Result<Vec<(Member, super::lock::Updated)>, Error> {
    let session = session_for(session, &ws.dir);
    let bases: BTreeSet<&String> = ws.members.iter().flat_map(|m| &m.built_on).collect();
    let mut published = template.published.clone();
    let mut out = Vec::new();
    for member in ws.with_images() {
        let opts = super::lock::UpdateOptions {
            file: member.file.clone(),
            published: published.clone(),
            ..template.clone()
        };
        let updated = super::lock::update(&session, &opts)?;
        let pending = updated.status == super::lock::UpdateStatus::UpdatesAvailable;
        if bases.contains(&member.name) && !(template.check && pending) {
            published.extend(build_published(&session, member)?);
        }
        out.push((member.clone(), updated));
    }
    Ok(out)
}

/// Builds `member` (its lock as it is, into the store only) and returns the images it publishes
/// with their digests.
fn build_published(
    session: &Session<'_>,
    member: &Member,
) -> Result<Vec<super::pins::Published>, Error> {
    let scratch = tempfile::tempdir().map_err(|source| Error::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let opts = BuildOptions {
        images: member.publishes.iter().map(|(i, _)| i.clone()).collect(),
        locked: true,
        analyse: false,
        ..BuildOptions::new(&member.file, scratch.path().join("out"))
    };
    let built = super::build::build(session, &opts)?;
    let mut out = Vec::new();
    for (image, publish) in &member.publishes {
        let reference: Reference = publish.parse()?;
        let Some(b) = built.images.iter().find(|b| &b.name == image) else {
            continue;
        };
        out.push(super::pins::Published {
            registry: reference.registry,
            repository: reference.repository,
            tag: reference.tag,
            digest: b.top.digest.to_string(),
            by: member.name.clone(),
        });
    }
    Ok(out)
}

/// Runs the tests of every member, in order, in one session, as one run (one JUnit report when
/// the template asks for one).
pub fn test(
    session: &Session<'_>,
    ws: &Workspace,
    template: &super::test::TestOptions,
) -> Result<super::test::TestRun, Error> {
    let session = session_for(session, &ws.dir);
    let started = std::time::Instant::now();
    let mut outcomes = Vec::new();
    for member in ws.with_images() {
        let opts = super::test::TestOptions {
            file: member.file.clone(),
            junit: None,
            ..template.clone()
        };
        outcomes.extend(super::test::test(&session, &opts)?.outcomes);
    }
    if let Some(path) = &template.junit {
        std::fs::write(path, crate::testing::junit::report(&outcomes)).map_err(|e| Error::Io {
            path: path.clone(),
            source: e,
        })?;
    }
    Ok(super::test::TestRun {
        outcomes,
        elapsed: started.elapsed(),
    })
}

/// Matches every member's images against the vulnerability database, in order, as one scan.
pub fn scan(
    session: &Session<'_>,
    ws: &Workspace,
    template: &super::vuln::ScanOptions,
) -> Result<super::vuln::Scanned, Error> {
    let session = session_for(session, &ws.dir);
    let mut reports = Vec::new();
    for member in ws.with_images() {
        let opts = super::vuln::ScanOptions {
            target: member.file.clone(),
            ..template.clone()
        };
        reports.extend(super::vuln::scan(&session, &opts)?.reports);
    }
    Ok(super::vuln::Scanned { reports })
}

/// Where a workspace push sends `image`: its `publish` repository when it declares one (with the
/// publish's tag, else `tag`), else `PREFIX/IMAGE:TAG`.
pub fn destination(
    member: &Member,
    image: &str,
    prefix: &str,
    tag: &str,
) -> Result<Reference, Error> {
    let text = match member.publishes.iter().find(|(i, _)| i == image) {
        Some((_, publish)) => {
            let mut r: Reference = publish.parse()?;
            r.tag.get_or_insert_with(|| tag.to_owned());
            return Ok(r);
        }
        None => format!("{}/{image}:{tag}", prefix.trim_end_matches('/')),
    };
    Ok(text.parse()?)
}

/// Pushes every image of every member to its [`destination`] (the template's layout, reference and
/// image are replaced per image), in order, each with what the template attaches.
pub fn push(
    session: &Session<'_>,
    ws: &Workspace,
    prefix: &str,
    tag: &str,
    template: &super::push::PushOptions,
) -> Result<Vec<(Member, super::push::Pushed)>, Error> {
    let session = session_for(session, &ws.dir);
    let mut out: Vec<(Member, super::push::Pushed)> = Vec::new();
    // Every blob this push has put in (or found in) a repository: later images mount it from
    // there instead of uploading it again (a shared base layer travels once per run).
    let mut known = template.mount_blobs.clone();
    for member in ws.with_images() {
        for image in &member.images {
            let reference = destination(member, image, prefix, tag)?;
            let opts = super::push::PushOptions {
                layout: member.file.clone(),
                image: Some(image.clone()),
                reference: reference.clone(),
                mount_blobs: known.clone(),
                ..template.clone()
            };
            let pushed = super::push::push(&session, &opts)?;
            let r = &pushed.report;
            for d in r.uploaded.iter().chain(&r.skipped).chain(&r.mounted) {
                known
                    .entry(d.clone())
                    .or_insert_with(|| reference.repository.clone());
            }
            out.push((member.clone(), pushed));
        }
    }
    Ok(out)
}

/// Where a workspace promotion sends `image` from its push [`destination`]: `TO/PATH:TAG`, PATH
/// being the image's name, or the repository path of its `publish` (`platform/base`).
pub fn promotion_destination(
    member: &Member,
    image: &str,
    to: &str,
    tag: &str,
) -> Result<Reference, Error> {
    let path = match member.publishes.iter().find(|(i, _)| i == image) {
        Some((_, publish)) => publish.parse::<Reference>()?.repository,
        None => image.to_owned(),
    };
    Ok(format!("{}/{path}:{tag}", to.trim_end_matches('/')).parse()?)
}

/// Promotes every image of every member, in order, from where `himg push DIR FROM` put it to
/// [`promotion_destination`] under `to` (the template's source and destination are replaced per
/// image; its stage, gates and key apply to each). Stops at the first image whose gates fail:
/// what was promoted before it stays promoted.
pub fn promote(
    session: &Session<'_>,
    ws: &Workspace,
    from: &str,
    to: &str,
    tag: &str,
    template: &super::promote::PromoteOptions,
) -> Result<Vec<(Member, super::promote::Promoted)>, Error> {
    let session = session_for(session, &ws.dir);
    let mut out = Vec::new();
    for member in ws.with_images() {
        for image in &member.images {
            let opts = super::promote::PromoteOptions {
                source: destination(member, image, from, tag)?.to_string(),
                destination: promotion_destination(member, image, to, tag)?.to_string(),
                ..template.clone()
            };
            out.push((member.clone(), super::promote::promote(&session, &opts)?));
        }
    }
    Ok(out)
}

/// One member's build within a workspace build.
pub struct MemberBuilt {
    pub member: Member,
    pub built: Built,
}

/// Builds every member that declares images in one session: `template` gives the settings (its
/// `file`, `out` and `images` are replaced per member; output goes to [`member_out`]). Members
/// build on several threads ([`jobs`]), a member only after the members that publish the
/// registry bases it is built on (shared derivations are built once: the store locks each key);
/// `each` then sees every member in workspace order. The first member, in workspace order, that
/// failed is the error (no new member starts once one has failed).
pub fn build(
    session: &Session<'_>,
    ws: &Workspace,
    template: &BuildOptions,
    mut each: impl FnMut(&MemberBuilt) -> Result<(), Error>,
) -> Result<Vec<MemberBuilt>, Error> {
    let session = session_for(session, &ws.dir);
    let members: Vec<&Member> = ws.with_images().collect();
    let build_one = |member: &Member| {
        let opts = BuildOptions {
            file: member.file.clone(),
            out: member_out(&template.out, member),
            images: Vec::new(),
            ..template.clone()
        };
        super::build::build(&session, &opts)
    };
    let results = run_in_order(&members, jobs(), build_one);
    let mut out = Vec::new();
    for (member, result) in members.into_iter().zip(results) {
        let Some(result) = result else {
            continue; // not started: another member failed (its error comes in its turn)
        };
        let done = MemberBuilt {
            member: member.clone(),
            built: result?,
        };
        each(&done)?;
        out.push(done);
    }
    Ok(out)
}

/// How many members build at once: `HIMG_JOBS`, else the number of cores.
fn jobs() -> usize {
    std::env::var("HIMG_JOBS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Runs `work` for every member on up to `jobs` threads, a member after the members it is
/// `built_on`; the results in member order (`None`: not started, because one failed first).
fn run_in_order<T: Send>(
    members: &[&Member],
    jobs: usize,
    work: impl Fn(&Member) -> Result<T, Error> + Sync,
) -> Vec<Option<Result<T, Error>>> {
    struct State {
        started: Vec<bool>,
        done: BTreeSet<String>,
        running: usize,
        failed: bool,
    }
    let state = std::sync::Mutex::new(State {
        started: vec![false; members.len()],
        done: BTreeSet::new(),
        running: 0,
        failed: false,
    });
    let wake = std::sync::Condvar::new();
    let names: BTreeSet<&String> = members.iter().map(|m| &m.name).collect();
    let results: Vec<std::sync::Mutex<Option<Result<T, Error>>>> = members
        .iter()
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    let worker = || {
        loop {
            // Take the first member not started whose bases are built, or wait for one.
            let index = {
                let Ok(mut st) = state.lock() else { return };
                loop {
                    if st.failed || st.started.iter().all(|s| *s) {
                        return;
                    }
                    let ready = (0..members.len()).find(|&i| {
                        !st.started[i]
                            && members[i]
                                .built_on
                                .iter()
                                .all(|b| st.done.contains(b) || !names.contains(b))
                    });
                    // Nothing ready and nothing running: a cycle of published bases (which the
                    // order placed by name): take the next one as it comes, as one thread would.
                    let ready = ready.or_else(|| {
                        (st.running == 0)
                            .then(|| st.started.iter().position(|s| !*s))
                            .flatten()
                    });
                    if let Some(i) = ready {
                        st.started[i] = true;
                        st.running += 1;
                        break i;
                    }
                    st = match wake.wait(st) {
                        Ok(st) => st,
                        Err(_) => return,
                    };
                }
            };
            let result = work(members[index]);
            if let Ok(mut st) = state.lock() {
                if result.is_err() {
                    st.failed = true;
                }
                st.running -= 1;
                st.done.insert(members[index].name.clone());
            }
            if let Ok(mut slot) = results[index].lock() {
                *slot = Some(result);
            }
            wake.notify_all();
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, members.len().max(1)) {
            scope.spawn(worker);
        }
    });
    results
        .into_iter()
        .map(|m| m.into_inner().ok().flatten())
        .collect()
}

/// The report of a workspace build: a row per image (file, image, digest, whether its manifest
/// was built in this run), then each member's own report.
pub fn build_json(dir: &Path, built: &[MemberBuilt]) -> serde_json::Value {
    let mut rows = Vec::new();
    let mut files = Vec::new();
    let mut total = 0;
    for m in built {
        let report = m.built.json();
        total += report["built"].as_u64().unwrap_or(0);
        for img in &m.built.graph.images {
            let digest = report["images"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|i| i["name"] == img.name.as_str())
                .map(|i| i["digest"].clone())
                .unwrap_or_default();
            rows.push(serde_json::json!({
                "file": m.member.name,
                "image": img.name,
                "digest": digest,
                "built": m.built.report.outcomes[img.top.index()] == crate::plan::NodeOutcome::Built,
                "out": m.built.out.display().to_string(),
            }));
        }
        files.push(serde_json::json!({"file": m.member.name, "report": report}));
    }
    serde_json::json!({
        "workspace": dir.display().to_string(),
        "images": rows,
        "built": total,
        "files": files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, images: &[&str]) -> Member {
        Member {
            file: PathBuf::from(name),
            name: name.to_owned(),
            images: images.iter().map(|s| (*s).to_owned()).collect(),
            imports: Vec::new(),
            publishes: Vec::new(),
            registry_bases: Vec::new(),
            built_on: Vec::new(),
        }
    }

    #[test]
    fn a_file_comes_after_the_file_that_publishes_its_registry_base() {
        let mut base = member("z-base.himg", &["base"]);
        base.publishes = vec![("base".into(), "127.0.0.1:5000/platform/base:stable".into())];
        let mut app = member("app.himg", &["app"]);
        app.registry_bases = vec![format!(
            "127.0.0.1:5000/platform/base:stable@sha256:{}",
            "0".repeat(64)
        )];
        let mut other = member("other.himg", &["other"]);
        other.registry_bases = vec![format!(
            "127.0.0.1:5000/platform/base:edge@sha256:{}",
            "0".repeat(64)
        )];
        let mut members: BTreeMap<String, Member> = [base, app, other]
            .into_iter()
            .map(|m| (m.name.clone(), m))
            .collect();
        link_published_bases(&mut members);
        let order: Vec<String> = ordered(members).into_iter().map(|m| m.name).collect();
        // `other` pins another tag than the one published: not built on it.
        assert_eq!(order, ["other.himg", "z-base.himg", "app.himg"]);
    }

    #[test]
    fn members_run_after_their_published_bases_and_report_in_order() {
        let mut base = member("z-base.himg", &["base"]);
        base.publishes = vec![("base".into(), "127.0.0.1:5000/platform/base".into())];
        let mut app = member("app.himg", &["app"]);
        app.built_on = vec!["z-base.himg".into()];
        let other = member("other.himg", &["other"]);
        let members = [&base, &app, &other];
        let finished = std::sync::Mutex::new(Vec::new());
        for jobs in [1, 2, 3] {
            finished.lock().expect("lock").clear();
            let results = run_in_order(&members, jobs, |m| {
                finished.lock().expect("lock").push(m.name.clone());
                Ok(m.name.len())
            });
            let order = finished.lock().expect("lock").clone();
            let pos = |n: &str| order.iter().position(|x| x == n).expect("ran");
            assert!(pos("z-base.himg") < pos("app.himg"), "{order:?}");
            let lens: Vec<usize> = results
                .into_iter()
                .map(|r| r.expect("ran").expect("ok"))
                .collect();
            assert_eq!(lens, [11, 8, 10]);
        }
        // A failure stops new members; its error is in its place.
        let results = run_in_order(&members, 1, |m| {
            if m.name == "z-base.himg" {
                Err(Error::Workspace {
                    dir: PathBuf::from("ws"),
                    problem: "boom".into(),
                })
            } else {
                Ok(0)
            }
        });
        assert!(matches!(results[0], Some(Err(_))));
        assert!(results[1].is_none() && results[2].is_none());
    }

    #[test]
    fn shards_take_the_members_with_images_in_turn_and_keep_libraries() {
        let ws = Workspace {
            dir: PathBuf::from("ws"),
            members: vec![
                member("common.himg", &[]),
                member("a.himg", &["a"]),
                member("b.himg", &["b"]),
                member("c.himg", &["c"]),
            ],
        };
        let names = |ws: &Workspace, s: &str| -> Vec<String> {
            let shard: Shard = s.parse().expect("shard");
            ws.shard(shard)
                .members
                .into_iter()
                .map(|m| m.name)
                .collect()
        };
        assert_eq!(names(&ws, "1/2"), ["common.himg", "a.himg", "c.himg"]);
        assert_eq!(names(&ws, "2/2"), ["common.himg", "b.himg"]);
        assert_eq!(
            names(&ws, "1/1"),
            ["common.himg", "a.himg", "b.himg", "c.himg"]
        );
        // A member that publishes a base others are built on is in every shard (and takes no
        // turn: b goes to shard 1, c to shard 2).
        let mut ws = ws;
        ws.members[1].publishes = vec![("a".into(), "127.0.0.1:5000/platform/a".into())];
        ws.members[3].built_on = vec!["a.himg".into()];
        assert_eq!(names(&ws, "1/2"), ["common.himg", "a.himg", "b.himg"]);
        assert_eq!(names(&ws, "2/2"), ["common.himg", "a.himg", "c.himg"]);
        for bad in ["0/2", "3/2", "1", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
