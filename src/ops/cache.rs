//! Binary caches: pushing a build's outputs and the closures a push sends, serving a cache over
//! HTTP, and the token hashes its users hold (keys: [`super::keys`]).

use std::collections::BTreeMap;

use himg_store::{B3Digest, OutputRecord, Store};

use super::config::{CacheOptions, backend_options, signing_key};
use super::{Error, Session};
use crate::cache::substitute::{self, PushReport};
use crate::cache::{Backend, open_backend};
use crate::printer::Printer;

/// Pushes `outputs` to `url` and reports what was sent.
pub fn push_outputs(
    store: &Store,
    url: &str,
    args: &CacheOptions,
    outputs: &BTreeMap<B3Digest, OutputRecord>,
    printer: &Printer,
) -> Result<PushReport, Error> {
    let key = signing_key(args)?;
    let backend: Box<dyn Backend> = open_backend(url, &backend_options(args))?;
    let report = substitute::push(store, backend.as_ref(), &key, outputs)?;
    printer.status(
        "Pushed",
        &format!(
            "{} entries ({} already there), {} to {url}",
            report.pushed,
            report.skipped,
            crate::printer::size(report.bytes)
        ),
    );
    Ok(report)
}

/// Every output the GC roots reach (through the outputs each was built from), by derivation key.
pub fn roots_closure(store: &Store) -> Result<BTreeMap<B3Digest, OutputRecord>, Error> {
    let mut out = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut stack: Vec<himg_store::OutputPath> =
        store.roots()?.into_iter().flat_map(|r| r.outputs).collect();
    while let Some(path) = stack.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let Some(rec) = store.lookup_output(&path)? else {
            continue;
        };
        stack.extend(rec.refs_outputs.iter().cloned());
        for key in store.keys_of_output(&path)? {
            out.insert(key, rec.clone());
        }
    }
    Ok(out)
}

/// What `cache push` sends: the outputs of `files`' images, or of every root.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// The cache: `file://DIR`, `http(s)://HOST/PATH` or `oci://REGISTRY/REPO`.
    pub url: String,
    /// `.himg` files whose images' closures (as far as the store has them) are pushed.
    pub files: Vec<std::path::PathBuf>,
    /// Also push the closure of every GC root.
    pub roots: bool,
    pub cache: CacheOptions,
}

/// Pushes the closures `opts` names to its cache.
pub fn push(session: &Session<'_>, opts: &PushOptions) -> Result<PushReport, Error> {
    let store = session.open_store()?;
    let _guard = store.build_guard()?;
    let mut outputs = BTreeMap::new();
    for f in &opts.files {
        outputs.extend(super::compile::closure_of(session, f, &store)?);
    }
    if opts.roots {
        outputs.extend(roots_closure(&store)?);
    }
    push_outputs(&store, &opts.url, &opts.cache, &outputs, session.printer())
}

/// How `serve` runs a cache server.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Where the cache keeps its files (default: `<store>/cache-server`).
    pub dir: Option<std::path::PathBuf>,
    /// The tokens file; without it, anyone who can connect may read and push.
    pub tokens: Option<std::path::PathBuf>,
    /// Delete entries not read or written for this many days.
    pub retention_days: Option<u64>,
}

/// Serves a binary cache over HTTP until the process ends.
pub fn serve(session: &Session<'_>, opts: &ServeOptions) -> Result<(), Error> {
    let printer = session.printer();
    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None => session.open_store()?.root().join("cache-server"),
    };
    let tokens = match &opts.tokens {
        Some(p) => crate::cache::server::TokenSource::file(p)?,
        None => {
            printer.warn("no --tokens file: anyone who can connect may read and push");
            crate::cache::server::TokenSource::open()
        }
    };
    let warn = |m: &str| printer.warn(m);
    let info = |m: &str| printer.status("Serving", m);
    crate::cache::server::serve(&crate::cache::server::ServeOptions {
        listen: &opts.listen,
        dir: &dir,
        tokens: &tokens,
        retention: opts
            .retention_days
            .map(|d| std::time::Duration::from_secs(d * 86_400)),
        warn: &warn,
        info: &info,
    })?;
    Ok(())
}

/// The sha256 a tokens file holds for `token`.
pub fn hash_token(token: &str) -> String {
    crate::cache::server::hash_token(token)
}
