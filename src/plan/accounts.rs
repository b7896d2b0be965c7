//! Generated account files: `/etc/passwd`, `/etc/group` and `/etc/shadow` from declared users and
//! groups, merged along the `from` chain (a registry base's own files included). `root` (0) and
//! `nobody` (65534) are always present.

use std::collections::BTreeMap;

use himg_lang::{GroupSpec, UserSpec};

/// Users and groups of an image, keyed by name; the derived image's entries replace the base's.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    pub users: BTreeMap<String, UserSpec>,
    pub groups: BTreeMap<String, GroupSpec>,
}

impl Accounts {
    /// The accounts of a base image's `/etc/passwd` and `/etc/group` (a registry base's), so that
    /// accounts declared on top extend them. Comment, blank and malformed lines are skipped; no
    /// home directory is created for them (the base has its own).
    pub fn from_files(passwd: Option<&str>, group: Option<&str>) -> Accounts {
        let mut out = Accounts::default();
        for line in passwd.unwrap_or_default().lines() {
            let fields: Vec<&str> = line.split(':').collect();
            let [name, _, uid, gid, gecos, home, shell] = fields.as_slice() else {
                continue;
            };
            let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse()) else {
                continue;
            };
            if name.is_empty() || name.starts_with('#') {
                continue;
            }
            out.users.insert(
                (*name).to_owned(),
                UserSpec {
                    name: (*name).to_owned(),
                    uid,
                    gid,
                    home: (*home).to_owned(),
                    shell: (*shell).to_owned(),
                    gecos: (*gecos).to_owned(),
                    create_home: false,
                },
            );
        }
        for line in group.unwrap_or_default().lines() {
            let fields: Vec<&str> = line.split(':').collect();
            let [name, _, gid, members] = fields.as_slice() else {
                continue;
            };
            let Ok(gid) = gid.parse() else {
                continue;
            };
            if name.is_empty() || name.starts_with('#') {
                continue;
            }
            out.groups.insert(
                (*name).to_owned(),
                GroupSpec {
                    name: (*name).to_owned(),
                    gid,
                    members: members
                        .split(',')
                        .filter(|m| !m.is_empty())
                        .map(str::to_owned)
                        .collect(),
                },
            );
        }
        out
    }

    /// User `name`'s uid and primary gid (the built-in `root` and `nobody` included).
    pub fn user_ids(&self, name: &str) -> Option<(u32, u32)> {
        match self.users.get(name) {
            Some(u) => Some((u.uid, u.gid)),
            None if name == "root" => Some((0, 0)),
            None if name == "nobody" => Some((65534, 65534)),
            None => None,
        }
    }

    /// Group `name`'s gid (the built-in `root` and `nogroup` included).
    pub fn group_id(&self, name: &str) -> Option<u32> {
        match self.groups.get(name) {
            Some(g) => Some(g.gid),
            None if name == "root" => Some(0),
            None if name == "nogroup" => Some(65534),
            None => None,
        }
    }

    /// Whether the image has user `name`.
    pub fn has_user(&self, name: &str) -> bool {
        self.user_ids(name).is_some()
    }

    /// Whether the image has group `name`.
    pub fn has_group(&self, name: &str) -> bool {
        self.group_id(name).is_some()
    }

    /// This (the base's) accounts with a derived image's declarations applied.
    pub fn extend(&self, users: &[UserSpec], groups: &[GroupSpec]) -> Accounts {
        let mut out = self.clone();
        for u in users {
            out.users.insert(u.name.clone(), u.clone());
        }
        for g in groups {
            out.groups.insert(g.name.clone(), g.clone());
        }
        out
    }

    fn all_users(&self) -> Vec<UserSpec> {
        let mut all: BTreeMap<String, UserSpec> = BTreeMap::new();
        all.insert(
            "root".into(),
            builtin_user("root", 0, "/root", "/sbin/nologin"),
        );
        all.insert(
            "nobody".into(),
            builtin_user("nobody", 65534, "/nonexistent", "/usr/sbin/nologin"),
        );
        all.extend(self.users.clone());
        let mut v: Vec<UserSpec> = all.into_values().collect();
        v.sort_by(|a, b| a.uid.cmp(&b.uid).then_with(|| a.name.cmp(&b.name)));
        v
    }

    fn all_groups(&self) -> Vec<GroupSpec> {
        let mut all: BTreeMap<String, GroupSpec> = BTreeMap::new();
        all.insert("root".into(), builtin_group("root", 0));
        all.insert("nogroup".into(), builtin_group("nogroup", 65534));
        all.extend(self.groups.clone());
        let mut v: Vec<GroupSpec> = all.into_values().collect();
        v.sort_by(|a, b| a.gid.cmp(&b.gid).then_with(|| a.name.cmp(&b.name)));
        v
    }

    /// `/etc/passwd`, sorted by uid.
    pub fn passwd(&self) -> String {
        self.all_users()
            .iter()
            .map(|u| {
                format!(
                    "{}:x:{}:{}:{}:{}:{}\n",
                    u.name, u.uid, u.gid, u.gecos, u.home, u.shell
                )
            })
            .collect()
    }

    /// `/etc/group`, sorted by gid.
    pub fn group(&self) -> String {
        self.all_groups()
            .iter()
            .map(|g| format!("{}:x:{}:{}\n", g.name, g.gid, g.members.join(",")))
            .collect()
    }

    /// `/etc/shadow`: every account locked (`!`), no password ageing dates (they would be build times).
    pub fn shadow(&self) -> String {
        self.all_users()
            .iter()
            .map(|u| format!("{}:!:::::::\n", u.name))
            .collect()
    }

    /// Home directories to create: `(path, uid, gid)`, sorted by path.
    pub fn homes(&self) -> Vec<(String, u32, u32)> {
        let mut v: Vec<(String, u32, u32)> = self
            .users
            .values()
            .filter(|u| u.create_home && u.home != "/" && u.home != "/nonexistent")
            .map(|u| (u.home.clone(), u.uid, u.gid))
            .collect();
        v.sort();
        v.dedup_by(|a, b| a.0 == b.0);
        v
    }
}

