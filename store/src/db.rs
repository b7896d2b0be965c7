//! The SQLite metadata database: connection pool, pragmas, schema and migrations.
//!
//! One connection per concurrently active thread, kept in a small pool: WAL mode lets readers
//! run in parallel with each other and with one writer, across threads and processes. Every
//! write transaction is `BEGIN IMMEDIATE`, so it waits for the write lock (up to the busy
//! timeout) instead of failing half-way with `SQLITE_BUSY` when upgrading from a read.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior};

use crate::error::StoreError;

/// How long a statement waits for another connection's lock before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 16;

/// Migrations, indexed by the version they upgrade *from*: `MIGRATIONS[0]` makes version 1.
/// Append only; never edit a released entry.
const MIGRATIONS: &[&str] = &[
    // 0 → 1
    r#"
    CREATE TABLE outputs (
        path    TEXT PRIMARY KEY NOT NULL,
        content TEXT NOT NULL,
        size    INTEGER NOT NULL,
        meta    TEXT NOT NULL,
        created INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE output_refs (
        path     TEXT NOT NULL REFERENCES outputs(path) ON DELETE CASCADE,
        ref_kind TEXT NOT NULL CHECK (ref_kind IN ('output', 'object')),
        ref      TEXT NOT NULL,
        PRIMARY KEY (path, ref_kind, ref)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX output_refs_by_ref ON output_refs(ref_kind, ref);
    CREATE TABLE derivations (
        key    TEXT PRIMARY KEY NOT NULL,
        output TEXT NOT NULL REFERENCES outputs(path) ON DELETE CASCADE
    ) STRICT;
    CREATE INDEX derivations_by_output ON derivations(output);
    CREATE TABLE layers (
        tree        TEXT NOT NULL,
        compression TEXT NOT NULL,
        diff_id     TEXT NOT NULL,
        digest      TEXT NOT NULL,
        size        INTEGER NOT NULL,
        PRIMARY KEY (tree, compression)
    ) STRICT;
    CREATE TABLE roots (
        name    TEXT PRIMARY KEY NOT NULL,
        created INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE root_outputs (
        name TEXT NOT NULL REFERENCES roots(name) ON DELETE CASCADE,
        path TEXT NOT NULL REFERENCES outputs(path) ON DELETE CASCADE,
        PRIMARY KEY (name, path)
    ) STRICT;
    CREATE INDEX root_outputs_by_path ON root_outputs(path);
    CREATE TABLE file_hashes (
        path     TEXT PRIMARY KEY NOT NULL,
        size     INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        ctime_ns INTEGER NOT NULL,
        ino      INTEGER NOT NULL,
        dev      INTEGER NOT NULL,
        blob     TEXT NOT NULL
    ) STRICT;
    "#,
    // 1 → 2: objects whose bytes were re-hashed, by file version (see `Store::check_objects`).
    r#"
    CREATE TABLE checked_objects (
        object   TEXT PRIMARY KEY NOT NULL,
        size     INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        ino      INTEGER NOT NULL,
        dev      INTEGER NOT NULL
    ) STRICT;
    "#,
];

/// The schema version this build creates and understands.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Opens one connection with the store's pragmas.
fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // In WAL mode NORMAL never corrupts the database; a power cut may lose the last commits,
    // which only forgets cache entries. gc and repair switch to FULL around their deletions.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Retries `f` while SQLite reports the database busy or locked; some operations (changing
/// the journal mode) return `SQLITE_BUSY` without calling the busy handler.
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let start = Instant::now();
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                    && start.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Puts the database in WAL mode and brings the schema up to [`SCHEMA_VERSION`].
fn initialise(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let mode: String = retry_busy(|| conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)))?;
    if !mode.eq_ignore_ascii_case("wal") {
        retry_busy(|| conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)))?;
    }
    // Fast path: already current, no write lock needed.
    if let Some(v) = read_version(conn)? {
        if v == SCHEMA_VERSION {
            return Ok(());
        }
        check_version(v, path)?;
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT",
    )?;
    let current: Option<i64> = tx
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .optional()?;
    let current = match current {
        Some(v) => v,
        None => {
            tx.execute("INSERT INTO schema_version (version) VALUES (0)", [])?;
            0
        }
    };
    check_version(current, path)?;
    let from = usize::try_from(current).unwrap_or(0);
    for migration in &MIGRATIONS[from..] {
        tx.execute_batch(migration)?;
    }
    tx.execute("UPDATE schema_version SET version = ?1", [SCHEMA_VERSION])?;
    tx.commit()?;
    Ok(())
}

fn read_version(conn: &Connection) -> Result<Option<i64>, StoreError> {
    let has_table: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version')",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(None);
    }
    Ok(conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .optional()?)
}

fn check_version(found: i64, path: &Path) -> Result<(), StoreError> {
    if !(0..=SCHEMA_VERSION).contains(&found) {
        return Err(StoreError::IncompatibleVersion {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// A pool of connections to one database file. `Send + Sync`.
pub(crate) struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Serialises write transactions within this process. SQLite allows one writer at a time and
    /// makes the others wait in its busy handler, which sleeps (1, 2, 5, 10 … ms); a mutex hands the
    /// write lock over without sleeping. Other processes still meet SQLite's own locking.
    writer: Mutex<()>,
}

impl Pool {
    /// Opens the database, migrating it if needed, and keeps that first connection.
    pub(crate) fn open(path: &Path) -> Result<Pool, StoreError> {
        let mut conn = open_connection(path)?;
        initialise(&mut conn, path)?;
        Ok(Pool {
            path: path.to_owned(),
            idle: Mutex::new(vec![conn]),
            writer: Mutex::new(()),
        })
    }

    /// A connection for this thread, returned to the pool on drop.
    pub(crate) fn get(&self) -> Result<PooledConn<'_>, StoreError> {
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match reused {
            Some(c) => c,
            None => open_connection(&self.path)?,
        };
        Ok(PooledConn {
            pool: self,
            conn: Some(conn),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// A connection borrowed from a [`Pool`].
pub(crate) struct PooledConn<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
}

impl<'p> PooledConn<'p> {
    /// Begins a `BEGIN IMMEDIATE` write transaction, holding the process's writer mutex until it
    /// commits or rolls back.
    pub(crate) fn write_tx(&mut self) -> Result<WriteTx<'_, 'p>, StoreError> {
        let guard = self
            .pool
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let tx = self.transaction_with_behavior(TransactionBehavior::Immediate)?;
        Ok(WriteTx { tx, _guard: guard })
    }
}

/// A write transaction that keeps this process's other writers waiting on a mutex, not in SQLite's
/// sleeping busy handler.
pub(crate) struct WriteTx<'c, 'p> {
    tx: rusqlite::Transaction<'c>,
    _guard: std::sync::MutexGuard<'p, ()>,
}

impl WriteTx<'_, '_> {
    pub(crate) fn commit(self) -> Result<(), rusqlite::Error> {
        self.tx.commit()
    }
}

impl<'c> Deref for WriteTx<'c, '_> {
    type Target = rusqlite::Transaction<'c>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl Deref for PooledConn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Only `drop` takes the connection out.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl DerefMut for PooledConn<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for PooledConn<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // A connection left inside a transaction (cannot normally happen: Transaction rolls
            // back on drop) is not reused.
            if !conn.is_autocommit() {
                return;
            }
            let mut idle = self
                .pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
    }
}
