//! The tar byte format: POSIX ustar headers, plus a PAX extended header (`x`) in front of an
//! entry whose path or link target is longer than 100 bytes or whose numbers do not fit the
//! octal fields (the choice Go's `archive/tar` makes, so Docker, containerd and umoci read it
//! natively).
//!
//! Fixed choices: magic `ustar\0` version `00`; numeric fields zero-padded octal with a trailing
//! NUL; checksum as six octal digits, NUL, space; empty uname/gname; device numbers zero; PAX
//! header named `././@PaxHeader` with mode 0o644, owner 0:0, mtime 0 and records sorted by key;
//! the archive ends with two zero blocks and no further blocking padding.
//!
//! Headers are built with [`tar::Header::new_ustar`] and its setters (entry type, mode,
//! uid/gid, size, mtime, device numbers, paths of up to 100 bytes, link names), which write
//! exactly the bytes above. A few bytes are still decided here, because the `tar` crate writes
//! something else and Go's `archive/tar` and our golden digests need these:
//! - **Checksum field**: `Header::set_cksum` computes the sum, but writes it as seven octal
//!   digits and a NUL (`0012345\0`); Go writes six digits, NUL, space (`012345\0 `). We keep
//!   the crate's sum (the field reads as spaces while summing, so its layout does not change
//!   the sum) and re-encode it.
//! - **Fields the crate leaves as NUL bytes**: `new_ustar` leaves uid, gid, mode and the device
//!   numbers as NUL bytes; Go writes `0000000\0`, so we always call their setters, also for 0.
//! - **Numbers that do not fit**: `Header::set_uid`/`set_size`/… switch to GNU base-256 binary
//!   for values beyond the octal field; Go writes a PAX record and leaves the field 0, so we
//!   pass 0 and write the record.
//! - **Names longer than 100 bytes**: `Header::set_path` would split them into ustar
//!   prefix/name; Go (in PAX form) puts the first 100 bytes in `name`, leaves `prefix` empty
//!   and writes the full path as a PAX record. We copy those 100 bytes into the name field.
//!   The PAX header's own name `././@PaxHeader` is copied too: `set_path` drops `.`
//!   components and would store `@PaxHeader`.
//! - **Link names** go through `Header::set_link_name_literal` (verbatim, truncated to 100
//!   bytes when a PAX record carries the full one): `set_link_name` normalises `a//b`, `./x/.`.
//! - **PAX records and their `x` header**: `Builder::append_pax_extensions` encodes records
//!   the same way, but only together with its own `x` header (empty name, and mode, owner and
//!   device fields left as NUL bytes), so [`pax_record`] encodes them here and the `x` header
//!   is built like every other header.
//! - **Stream framing** (content, zero padding to 512, the 1024-byte trailer): the caller
//!   copies exactly the declared size with its own errors, whereas `Builder::append` pads by
//!   the bytes it happened to read, so [`write_padding`] and [`write_trailer`] stay here.

use std::io::{self, Write};

use tar::{EntryType, Header};

pub(crate) const BLOCK: usize = 512;

/// One entry's header, as it goes into the archive.
#[derive(Debug)]
pub(crate) struct TarHeader<'a> {
    /// Archive path: relative, directories end in `/`.
    pub path: &'a str,
    /// Regular, Directory, Symlink or Link.
    pub kind: EntryType,
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
/// The name Go's `archive/tar` gives PAX extended headers.
const PAX_NAME: &[u8] = b"././@PaxHeader";

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
        let mut pax = ustar(EntryType::XHeader, 0o644, 0, 0, data.len() as u64, 0)?;
        pax.as_old_mut().name[..PAX_NAME.len()].copy_from_slice(PAX_NAME);
        set_cksum(&mut pax)?;
        w.write_all(pax.as_bytes())?;
        w.write_all(&data)?;
        write_padding(w, data.len() as u64)?;
    }
    let fit = |v: u64, max: u64| if v > max { 0 } else { v };
    let mut hdr = ustar(
        h.kind,
        h.mode,
        fit(h.uid, MAX_OCTAL_8),
        fit(h.gid, MAX_OCTAL_8),
        fit(h.size, MAX_OCTAL_12),
        fit(h.mtime, MAX_OCTAL_12),
    )?;
    let path = h.path.as_bytes();
    if path.len() > NAME_LEN {
        hdr.as_old_mut().name.copy_from_slice(&path[..NAME_LEN]);
    } else {
        hdr.set_path(h.path)?;
        // `set_path` normalises (drops `.` components, merges `//`); layer paths are already
        // normal, so this only guards against writing a name other than the one asked for.
        if *hdr.path_bytes() != *path {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("tar path {:?} is not normalised", h.path),
            ));
        }
    }
    if !h.link.is_empty() {
        let link = h.link.as_bytes();
        hdr.set_link_name_literal(&link[..link.len().min(NAME_LEN)])?;
    }
    set_cksum(&mut hdr)?;
    w.write_all(hdr.as_bytes())
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

