//! Reads the state file `faked --save-file` writes: the owners and modes the maintainer scripts set
//! under fakeroot (`chown www-data:adm /var/log/nginx`), by device and inode.

use std::collections::BTreeMap;

/// What fakeroot recorded for one inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faked {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// `(dev, ino)` → what the scripts set. Lines are `dev=HEX,ino=DEC,mode=OCT,uid=DEC,gid=DEC,…`
/// (fakeroot's format: device in hex, mode in octal); a malformed line is skipped — an owner it
/// would have given stays root's, which the report then shows.
pub fn parse_state(text: &str) -> BTreeMap<(u64, u64), Faked> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut dev = None;
        let mut ino = None;
        let mut mode = None;
        let mut uid = None;
        let mut gid = None;
        for field in line.split(',') {
            let Some((k, v)) = field.split_once('=') else {
                continue;
            };
            match k.trim() {
                "dev" => dev = u64::from_str_radix(v.trim(), 16).ok(),
                "ino" => ino = v.trim().parse().ok(),
                "mode" => mode = u32::from_str_radix(v.trim(), 8).ok(),
                "uid" => uid = v.trim().parse().ok(),
                "gid" => gid = v.trim().parse().ok(),
                _ => {}
            }
        }
        if let (Some(dev), Some(ino), Some(mode), Some(uid), Some(gid)) = (dev, ino, mode, uid, gid)
        {
            out.insert((dev, ino), Faked { mode, uid, gid });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fakeroot_state_lines() {
        let text = "dev=fe00,ino=10016938,mode=100640,uid=33,gid=4,nlink=1,rdev=0\n\
                    garbage\n\
                    dev=fe00,ino=10017203,mode=40755,uid=0,gid=4,nlink=2,rdev=0\n";
        let state = parse_state(text);
        assert_eq!(state.len(), 2);
        assert_eq!(
            state[&(0xfe00, 10016938)],
            Faked {
                mode: 0o100640,
                uid: 33,
                gid: 4
            }
        );
        assert_eq!(state[&(0xfe00, 10017203)].gid, 4);
    }
}
