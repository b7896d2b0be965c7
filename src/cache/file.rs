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

impl Backend for FileBackend {
    fn url(&self) -> &str {
        &self.url
    }

    fn get_entry(&self, key: &B3Digest) -> Result<Option<Vec<u8>>, CacheError> {
        let p = self.path(&entry_path(key));
        match fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CacheError::io(p.display(), e)),
        }
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
        _size: u64,
        out: &mut dyn Write,
    ) -> Result<u64, CacheError> {
        let p = self.path(&archive_path(hash));
        let mut f = fs::File::open(&p).map_err(|e| CacheError::io(p.display(), e))?;
        io::copy(&mut f, out).map_err(|e| CacheError::io(p.display(), e))
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
