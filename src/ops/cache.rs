//! Pushing a build's outputs to a binary cache, and the closures a push sends.

use std::collections::BTreeMap;

use himg_store::{B3Digest, OutputRecord, Store};

use super::Error;
use super::config::{CacheOptions, backend_options, signing_key};
use crate::cache::substitute::{PushReport, push};
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
    let report = push(store, backend.as_ref(), &key, outputs)?;
    printer.status(
        "Pushed",
        &format!(
            "{} entries ({} already there), {:.1} KiB to {url}",
            report.pushed,
            report.skipped,
            report.bytes as f64 / 1024.0
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
