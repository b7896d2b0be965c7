//! `file://DIR`: a cache in a directory (local disk, NFS, a CI cache directory).
//!
//! Layout: `DIR/entries/<key hex>.json`, `DIR/archives/<sha256 hex>.zst`, `DIR/tmp/`. Files are
//! written to `tmp/` and renamed into place, so readers never see a partial file.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use himg_store::{B3Digest, Sha256Digest};

use super::CacheError;
use super::backend::{Backend, archive_path, entry_path};
use super::entry::ENTRY_LIMIT;

/// A cache directory.
#[derive(Debug)]
pub struct FileBackend {
    url: String,
    dir: PathBuf,
    seq: AtomicU64,
}

impl FileBackend {
    pub fn new(url: &str, dir: &Path) -> FileBackend {
        FileBackend {
            url: url.to_owned(),
            dir: dir.to_owned(),
            seq: AtomicU64::new(0),
        }
    }

    /// The file at `rel` inside the cache.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Writes `rel` atomically from `fill`.
    pub fn write_with(
        &self,
        rel: &str,
        fill: impl FnOnce(&mut fs::File) -> io::Result<()>,
    ) -> Result<(), CacheError> {
        let dest = self.path(rel);
        let tmp_dir = self.dir.join("tmp");
        for d in [tmp_dir.as_path(), dest.parent().unwrap_or(&self.dir)] {
            fs::create_dir_all(d).map_err(|e| CacheError::io(d.display(), e))?;
        }
        let tmp = tmp_dir.join(format!(
            "{}.{}.{}",
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed),
            rel.replace('/', "_")
        ));
        let result = (|| {
            let mut f = fs::File::create(&tmp)?;
            fill(&mut f)?;
            f.sync_all()?;
            fs::rename(&tmp, &dest)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(CacheError::io(dest.display(), e));
        }
        Ok(())
    }
}

/// Copies the cache file `f` (at `path`) into `out` if it is a regular file of at most `limit`
/// bytes: a device (a link to `/dev/zero`), a FIFO or a directory is refused before anything is
/// read, and never more than `limit + 1` bytes are copied even if the file grows meanwhile.
fn read_regular(
    path: &Path,
    f: fs::File,
    limit: u64,
    out: &mut dyn Write,
) -> Result<u64, CacheError> {
    let refused = |message: String| CacheError::Backend {
        cache: path.display().to_string(),
        message,
    };
    let meta = f
        .metadata()
        .map_err(|e| CacheError::io(path.display(), e))?;
    if !meta.is_file() {
        return Err(refused("not a regular file".into()));
    }
    if meta.len() > limit {
        return Err(refused(format!(
            "{} bytes, more than the {limit} bytes expected",
            meta.len()
        )));
    }
    io::copy(&mut io::Read::take(f, limit.saturating_add(1)), out)
        .map_err(|e| CacheError::io(path.display(), e))
}

impl Backend for FileBackend {
    fn url(&self) -> &str {
        &self.url
    }

    fn get_entry(&self, key: &B3Digest) -> Result<Option<Vec<u8>>, CacheError> {
        let p = self.path(&entry_path(key));
        let f = match fs::File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CacheError::io(p.display(), e)),
        };
        let mut buf = Vec::new();
        read_regular(&p, f, ENTRY_LIMIT, &mut buf)?;
        Ok(Some(buf))
    }

    fn has_entry(&self, key: &B3Digest) -> Result<bool, CacheError> {
        Ok(self.path(&entry_path(key)).exists())
    }

    fn has_archive(&self, hash: &Sha256Digest) -> Result<bool, CacheError> {
        Ok(self.path(&archive_path(hash)).exists())
    }

    fn get_archive(
        &self,
        hash: &Sha256Digest,
        size: u64,
        out: &mut dyn Write,
    ) -> Result<u64, CacheError> {
        let p = self.path(&archive_path(hash));
        let f = fs::File::open(&p).map_err(|e| CacheError::io(p.display(), e))?;
        read_regular(&p, f, size, out)
    }

    fn put_archive(&self, hash: &Sha256Digest, _size: u64, file: &Path) -> Result<(), CacheError> {
        self.write_with(&archive_path(hash), |f| {
            let mut src = fs::File::open(file)?;
            io::copy(&mut src, f).map(|_| ())
        })
    }

    fn put_entry(
        &self,
        key: &B3Digest,
        entry: &[u8],
        _archive: (&Sha256Digest, u64),
    ) -> Result<(), CacheError> {
        self.write_with(&entry_path(key), |f| f.write_all(entry))
    }
}
