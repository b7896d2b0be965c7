//! Temporary paths removed when himg is interrupted (SIGINT, SIGTERM), so Ctrl-C never leaves
//! half-written files behind.
//!
//! Code that creates a temporary file or directory registers it ([`create_file`], [`guard`]) and
//! keeps the returned [`TempGuard`] while the path is temporary; dropping the guard forgets the
//! path (it was renamed into place, or removed by its owner). The first registration starts one
//! thread that waits for SIGINT or SIGTERM through `signal-hook`'s `Signals` (the signal handler
//! itself only writes to a pipe; the cleanup runs in that ordinary thread, where removing files is
//! safe), removes every registered path, then lets the signal take its default action so the exit
//! status still says which signal ended the process. `Drop` alone cannot do this: a signal's
//! default action ends the process without running destructors. Processes that never register a
//! path keep the default signal behaviour. What a `SIGKILL` leaves is removed by the next run of
//! whoever owns the directory (e.g. an OCI layout's `.tmp-*` files, the store's `tmp/`).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The registered temporary paths, by registration number.
struct Registry {
    next: u64,
    paths: BTreeMap<u64, PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 0,
    paths: BTreeMap::new(),
});

/// Set once the signal thread runs (or could not be started).
static LISTENER: OnceLock<()> = OnceLock::new();

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps a temporary path registered for removal on SIGINT/SIGTERM; forgets it when dropped.
#[must_use = "the path is only removed on interruption while the guard lives"]
#[derive(Debug)]
pub struct TempGuard {
    id: u64,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        registry().paths.remove(&self.id);
    }
}

fn register(registry: &mut Registry, path: &Path) -> TempGuard {
    let id = registry.next;
    registry.next += 1;
    registry.paths.insert(id, path.to_owned());
    TempGuard { id }
}

/// Registers an existing temporary file or directory (a directory is removed with its contents).
pub fn guard(path: &Path) -> TempGuard {
    listen();
    register(&mut registry(), path)
}

/// Creates (truncating) the temporary file `path`, registered before it exists: an interruption at
/// any moment leaves no file behind.
pub fn create_file(path: &Path) -> io::Result<(fs::File, TempGuard)> {
    listen();
    let mut registry = registry();
    let guard = register(&mut registry, path);
    // Created under the lock: the signal thread holds it while removing, so no file appears after.
    let file = fs::File::create(path)?;
    Ok((file, guard))
}

/// Starts the signal thread once. Without it (the OS refused a pipe or a thread) interruption
/// falls back to the default action and the next run's leftover cleanup.
fn listen() {
    LISTENER.get_or_init(|| {
        let Ok(mut signals) = Signals::new([SIGINT, SIGTERM]) else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("himg-interrupt".into())
            .spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    // The lock stays held until the process ends: nothing is registered or created
                    // after the cleanup.
                    let registry = registry();
                    remove_all(registry.paths.values());
                    let _ = signal_hook::low_level::emulate_default_handler(signal);
                    std::process::exit(128 + signal);
                }
            });
        drop(spawned);
    });
}

fn remove_all<'p>(paths: impl Iterator<Item = &'p PathBuf>) {
    for path in paths {
        let _ = match fs::symlink_metadata(path) {
            Ok(md) if md.is_dir() => fs::remove_dir_all(path),
            Ok(_) => fs::remove_file(path),
            Err(_) => Ok(()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_registers_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".tmp-x");
        let (_, guard) = create_file(&file).unwrap();
        assert!(registry().paths.values().any(|p| *p == file));
        drop(guard);
        assert!(!registry().paths.values().any(|p| *p == file));
    }

    #[test]
    fn removal_takes_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        let sub = dir.path().join("d");
        fs::write(&file, b"x").unwrap();
        fs::create_dir_all(sub.join("inner")).unwrap();
        fs::write(sub.join("inner/g"), b"y").unwrap();
        let paths = [file.clone(), sub.clone(), dir.path().join("missing")];
        remove_all(paths.iter());
        assert!(!file.exists() && !sub.exists());
    }
}
