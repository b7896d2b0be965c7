//! Resolves a user spec (`name`, `uid`, `uid:gid`, `name:group`) against the image's `/etc/passwd`
//! and `/etc/group`, as container runtimes do.

use std::path::Path;

use super::TestError;

/// A resolved user: ids, and the home directory when the passwd file names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub uid: u32,
    pub gid: u32,
    pub home: Option<String>,
}

fn read(rootfs: &Path, file: &str) -> String {
    std::fs::read_to_string(rootfs.join(file)).unwrap_or_default()
}

/// `(name, uid, gid, home)` of each passwd line.
fn passwd(rootfs: &Path) -> Vec<(String, u32, u32, String)> {
    read(rootfs, "etc/passwd")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((
                f.first()?.to_string(),
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
                f.get(5).unwrap_or(&"").to_string(),
            ))
        })
        .collect()
}

fn group(rootfs: &Path, name: &str) -> Option<u32> {
    read(rootfs, "etc/group").lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name))
            .then(|| f.get(2)?.parse().ok())
            .flatten()
    })
}

/// Resolves `spec` (empty or `None` = root) in the image at `rootfs`.
pub fn resolve(rootfs: &Path, spec: Option<&str>) -> Result<Resolved, TestError> {
    let spec = spec.unwrap_or("").trim();
    if spec.is_empty() {
        return Ok(Resolved {
            uid: 0,
            gid: 0,
            home: Some("/root".into()),
        });
    }
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = passwd(rootfs);
    let entry = match user.parse::<u32>() {
        Ok(uid) => users.iter().find(|u| u.1 == uid).cloned().or(Some((
            String::new(),
            uid,
            0,
            String::new(),
        ))),
        Err(_) => users.iter().find(|u| u.0 == user).cloned(),
    };
    let Some((_, uid, primary, home)) = entry else {
        return Err(TestError::UnknownUser(user.to_owned()));
    };
    let gid = match grp {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group(rootfs, g).ok_or_else(|| TestError::UnknownGroup(g.to_owned()))?,
        },
    };
    Ok(Resolved {
        uid,
        gid,
        home: (!home.is_empty()).then_some(home),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ids_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:50:app:/home/app:/sbin/nologin\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:app\n").unwrap();
        let r = resolve(dir.path(), Some("app")).unwrap();
        assert_eq!(
            (r.uid, r.gid, r.home.as_deref()),
            (1000, 50, Some("/home/app"))
        );
        assert_eq!(resolve(dir.path(), Some("app:root")).unwrap().gid, 0);
        assert_eq!(resolve(dir.path(), Some("1000")).unwrap().gid, 50);
        assert_eq!(resolve(dir.path(), Some("77:88")).unwrap().uid, 77);
        assert_eq!(resolve(dir.path(), Some("77:88")).unwrap().gid, 88);
        assert_eq!(resolve(dir.path(), None).unwrap().uid, 0);
        assert!(resolve(dir.path(), Some("nobody")).is_err());
        assert!(resolve(dir.path(), Some("app:wheel")).is_err());
    }
}
