//! A minimal little-endian ELF reader: just what `ldconfig` looks at (type, class, machine, `PT_INTERP`,
//! `DT_SONAME`, `DT_NEEDED`).
//!
//! No crate: `goblin` or `object` would parse far more than the ~150 lines needed here and add build
//! time to every clean build; this reader does a handful of bounded range reads through
//! [`ContentSource`], so a 5 MB library costs a few kilobytes of IO. Big-endian files are reported as
//! [`ElfError::Unsupported`]. Like `ldconfig`, string addresses from the dynamic section are turned into
//! file offsets through the first `PT_LOAD` segment (`p_vaddr - p_offset`).

use std::io;

use super::unpack::ContentSource;

/// `e_type` of a shared object.
pub const ET_DYN: u16 = 3;
/// `e_machine` values used by [`super::ldcache`].
pub const EM_386: u16 = 3;
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_SONAME: u64 = 14;
/// Cap on program headers and dynamic entries read (real files have tens).
const MAX_TABLE: u64 = 1 << 20;
/// Cap on one string read from the string table.
const MAX_STRING: usize = 4096;

/// Why a file could not be read as ELF.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF file")]
    NotElf,
    #[error("unsupported ELF variant: {0}")]
    Unsupported(&'static str),
    #[error("truncated or inconsistent ELF: {0}")]
    Malformed(&'static str),
    #[error("cannot read the file")]
    Io(#[from] io::Error),
}

/// What [`read_elf`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ElfInfo {
    /// `true` for ELFCLASS64.
    pub class64: bool,
    /// `e_type`.
    pub e_type: u16,
    /// `e_machine`.
    pub machine: u16,
    /// `PT_INTERP`, if any.
    pub interpreter: Option<String>,
    /// `DT_SONAME`, if any.
    pub soname: Option<String>,
    /// `DT_NEEDED` entries in order.
    pub needed: Vec<String>,
}

struct Reader<'a> {
    src: &'a dyn ContentSource,
    content: &'a str,
}

impl Reader<'_> {
    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, ElfError> {
        let v = self.src.read_range(self.content, offset, len)?;
        if v.len() != len {
            return Err(ElfError::Malformed("read past the end of the file"));
        }
        Ok(v)
    }

    fn string(&self, offset: u64) -> Result<String, ElfError> {
        let v = self.src.read_range(self.content, offset, MAX_STRING)?;
        let end = v
            .iter()
            .position(|b| *b == 0)
            .ok_or(ElfError::Malformed("unterminated string"))?;
        String::from_utf8(v[..end].to_vec()).map_err(|_| ElfError::Malformed("string is not UTF-8"))
    }
}

fn u16le(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}
fn u32le(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn u64le(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

/// Read the ELF facts of `content` from `src`.
pub fn read_elf(src: &dyn ContentSource, content: &str) -> Result<ElfInfo, ElfError> {
    let r = Reader { src, content };
    let ident = src.read_range(content, 0, 64)?;
    if ident.len() < 16 || &ident[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    let class64 = match ident[4] {
        1 => false,
        2 => true,
        _ => return Err(ElfError::Unsupported("unknown class")),
    };
    if ident[5] != 1 {
        return Err(ElfError::Unsupported("big-endian"));
    }
    let ehsize = if class64 { 64 } else { 52 };
    if ident.len() < ehsize {
        return Err(ElfError::Malformed("short header"));
    }
    let h = &ident;
    let e_type = u16le(h, 16);
    let machine = u16le(h, 18);
    let (phoff, phentsize, phnum) = if class64 {
        (
            u64le(h, 32),
            u64::from(u16le(h, 54)),
            u64::from(u16le(h, 56)),
        )
    } else {
        (
            u64::from(u32le(h, 28)),
            u64::from(u16le(h, 42)),
            u64::from(u16le(h, 44)),
        )
    };
    let min_ph = if class64 { 56 } else { 32 };
    let mut info = ElfInfo {
        class64,
        e_type,
        machine,
        ..ElfInfo::default()
    };
    if phnum == 0 {
        return Ok(info);
    }
    if phentsize < min_ph || phnum * phentsize > MAX_TABLE {
        return Err(ElfError::Malformed("program header table"));
    }
    let table = r.read(phoff, (phnum * phentsize) as usize)?;
    let mut loadaddr: Option<u64> = None;
    let mut dynamic: Option<(u64, u64)> = None;
    for i in 0..phnum as usize {
        let p = &table[i * phentsize as usize..];
        let p_type = u32le(p, 0);
        let (offset, vaddr, filesz) = if class64 {
            (u64le(p, 8), u64le(p, 16), u64le(p, 32))
        } else {
            (
                u64::from(u32le(p, 4)),
                u64::from(u32le(p, 8)),
                u64::from(u32le(p, 16)),
            )
        };
        match p_type {
            PT_LOAD if loadaddr.is_none() => loadaddr = Some(vaddr.wrapping_sub(offset)),
            PT_DYNAMIC => dynamic = Some((offset, filesz)),
            PT_INTERP => info.interpreter = Some(r.string(offset)?),
            _ => {}
        }
    }
    let Some((dyn_off, dyn_size)) = dynamic else {
        return Ok(info);
    };
    if dyn_size > MAX_TABLE {
        return Err(ElfError::Malformed("dynamic segment too large"));
    }
    let dynamic = r.read(dyn_off, dyn_size as usize)?;
    let entsize = if class64 { 16 } else { 8 };
    let mut entries = Vec::new();
    for chunk in dynamic.chunks_exact(entsize) {
        let (tag, val) = if class64 {
            (u64le(chunk, 0), u64le(chunk, 8))
        } else {
            (u64::from(u32le(chunk, 0)), u64::from(u32le(chunk, 4)))
        };
        if tag == DT_NULL {
            break;
        }
        entries.push((tag, val));
    }
    let Some(strtab) = entries
        .iter()
        .find(|(t, _)| *t == DT_STRTAB)
        .map(|(_, v)| *v)
    else {
        return Ok(info);
    };
    let base = strtab.wrapping_sub(loadaddr.unwrap_or(0));
    for (tag, val) in entries {
        match tag {
            DT_NEEDED => info.needed.push(r.string(base.wrapping_add(val))?),
            DT_SONAME => info.soname = Some(r.string(base.wrapping_add(val))?),
            _ => {}
        }
    }
    Ok(info)
}
