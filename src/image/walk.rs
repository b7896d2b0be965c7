//! Streams one layer blob: decompresses it (by media type), walks its tar entries as normalised
//! [`RawEntry`] values, and — when the walk reaches the end — checks the blob digest, its size and
//! the uncompressed `diff_id`.

use std::io::{self, BufReader, Read};

use super::blobs::{Blobs, Shared};
use super::error::ImageError;
use super::model::LayerView;

/// The OCI whiteout prefix and the opaque-directory marker.
const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// One tar entry, its path normalised (relative, no `.`/empty components, no `..`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct RawEntry {
    pub path: String,
    pub kind: RawKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
}

/// What a tar entry does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum RawKind {
    File,
    Dir,
    Symlink(String),
    /// Target normalised like paths.
    Hardlink(String),
    CharDevice,
    BlockDevice,
    Fifo,
    /// `.wh.NAME`: `path` is the deleted path.
    Whiteout,
    /// `.wh..wh..opq`: `path` is the directory whose lower content is hidden (`""` = the root).
    Opaque,
}

/// Whether to keep walking a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// Stop now; the blob's digest is then not checked (the caller checks what it read).
    Stop,
}

/// The compression of a layer media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

fn compression(layer: &LayerView) -> Result<Compression, ImageError> {
    let mt = layer.media_type.as_str();
    let base = mt
        .strip_prefix("application/vnd.oci.image.layer.v1.")
        .or_else(|| mt.strip_prefix("application/vnd.oci.image.layer.nondistributable.v1."))
        .or_else(|| mt.strip_prefix("application/vnd.docker.image.rootfs.diff."))
        .or_else(|| mt.strip_prefix("application/vnd.docker.image.rootfs.foreign.diff."));
    match base {
        Some("tar") => Ok(Compression::None),
        Some("tar+gzip" | "tar.gzip") => Ok(Compression::Gzip),
        Some("tar+zstd" | "tar.zstd") => Ok(Compression::Zstd),
        _ => Err(ImageError::UnsupportedMediaType {
            digest: layer.digest.clone(),
            media_type: layer.media_type.clone(),
        }),
    }
}

