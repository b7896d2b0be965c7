//! The tar byte format, written by hand so every header byte is decided here: POSIX ustar
//! headers, plus a PAX extended header (`x`) in front of an entry whose path or link target is
//! longer than 100 bytes or whose numbers do not fit the octal fields (the choice Go's
//! `archive/tar` makes, so Docker, containerd and umoci read it natively).
//!
//! Fixed choices: magic `ustar\0` version `00`; numeric fields zero-padded octal with a trailing
//! NUL; checksum as six octal digits, NUL, space; empty uname/gname; device numbers zero; PAX
//! header named `././@PaxHeader` with mode 0o644, owner 0:0, mtime 0 and records sorted by key;
//! the archive ends with two zero blocks and no further blocking padding.

use std::io::{self, Write};

pub(crate) const BLOCK: usize = 512;

/// The type of a tar entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TarKind {
    File,
    Dir,
    Symlink,
    Hardlink,
}

impl TarKind {
    fn flag(self) -> u8 {
        match self {
            TarKind::File => b'0',
            TarKind::Hardlink => b'1',
            TarKind::Symlink => b'2',
            TarKind::Dir => b'5',
        }
    }
}

/// One entry's header, as it goes into the archive.
#[derive(Debug)]
pub(crate) struct TarHeader<'a> {
    /// Archive path: relative, directories end in `/`.
    pub path: &'a str,
    pub kind: TarKind,
    /// Symlink target, or the archive path of a hardlink's target.
    pub link: &'a str,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: u64,
}

const NAME_LEN: usize = 100;
/// Largest value of an 8-byte octal field (7 digits).
const MAX_OCTAL_8: u64 = 0o7_777_777;
/// Largest value of a 12-byte octal field (11 digits).
const MAX_OCTAL_12: u64 = 0o77_777_777_777;

/// Writes the header block(s) of one entry. The caller then writes `size` bytes of content and
/// [`write_padding`].
pub(crate) fn write_header(w: &mut dyn Write, h: &TarHeader<'_>) -> io::Result<()> {
    // PAX records, in sorted key order.
    let mut records: Vec<(&str, String)> = Vec::new();
    if h.gid > MAX_OCTAL_8 {
        records.push(("gid", h.gid.to_string()));
    }
    if h.link.len() > NAME_LEN {
        records.push(("linkpath", h.link.to_owned()));
    }
    if h.mtime > MAX_OCTAL_12 {
        records.push(("mtime", h.mtime.to_string()));
    }
    if h.path.len() > NAME_LEN {
        records.push(("path", h.path.to_owned()));
    }
    if h.size > MAX_OCTAL_12 {
        records.push(("size", h.size.to_string()));
    }
    if h.uid > MAX_OCTAL_8 {
        records.push(("uid", h.uid.to_string()));
    }
    if !records.is_empty() {
        let mut data = Vec::new();
        for (key, value) in &records {
            pax_record(&mut data, key, value);
        }
        let pax = block(
            b"././@PaxHeader",
            b'x',
            b"",
            0o644,
            0,
            0,
            data.len() as u64,
            0,
        );
        w.write_all(&pax)?;
        w.write_all(&data)?;
        write_padding(w, data.len() as u64)?;
    }
    let fit = |v: u64, max: u64| if v > max { 0 } else { v };
    let hdr = block(
        truncate(h.path.as_bytes()),
        h.kind.flag(),
        truncate(h.link.as_bytes()),
        h.mode,
        fit(h.uid, MAX_OCTAL_8),
        fit(h.gid, MAX_OCTAL_8),
        fit(h.size, MAX_OCTAL_12),
        fit(h.mtime, MAX_OCTAL_12),
    );
    w.write_all(&hdr)
}

/// Writes the zero bytes that pad `size` bytes of content to a whole block.
pub(crate) fn write_padding(w: &mut dyn Write, size: u64) -> io::Result<()> {
    let rem = (size % BLOCK as u64) as usize;
    if rem != 0 {
        w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

/// Writes the end-of-archive marker: two zero blocks.
pub(crate) fn write_trailer(w: &mut dyn Write) -> io::Result<()> {
    w.write_all(&[0u8; 2 * BLOCK])
}

fn truncate(b: &[u8]) -> &[u8] {
    &b[..b.len().min(NAME_LEN)]
}

/// Appends one `"<len> key=value\n"` record; `<len>` counts the whole record including itself.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &str) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
}

#[allow(clippy::too_many_arguments)]
fn block(
    name: &[u8],
    flag: u8,
    link: &[u8],
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name);
    octal(&mut b[100..108], u64::from(mode));
    octal(&mut b[108..116], uid);
    octal(&mut b[116..124], gid);
    octal(&mut b[124..136], size);
    octal(&mut b[136..148], mtime);
    b[156] = flag;
    b[157..157 + link.len()].copy_from_slice(link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    octal(&mut b[329..337], 0);
    octal(&mut b[337..345], 0);
    // Checksum: sum of all bytes with the checksum field read as spaces.
    b[148..156].copy_from_slice(b"        ");
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    octal(&mut b[148..155], sum);
    b[155] = b' ';
    b
}

/// Zero-padded octal digits filling all but the last byte of `field`, then NUL. The caller
/// guarantees the value fits.
fn octal(field: &mut [u8], mut v: u64) {
    let digits = field.len() - 1;
    for i in (0..digits).rev() {
        field[i] = b'0' + (v & 7) as u8;
        v >>= 3;
    }
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        for (k, v) in [
            ("path", "a".repeat(3)),
            ("path", "b".repeat(93)),
            ("path", "c".repeat(994)),
        ] {
            let mut out = Vec::new();
            pax_record(&mut out, k, &v);
            let text = String::from_utf8(out.clone()).unwrap_or_default();
            let (n, _) = text.split_once(' ').unwrap_or_default();
            assert_eq!(n.parse::<usize>().ok(), Some(out.len()), "{text}");
        }
    }

    #[test]
    fn header_checksum_matches_tar_crate() -> io::Result<()> {
        let mut out = Vec::new();
        write_header(
            &mut out,
            &TarHeader {
                path: "usr/bin/x",
                kind: TarKind::File,
                link: "",
                mode: 0o4755,
                uid: 10001,
                gid: 20,
                size: 3,
                mtime: 1,
            },
        )?;
        assert_eq!(out.len(), BLOCK);
        let h = tar::Header::from_byte_slice(&out);
        assert_eq!(h.cksum()?, {
            let mut copy = out.clone();
            copy[148..156].copy_from_slice(b"        ");
            copy.iter().map(|&x| u32::from(x)).sum::<u32>()
        });
        assert_eq!(h.mode()?, 0o4755);
        assert_eq!(h.uid()?, 10001);
        assert_eq!(h.size()?, 3);
        assert_eq!(&out[329..345], b"0000000\x000000000\x00");
        Ok(())
    }
}
