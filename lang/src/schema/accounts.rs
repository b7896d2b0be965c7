//! Accounts: `user` and `group` blocks, `run_as`, and the table that resolves names to ids.

use super::{Check, MAX_ID, base_chain};
use crate::codes;
use crate::diagnostic::Diag;
use crate::span::Span;
use crate::spec::*;
use crate::suggest::did_you_mean;
use crate::value::{Field, V};

const USER_FIELDS: &[&str] = &[
    "name",
    "uid",
    "gid",
    "home",
    "shell",
    "gecos",
    "create_home",
];
const GROUP_FIELDS: &[&str] = &["name", "gid", "members"];

/// The two kinds of account a name can refer to: `owner` names a user, `group` a group.
#[derive(Debug, Clone, Copy)]
pub(super) enum AccountKind {
    User,
    Group,
}

impl AccountKind {
    /// `user` or `group`, as diagnostics and blocks say it.
    pub(super) fn noun(self) -> &'static str {
        match self {
            AccountKind::User => "user",
            AccountKind::Group => "group",
        }
    }

    /// `uid` or `gid`.
    pub(super) fn id(self) -> &'static str {
        match self {
            AccountKind::User => "uid",
            AccountKind::Group => "gid",
        }
    }

    /// The code of a name that no block of the image or its bases declares.
    pub(super) fn unknown_code(self) -> &'static str {
        match self {
            AccountKind::User => codes::UNKNOWN_USER,
            AccountKind::Group => codes::UNKNOWN_GROUP,
        }
    }
}

/// Users and groups known to an image: its own, its bases', and the ones every image has (`root`
/// and `nobody`, groups `root` and `nogroup`, as the composer always generates them).
pub(super) struct Accounts {
    pub(super) users: Vec<(String, u32, u32)>,
    pub(super) groups: Vec<(String, u32)>,
    /// The image extends a registry image, whose own accounts are not known here: names not
    /// found are left to the composer instead of refused.
    pub(super) registry_base: bool,
}

impl Accounts {
    pub(super) fn new(
        users: &[UserSpec],
        groups: &[GroupSpec],
        base: Option<&ImageSpec>,
        registry_base: bool,
    ) -> Accounts {
        let mut accounts = Accounts {
            users: vec![
                ("root".to_owned(), 0, 0),
                ("nobody".to_owned(), 65534, 65534),
            ],
            groups: vec![("root".to_owned(), 0), ("nogroup".to_owned(), 65534)],
            registry_base,
        };
        let mut chain: Vec<(&[UserSpec], &[GroupSpec])> = vec![(users, groups)];
        let mut next = base;
        while let Some(image) = next {
            chain.push((&image.users, &image.groups));
            next = image.base.as_deref();
        }
        for (users, groups) in chain {
            accounts
                .users
                .extend(users.iter().map(|u| (u.name.clone(), u.uid, u.gid)));
            accounts
                .groups
                .extend(groups.iter().map(|g| (g.name.clone(), g.gid)));
        }
        accounts
    }

    /// The id of the `kind` account called `name` and the group it implies: a user's primary
    /// group, a group itself.
    pub(super) fn find(&self, kind: AccountKind, name: &str) -> Option<(u32, u32)> {
        match kind {
            AccountKind::User => self.user(name),
            AccountKind::Group => self.group(name).map(|g| (g, g)),
        }
    }

    /// A numeric `kind` id with the group it implies, as [`Accounts::find`] gives for a name: a
    /// uid that no user has implies the group of the same number.
    pub(super) fn by_id(&self, kind: AccountKind, id: u32) -> (u32, u32) {
        match kind {
            AccountKind::User => (id, self.gid_of_uid(id).unwrap_or(id)),
            AccountKind::Group => (id, id),
        }
    }

    /// Every declared name of `kind`, for did-you-mean suggestions.
    pub(super) fn names(&self, kind: AccountKind) -> Vec<&str> {
        match kind {
            AccountKind::User => self.users.iter().map(|u| u.0.as_str()).collect(),
            AccountKind::Group => self.groups.iter().map(|g| g.0.as_str()).collect(),
        }
    }