/// Walks the entries of `layer`, calling `visit` with each entry and a reader of its content.
/// Returns `true` when the walk reached the end (and the digests were verified).
pub(crate) fn walk_layer(
    blobs: &Blobs,
    layer: &LayerView,
    visit: &mut dyn FnMut(RawEntry, &mut dyn Read) -> Result<Flow, ImageError>,
) -> Result<bool, ImageError> {
    let comp = compression(layer)?;
    let (reader, len) = blobs.open(&layer.digest)?;
    if len != layer.size {
        return Err(ImageError::BlobSizeMismatch {
            digest: layer.digest.clone(),
            expected: layer.size,
            actual: len,
            container: blobs.origin().to_owned(),
        });
    }
    let read_err = |source: io::Error| ImageError::LayerRead {
        digest: layer.digest.clone(),
        source,
    };
    let raw = Shared::new(reader);
    let decoded: Box<dyn Read> = match comp {
        Compression::None => Box::new(raw.clone()),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            128 * 1024,
            raw.clone(),
        ))),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(raw.clone()).map_err(read_err)?)
        }
    };
    let plain = Shared::new(decoded);
    let mut archive = tar::Archive::new(plain.clone());
    let walked = (|| {
        for entry in archive.entries().map_err(read_err)? {
            let mut entry = entry.map_err(read_err)?;
            let Some(raw_entry) = to_raw(&entry, &layer.digest)? else {
                continue;
            };
            if visit(raw_entry, &mut entry)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        plain.finish().map_err(read_err).map(|_| Flow::Continue)
    })();
    match walked {
        Ok(Flow::Stop) => return Ok(false),
        Ok(Flow::Continue) => {}
        // A stream that cannot be decoded is most likely a tampered blob: say so when it is.
        Err(
            e @ (ImageError::LayerRead { .. }
            | ImageError::UnsafePath { .. }
            | ImageError::UnsupportedEntry { .. }),
        ) => {
            if let Ok((digest, _)) = raw.finish()
                && digest != layer.digest
            {
                return Err(ImageError::BlobDigestMismatch {
                    digest: layer.digest.clone(),
                    actual: digest,
                    container: blobs.origin().to_owned(),
                });
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    }
    drop(archive);
    let (diff_id, _) = plain.finish().map_err(read_err)?;
    let (digest, count) = raw.finish().map_err(read_err)?;
    if digest != layer.digest {
        return Err(ImageError::BlobDigestMismatch {
            digest: layer.digest.clone(),
            actual: digest,
            container: blobs.origin().to_owned(),
        });
    }
    if count != layer.size {
        return Err(ImageError::BlobSizeMismatch {
            digest: layer.digest.clone(),
            expected: layer.size,
            actual: count,
            container: blobs.origin().to_owned(),
        });
    }
    if diff_id != layer.diff_id {
        return Err(ImageError::DiffIdMismatch {
            digest: layer.digest.clone(),
            expected: layer.diff_id.clone(),
            actual: diff_id,
        });
    }
    Ok(true)
}

/// Converts a tar entry; `None` for the root directory entry itself and for aufs metadata.
fn to_raw<R: Read>(
    entry: &tar::Entry<'_, R>,
    digest: &str,
) -> Result<Option<RawEntry>, ImageError> {
    let header = entry.header();
    let raw_path = entry.path_bytes();
    let path = normalise(&raw_path, digest)?;
    let mode = header.mode().map_err(|source| ImageError::LayerRead {
        digest: digest.to_owned(),
        source,
    })? & 0o7777;
    let id = |v: io::Result<u64>| {
        v.map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .map_err(|source| ImageError::LayerRead {
                digest: digest.to_owned(),
                source,
            })
    };
    let uid = id(header.uid())?;
    let gid = id(header.gid())?;
    let (dir, name) = match path.rsplit_once('/') {
        Some((d, n)) => (d, n),
        None => ("", path.as_str()),
    };
    if name == OPAQUE {
        return Ok(Some(RawEntry {
            path: dir.to_owned(),
            kind: RawKind::Opaque,
            mode,
            uid,
            gid,
            size: 0,
        }));
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT) {
        if hidden.starts_with(WHITEOUT) || hidden.is_empty() {
            return Ok(None); // aufs bookkeeping (.wh..wh.plnk, …)
        }
        let target = if dir.is_empty() {
            hidden.to_owned()
        } else {
            format!("{dir}/{hidden}")
        };
        return Ok(Some(RawEntry {
            path: target,
            kind: RawKind::Whiteout,
            mode,
            uid,
            gid,
            size: 0,
        }));
    }
    if path.is_empty() {
        return Ok(None);
    }
    let link = || -> Result<String, ImageError> {
        let bytes = entry.link_name_bytes().unwrap_or_default();
        String::from_utf8(bytes.into_owned()).map_err(|_| ImageError::UnsafePath {
            digest: digest.to_owned(),
            path: path.clone(),
            reason: "its link target is not UTF-8",
        })
    };
    use tar::EntryType as T;
    let kind = match header.entry_type() {
        T::Regular | T::Continuous => RawKind::File,
        T::Directory => RawKind::Dir,
        T::Symlink => RawKind::Symlink(link()?),
        T::Link => {
            let target = normalise(link()?.as_bytes(), digest)?;
            if target.is_empty() {
                return Err(ImageError::UnsafePath {
                    digest: digest.to_owned(),
                    path,
                    reason: "it is a hardlink to the root directory",
                });
            }
            RawKind::Hardlink(target)
        }
        T::Char => RawKind::CharDevice,
        T::Block => RawKind::BlockDevice,
        T::Fifo => RawKind::Fifo,
        other => {
            return Err(ImageError::UnsupportedEntry {
                digest: digest.to_owned(),
                path,
                kind: format!("{other:?}"),
            });
        }
    };
    let size = if kind == RawKind::File {
        entry.size()
    } else {
        0
    };
    Ok(Some(RawEntry {
        path,
        kind,
        mode,
        uid,
        gid,
        size,
    }))
}

/// `./usr//bin/` → `usr/bin`; refuses `..` and non-UTF-8 names.
pub(crate) fn normalise(raw: &[u8], digest: &str) -> Result<String, ImageError> {
    let s = std::str::from_utf8(raw).map_err(|_| ImageError::UnsafePath {
        digest: digest.to_owned(),
        path: String::from_utf8_lossy(raw).into_owned(),
        reason: "the name is not UTF-8",
    })?;
    let mut parts = Vec::new();
    for comp in s.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                return Err(ImageError::UnsafePath {
                    digest: digest.to_owned(),
                    path: s.to_owned(),
                    reason: "it contains `..`",
                });
            }
            c if c.contains('\0') => {
                return Err(ImageError::UnsafePath {
                    digest: digest.to_owned(),
                    path: s.to_owned(),
                    reason: "it contains a NUL byte",
                });
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_paths() {
        assert_eq!(normalise(b"./usr//bin/", "d").unwrap(), "usr/bin");
        assert_eq!(normalise(b"/etc/passwd", "d").unwrap(), "etc/passwd");
        assert_eq!(normalise(b"./", "d").unwrap(), "");
        assert!(matches!(
            normalise(b"usr/../../etc", "d"),
            Err(ImageError::UnsafePath { .. })
        ));
    }
}
