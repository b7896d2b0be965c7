//! Reading the regular files of one image by path: the [`FileContents`] trait the SBOM and policy
//! code read through, and [`RootfsContents`], which unpacks the image's root filesystem once into a
//! temporary directory (one pass over the layers instead of one per file).

use std::cell::OnceCell;
use std::collections::BTreeMap;

use super::{FileKind, ImageSource, ImageView};

/// Reads a regular file's bytes out of an image (`path` spelled as in [`ImageView::files`]).
pub trait FileContents {
    fn read(&self, path: &str) -> Option<Vec<u8>>;
}

impl FileContents for BTreeMap<String, Vec<u8>> {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.get(path).cloned()
    }
}

/// The files of one image of an opened source, read from its unpacked root filesystem (made on the
/// first read), else from the layers.
pub struct RootfsContents<'a> {
    source: &'a ImageSource,
    view: &'a ImageView,
    rootfs: OnceCell<Option<tempfile::TempDir>>,
}

impl<'a> RootfsContents<'a> {
    pub fn new(source: &'a ImageSource, view: &'a ImageView) -> Self {
        RootfsContents {
            source,
            view,
            rootfs: OnceCell::new(),
        }
    }
}

impl FileContents for RootfsContents<'_> {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        let key = path.trim_start_matches('/');
        let entry = self.view.files.get(key)?;
        let rootfs = self.rootfs.get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("himg-rootfs-")
                .tempdir()
                .ok()?;
            let dest = dir.path().join("rootfs");
            self.source.extract_rootfs(self.view, &dest).ok()?;
            Some(dir)
        });
        if let Some(dir) = rootfs
            && entry.kind == FileKind::File
            && let Ok(bytes) = std::fs::read(dir.path().join("rootfs").join(key))
            && bytes.len() as u64 == entry.size
        {
            return Some(bytes);
        }
        self.source.read_file(self.view, key).ok().flatten()
    }
}