/// A ustar header without name, link name or checksum; every numeric field written as octal
/// (the values must fit), uname/gname empty.
fn ustar(
    kind: EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
) -> io::Result<Header> {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_device_major(0)?;
    h.set_device_minor(0)?;
    Ok(h)
}

/// Sets the checksum in Go's layout: the crate's sum as six octal digits, NUL, space.
fn set_cksum(h: &mut Header) -> io::Result<()> {
    h.set_cksum();
    // At most 512 × 255 = 0o377000: always six digits.
    let mut sum = h.cksum()?;
    let field = &mut h.as_old_mut().cksum;
    for digit in field[..6].iter_mut().rev() {
        *digit = b'0' + (sum & 7) as u8;
        sum >>= 3;
    }
    field[6..].copy_from_slice(b"\0 ");
    Ok(())
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
    fn header_fields_use_go_layout() -> io::Result<()> {
        let mut out = Vec::new();
        write_header(
            &mut out,
            &TarHeader {
                path: "usr/bin/x",
                kind: EntryType::Regular,
                link: "",
                mode: 0o4755,
                uid: 10001,
                gid: 0,
                size: 3,
                mtime: 1,
            },
        )?;
        assert_eq!(out.len(), BLOCK);
        let h = Header::from_byte_slice(&out);
        let mut copy = out.clone();
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(h.cksum()?, copy.iter().map(|&x| u32::from(x)).sum::<u32>());
        assert!(out[148..154].iter().all(|b| (b'0'..=b'7').contains(b)));
        assert_eq!(&out[154..156], b"\0 ");
        assert_eq!(
            &out[100..148],
            b"0004755\x000023421\x000000000\x0000000000003\x0000000000001\x00"
        );
        assert_eq!(&out[156..157], b"0");
        assert_eq!(&out[257..265], b"ustar\x0000");
        assert_eq!(&out[265..329], &[0u8; 64][..]); // uname, gname
        assert_eq!(&out[329..345], b"0000000\x000000000\x00");
        assert_eq!(&out[345..], &[0u8; 167][..]); // prefix, padding
        Ok(())
    }

    #[test]
    fn overflowing_fields_go_into_a_pax_header() -> io::Result<()> {
        let path = "d/".repeat(60);
        let link = "t/".repeat(55);
        let mut out = Vec::new();
        write_header(
            &mut out,
            &TarHeader {
                path: &path,
                kind: EntryType::Symlink,
                link: &link,
                mode: 0o777,
                uid: MAX_OCTAL_8 + 1,
                gid: MAX_OCTAL_8,
                size: 0,
                mtime: MAX_OCTAL_12 + 1,
            },
        )?;
        assert_eq!(out.len(), 3 * BLOCK);
        let (pax, rest) = out.split_at(BLOCK);
        let (data, hdr) = rest.split_at(BLOCK);
        assert_eq!(&pax[..15], b"././@PaxHeader\0");
        assert_eq!(&pax[100..124], b"0000644\x000000000\x000000000\x00");
        assert_eq!(&pax[136..148], b"00000000000\x00");
        assert_eq!(pax[156], b'x');
        assert_eq!(&pax[329..345], b"0000000\x000000000\x00");
        let expect =
            format!("124 linkpath={link}\n20 mtime=8589934592\n130 path={path}\n15 uid=2097152\n");
        assert_eq!(&data[..expect.len()], expect.as_bytes());
        assert_eq!(
            &pax[124..136],
            format!("{:011o}\0", expect.len()).as_bytes()
        );
        assert_eq!(&hdr[..100], &path.as_bytes()[..100]);
        assert_eq!(&hdr[108..124], b"0000000\x007777777\x00");
        assert_eq!(&hdr[136..148], b"00000000000\x00");
        assert_eq!(&hdr[157..257], &link.as_bytes()[..100]);
        assert_eq!(&hdr[345..500], &[0u8; 155][..]); // no ustar prefix
        Ok(())
    }
}