fn builtin_user(name: &str, id: u32, home: &str, shell: &str) -> UserSpec {
    UserSpec {
        name: name.into(),
        uid: id,
        gid: id,
        home: home.into(),
        shell: shell.into(),
        gecos: name.into(),
        create_home: false,
    }
}

fn builtin_group(name: &str, id: u32) -> GroupSpec {
    GroupSpec {
        name: name.into(),
        gid: id,
        members: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A declared user `app` (10001) with a home.
    fn app_user() -> UserSpec {
        UserSpec {
            name: "app".into(),
            uid: 10001,
            gid: 10001,
            home: "/home/app".into(),
            shell: "/sbin/nologin".into(),
            gecos: "app".into(),
            create_home: true,
        }
    }

    /// A declared group `app` (10001).
    fn app_group() -> GroupSpec {
        GroupSpec {
            name: "app".into(),
            gid: 10001,
            members: vec![],
        }
    }

    #[test]
    fn a_base_images_files_are_extended_not_replaced() {
        let base = Accounts::from_files(
            Some(
                "root:x:0:0:root:/root:/bin/sh\n# comment\nbroken line\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
            ),
            Some("root:x:0:\ntty:x:5:a,b\nnonroot:x:65532:\n"),
        );
        let acc = base.extend(&[app_user()], &[app_group()]);
        // The base's root wins over the built-in one; its users stay; the declared one is added.
        assert_eq!(
            acc.passwd(),
            "root:x:0:0:root:/root:/bin/sh\napp:x:10001:10001:app:/home/app:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        );
        assert_eq!(
            acc.group(),
            "root:x:0:\ntty:x:5:a,b\napp:x:10001:\nnonroot:x:65532:\nnogroup:x:65534:\n"
        );
        // Only the declared user's home is created.
        assert_eq!(acc.homes(), vec![("/home/app".to_string(), 10001, 10001)]);
    }

    #[test]
    fn files_are_sorted_and_include_builtins() {
        let acc = Accounts::default().extend(&[app_user()], &[app_group()]);
        assert_eq!(
            acc.passwd(),
            "root:x:0:0:root:/root:/sbin/nologin\napp:x:10001:10001:app:/home/app:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        );
        assert_eq!(acc.group(), "root:x:0:\napp:x:10001:\nnogroup:x:65534:\n");
        assert!(acc.shadow().starts_with("root:!:::::::\n"));
        assert_eq!(acc.homes(), vec![("/home/app".to_string(), 10001, 10001)]);
    }
}
