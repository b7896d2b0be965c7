//! The local vulnerability database: advisories in SQLite, one replaceable set of rows per source,
//! and a content version (a hash of every source's rows) that scan results are cached under.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{Advisory, Imported, VulnError};

/// The schema this himg writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// The file name of the database under the store root.
pub const FILE_NAME: &str = "vulndb.sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY,
    location TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    records INTEGER NOT NULL,
    content TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS advisories (
    source TEXT NOT NULL,
    release TEXT NOT NULL,
    package TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS advisories_by_package ON advisories (release, package);
CREATE INDEX IF NOT EXISTS advisories_by_source ON advisories (source);
";

/// An open vulnerability database.
pub struct VulnDb {
    path: PathBuf,
    conn: Connection,
}

impl std::fmt::Debug for VulnDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VulnDb").field("path", &self.path).finish()
    }
}

/// What `himg vulndb status` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbStatus {
    pub path: PathBuf,
    /// Hash of every source's contents; changes exactly when the advisories change.
    pub version: String,
    pub records: u64,
    pub sources: Vec<SourceStatus>,
}

/// One imported source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceStatus {
    pub name: String,
    /// The file or URL it was imported from.
    pub location: String,
    /// RFC 3339 UTC.
    pub imported_at: String,
    pub records: u64,
    /// blake3 of the source's rows.
    pub content: String,
}

impl VulnDb {
    /// Opens (creating when missing) the database at `path`.
    pub fn open(path: &Path) -> Result<VulnDb, VulnError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| VulnError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let sql = |source| VulnError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        let found: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql)?;
        match found {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                    params![SCHEMA_VERSION.to_string()],
                )
                .map_err(sql)?;
            }
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(v) => {
                return Err(VulnError::Schema {
                    path: path.to_path_buf(),
                    found: v,
                    expected: SCHEMA_VERSION,
                });
            }
        }
        Ok(VulnDb {
            path: path.to_path_buf(),
            conn,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self, source: rusqlite::Error) -> VulnError {
        VulnError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Replaces every source `imported` holds, in one transaction: readers see the old rows or the
    /// new ones, never a mix. Returns (source, records) per replaced source.
    pub fn replace(
        &mut self,
        imported: &Imported,
        location: &str,
        imported_at: &str,
    ) -> Result<Vec<(String, u64)>, VulnError> {
        let path = self.path.clone();
        let sql = |source| VulnError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        let mut done = Vec::new();
        for (name, rows) in &imported.sources {
            tx.execute("DELETE FROM advisories WHERE source = ?1", params![name])
                .map_err(sql)?;
            let mut encoded: Vec<(&Advisory, String)> = rows
                .iter()
                .map(|a| (a, serde_json::to_string(a).unwrap_or_default()))
                .collect();
            encoded.sort_by(|a, b| a.1.cmp(&b.1));
            encoded.dedup_by(|a, b| a.1 == b.1);
            let mut hasher = blake3::Hasher::new();
            {
                let mut stmt = tx
                    .prepare(
                        "INSERT INTO advisories (source, release, package, id, data)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .map_err(sql)?;
                for (a, json) in &encoded {
                    hasher.update(json.as_bytes());
                    hasher.update(b"\n");
                    stmt.execute(params![name, a.release, a.package, a.id, json])
                        .map_err(sql)?;
                }
            }
            let count = encoded.len() as u64;
            tx.execute(
                "INSERT OR REPLACE INTO sources (name, location, imported_at, records, content)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    name,
                    location,
                    imported_at,
                    count as i64,
                    hasher.finalize().to_hex().to_string()
                ],
            )
            .map_err(sql)?;
            done.push((name.clone(), count));
        }
        tx.commit().map_err(sql)?;
        Ok(done)
    }

    /// The sources and the database version.
    pub fn status(&self) -> Result<DbStatus, VulnError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, location, imported_at, records, content FROM sources ORDER BY name",
            )
            .map_err(|e| self.sql(e))?;
        let sources = stmt
            .query_map([], |r| {
                Ok(SourceStatus {
                    name: r.get(0)?,
                    location: r.get(1)?,
                    imported_at: r.get(2)?,
                    records: r.get::<_, i64>(3)?.max(0) as u64,
                    content: r.get(4)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(format!("himg-vulndb-v{SCHEMA_VERSION}\n").as_bytes());
        for s in &sources {
            hasher.update(format!("{} {}\n", s.name, s.content).as_bytes());
        }
        let version = hasher.finalize().to_hex()[..16].to_string();
        Ok(DbStatus {
            path: self.path.clone(),
            version,
            records: sources.iter().map(|s| s.records).sum(),
            sources,
        })
    }

    /// Every advisory about source package `package` in release `release`, ordered by id and source.
    pub fn advisories(&self, release: &str, package: &str) -> Result<Vec<Advisory>, VulnError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT data FROM advisories WHERE release = ?1 AND package = ?2
                 ORDER BY id, source, data",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![release, package], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        rows.iter()
            .map(|json| {
                serde_json::from_str(json).map_err(|e| VulnError::Format {
                    what: self.path.display().to_string(),
                    message: format!("a stored advisory does not parse: {e}"),
                })
            })
            .collect()
    }

    /// The releases any advisory names, sorted.
    pub fn releases(&self) -> Result<Vec<String>, VulnError> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT release FROM advisories ORDER BY release")
            .map_err(|e| self.sql(e))?;
        stmt.query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vuln::import::import_bytes;

    #[test]
    fn replace_is_per_source_and_versioned() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = VulnDb::open(&dir.path().join("v.sqlite")).unwrap();
        let empty = db.status().unwrap().version;
        let t = import_bytes(
            "t",
            br#"{"zlib": {"CVE-1": {"releases": {"bookworm": {"status": "open", "urgency": "low"}}}}}"#,
        )
        .unwrap();
        db.replace(&t, "t.json", "2026-01-01T00:00:00Z").unwrap();
        let v1 = db.status().unwrap();
        assert_ne!(v1.version, empty);
        assert_eq!(v1.records, 1);
        assert_eq!(db.advisories("bookworm", "zlib").unwrap().len(), 1);
        // The same contents imported later: same version.
        db.replace(&t, "t.json", "2026-01-02T00:00:00Z").unwrap();
        assert_eq!(db.status().unwrap().version, v1.version);
        // New contents replace the old rows.
        let t2 = import_bytes("t", br#"{"zlib": {}}"#).unwrap();
        db.replace(&t2, "t.json", "2026-01-03T00:00:00Z").unwrap();
        assert!(db.advisories("bookworm", "zlib").unwrap().is_empty());
        assert_ne!(db.status().unwrap().version, v1.version);
    }
}