    pub(super) fn user(&self, name: &str) -> Option<(u32, u32)> {
        self.users.iter().find(|u| u.0 == name).map(|u| (u.1, u.2))
    }

    fn gid_of_uid(&self, uid: u32) -> Option<u32> {
        self.users.iter().find(|u| u.1 == uid).map(|u| u.2)
    }

    pub(super) fn group(&self, name: &str) -> Option<u32> {
        self.groups.iter().find(|g| g.0 == name).map(|g| g.1)
    }
}

impl Check<'_> {
    // ------------------------------------------------------------ accounts

    fn account_name(&mut self, field: &Field, what: &str) -> Option<String> {
        let name = self.string(field, "name")?;
        let body = name.strip_suffix('$').unwrap_or(&name);
        let valid = !body.is_empty()
            && name.len() <= 32
            && body.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic()
                    || c == '_'
                    || (i > 0 && (c.is_ascii_digit() || c == '-' || c == '.'))
            });
        if !valid {
            self.push(
                Diag::new(codes::BAD_ACCOUNT_NAME, field.value.span, format!("invalid {what} name `{name}`"))
                    .label("not a valid account name")
                    .help("account names are 1 to 32 characters: a letter or `_`, then letters, digits, `_`, `-` or `.`"),
            );
            return None;
        }
        Some(name)
    }

    pub(super) fn groups(
        &mut self,
        field: Option<&Field>,
        base: Option<&ImageSpec>,
    ) -> Vec<GroupSpec> {
        let Some(field) = field else {
            return Vec::new();
        };
        let mut out: Vec<GroupSpec> = Vec::new();
        let mut spans: Vec<(Span, Span)> = Vec::new(); // (name, gid) spans of accepted groups
        for value in self.records(field, "group") {
            let V::Record(record) = &value.kind else {
                continue;
            };
            self.unknown_fields(record, GROUP_FIELDS, "a `group` block", false);
            let name_field = self.required(record, value.span, "name", "a `group` block");
            let gid_field = self.required(record, value.span, "gid", "a `group` block");
            let name = name_field.and_then(|f| self.account_name(f, "group"));
            let gid = gid_field.and_then(|f| self.int_in(f, "gid", 0, MAX_ID));
            let members = match record.fields.get("members") {
                Some(f) => self.string_list(f, "members").unwrap_or_default(),
                None => Vec::new(),
            };
            let (Some(name), Some(gid), Some(name_field), Some(gid_field)) =
                (name, gid, name_field, gid_field)
            else {
                continue;
            };
            if let Some(i) = out.iter().position(|g| g.name == name) {
                self.push(
                    Diag::new(
                        codes::DUPLICATE_GROUP,
                        name_field.value.span,
                        format!("group `{name}` is declared twice"),
                    )
                    .label("second declaration")
                    .secondary(spans[i].0, "first declared here"),
                );
                continue;
            }
            if let Some(i) = out.iter().position(|g| g.gid == gid) {
                self.push(
                    Diag::new(
                        codes::DUPLICATE_GROUP,
                        gid_field.value.span,
                        format!("gid {gid} is used twice"),
                    )
                    .label(format!("also the gid of `{}`", out[i].name))
                    .secondary(spans[i].1, "first used here"),
                );
                continue;
            }
            if let Some((image, other)) = base_chain(base).into_iter().find_map(|b| {
                b.groups
                    .iter()
                    .find(|g| g.name == name || g.gid == gid)
                    .map(|g| (b, g))
            }) {
                let (span, what) = if other.name == name {
                    (name_field.value.span, format!("group `{name}`"))
                } else {
                    (gid_field.value.span, format!("gid {gid}"))
                };
                self.push(
                    Diag::new(
                        codes::DUPLICATE_GROUP,
                        span,
                        format!("{what} is already declared by base image `{}`", image.name),
                    )
                    .label("declared again")
                    .note(format!(
                        "`{}` declares group `{}` with gid {}",
                        image.name, other.name, other.gid
                    )),
                );
                continue;
            }
            spans.push((name_field.value.span, gid_field.value.span));
            out.push(GroupSpec { name, gid, members });
        }
        out
    }

    pub(super) fn check_members(&mut self, field: &Field, accounts: &Accounts) {
        let V::List(list) = &field.value.kind else {
            return;
        };
        for value in &list.items {
            let V::Record(record) = &value.kind else {
                continue;
            };
            let Some(members) = record.fields.get("members") else {
                continue;
            };
            let V::List(names) = &members.value.kind else {
                continue;
            };
            for member in &names.items {
                let Some(name) = member.as_str() else {
                    continue;
                };
                if accounts.user(name).is_none() {
                    let names: Vec<&str> = accounts.users.iter().map(|u| u.0.as_str()).collect();
                    self.push(
                        Diag::new(
                            codes::UNKNOWN_USER,
                            member.span,
                            format!("unknown user `{name}` in `members`"),
                        )
                        .label("no such user")
                        .help(did_you_mean(name, names).unwrap_or_else(|| {
                            format!("declare it with `user \"{name}\" {{ uid = … }}`")
                        })),
                    );
                }
            }
        }
    }

    pub(super) fn users(
        &mut self,
        field: Option<&Field>,
        base: Option<&ImageSpec>,
    ) -> Vec<UserSpec> {
        let Some(field) = field else {
            return Vec::new();
        };
        let mut out: Vec<UserSpec> = Vec::new();
        let mut spans: Vec<(Span, Span)> = Vec::new();
        for value in self.records(field, "user") {
            let V::Record(record) = &value.kind else {
                continue;
            };
            self.unknown_fields(record, USER_FIELDS, "a `user` block", false);
            let name_field = self.required(record, value.span, "name", "a `user` block");
            let uid_field = self.required(record, value.span, "uid", "a `user` block");
            let name = name_field.and_then(|f| self.account_name(f, "user"));
            let uid = uid_field.and_then(|f| self.int_in(f, "uid", 0, MAX_ID));
            let get = |k: &str| record.fields.get(k);
            let gid = get("gid").map(|f| self.int_in(f, "gid", 0, MAX_ID));
            let home = get("home").map(|f| self.abs_path(f, "home"));
            let shell = get("shell").map(|f| self.abs_path(f, "shell"));
            let gecos = get("gecos").map(|f| self.gecos(f));
            let create_home = get("create_home").map(|f| self.bool(f, "create_home"));
            let (Some(name), Some(uid), Some(name_field), Some(uid_field)) =
                (name, uid, name_field, uid_field)
            else {
                continue;
            };
            let (Some(gid), Some(home), Some(shell), Some(gecos), Some(create_home)) = (
                gid.unwrap_or(Some(uid)),
                home.unwrap_or_else(|| {
                    Some(if uid == 0 {
                        "/root".to_owned()
                    } else {
                        format!("/home/{name}")
                    })
                }),
                shell.unwrap_or_else(|| Some("/sbin/nologin".to_owned())),
                gecos.unwrap_or_else(|| Some(name.clone())),
                create_home.unwrap_or(Some(true)),
            ) else {
                continue;
            };
            if let Some(i) = out.iter().position(|u| u.name == name) {
                self.push(
                    Diag::new(
                        codes::DUPLICATE_USER,
                        name_field.value.span,
                        format!("user `{name}` is declared twice"),
                    )
                    .label("second declaration")
                    .secondary(spans[i].0, "first declared here"),
                );
                continue;
            }
            if let Some(i) = out.iter().position(|u| u.uid == uid) {
                self.push(
                    Diag::new(
                        codes::DUPLICATE_USER,
                        uid_field.value.span,
                        format!("uid {uid} is used twice"),
                    )
                    .label(format!("also the uid of `{}`", out[i].name))
                    .secondary(spans[i].1, "first used here"),
                );
                continue;
            }
            if let Some((image, other)) = base_chain(base).into_iter().find_map(|b| {
                b.users
                    .iter()
                    .find(|u| u.name == name || u.uid == uid)
                    .map(|u| (b, u))
            }) {
                let (span, what) = if other.name == name {
                    (name_field.value.span, format!("user `{name}`"))
                } else {
                    (uid_field.value.span, format!("uid {uid}"))
                };
                self.push(
                    Diag::new(
                        codes::DUPLICATE_USER,
                        span,
                        format!("{what} is already declared by base image `{}`", image.name),
                    )
                    .label("declared again")
                    .note(format!(
                        "`{}` declares user `{}` with uid {}",
                        image.name, other.name, other.uid
                    )),
                );
                continue;
            }
            spans.push((name_field.value.span, uid_field.value.span));
            out.push(UserSpec {
                name,
                uid,
                gid,
                home,
                shell,
                gecos,
                create_home,
            });
        }
        out
    }

    fn gecos(&mut self, field: &Field) -> Option<String> {
        let gecos = self.string(field, "gecos")?;
        if gecos.contains([':', '\n', '\0']) {
            self.push(
                Diag::new(
                    codes::BAD_VALUE,
                    field.value.span,
                    "`gecos` cannot contain `:` or line breaks",
                )
                .label("would corrupt /etc/passwd"),
            );
            return None;
        }
        Some(gecos)
    }

    /// `run_as`: a name must be one of `accounts`, unless the image extends a registry image
    /// (whose `/etc/passwd` the composer checks the name against when it builds).
    pub(super) fn run_as(&mut self, field: &Field, accounts: &Accounts) -> Option<String> {
        let registry_base = accounts.registry_base;
        let text = match &field.value.kind {
            V::Int(n) => {
                if *n < 0 || *n > MAX_ID {
                    self.push(
                        Diag::new(
                            codes::BAD_RUN_AS,
                            field.value.span,
                            format!("uid {n} is out of range"),
                        )
                        .label(format!("uids are 0 to {MAX_ID}")),
                    );
                    return None;
                }
                return Some(n.to_string());
            }
            V::Str(s) => s.to_string(),
            _ => {
                self.mismatch(
                    field,
                    "run_as",
                    "a string",
                    Some("write `run_as = \"app\"` or `run_as = \"1000:1000\"`".into()),
                );
                return None;
            }
        };
        let (user, group) = match text.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (text.as_str(), None),
        };
        let bad = |why: String| {
            Diag::new(
                codes::BAD_RUN_AS,
                field.value.span,
                format!("bad `run_as` value `{text}`"),
            )
            .label(why)
        };
        let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        if user.is_empty()
            || group.is_some_and(str::is_empty)
            || group.is_some_and(|g| g.contains(':'))
        {
            self.push(
                bad("expected `user`, `uid`, `uid:gid` or `user:group`".into())
                    .help("write e.g. `run_as = \"app\"` or `run_as = \"1000:1000\"`"),
            );
            return None;
        }
        if numeric(user) {
            if user.parse::<i64>().map_or(true, |n| n > MAX_ID) {
                self.push(bad(format!("uids are 0 to {MAX_ID}")));
                return None;
            }
        } else if accounts.user(user).is_none() && !registry_base {
            let names: Vec<&str> = accounts.users.iter().map(|u| u.0.as_str()).collect();
            let help = did_you_mean(user, names).unwrap_or_else(|| {
                format!("declare it with `user \"{user}\" {{ uid = … }}` or give a numeric uid")
            });
            self.push(bad(format!("no user `{user}` in this image or its bases")).help(help));
            return None;
        }
        if let Some(group) = group {
            if numeric(group) {
                if group.parse::<i64>().map_or(true, |n| n > MAX_ID) {
                    self.push(bad(format!("gids are 0 to {MAX_ID}")));
                    return None;
                }
            } else if accounts.group(group).is_none() && !registry_base {
                let names: Vec<&str> = accounts.groups.iter().map(|g| g.0.as_str()).collect();
                let help = did_you_mean(group, names).unwrap_or_else(|| {
                    format!("declare it with `group \"{group}\" {{ gid = … }}`")
                });
                self.push(bad(format!("no group `{group}` in this image or its bases")).help(help));
                return None;
            }
        }
        Some(text)
    }
}
