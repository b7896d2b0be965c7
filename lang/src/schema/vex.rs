//! The `vex` field: OpenVEX files (relative to the declaring file) that `himg scan` applies to the
//! image. The files must exist; their contents are read by the scanner, not here.

use super::Check;
use crate::codes;
use crate::diagnostic::Diag;
use crate::loader::{EntryKind, outside_by_dots};
use crate::spec::*;
use crate::value::{Field, V};

impl Check<'_> {
    /// The base's VEX files, then the ones `field` lists.
    pub(super) fn vex(
        &mut self,
        field: Option<&Field>,
        base: Option<&ImageSpec>,
    ) -> Vec<SourcePath> {
        let mut out: Vec<SourcePath> = base.map(|b| b.vex.clone()).unwrap_or_default();
        let Some(field) = field else {
            return out;
        };
        let V::List(list) = &field.value.kind else {
            let help = match &field.value.kind {
                V::Str(s) => Some(format!("use a list: `vex = [{:?}]`", s.to_string())),
                _ => None,
            };
            self.mismatch(field, "vex", "a list of file paths", help);
            return out;
        };
        let declaring = self.cx.files.path(field.value.span.file);
        let mut own: Vec<SourcePath> = Vec::new();
        for item in &list.items {
            let f = Field {
                key_span: field.key_span,
                value: item.clone(),
            };
            let Some(text) = self.string(&f, "each item of `vex`") else {
                continue;
            };
            let span = item.span;
            if text.is_empty() || text.contains('\0') {
                self.push(
                    Diag::new(codes::BAD_PATH, span, "a VEX file must be a non-empty path")
                        .label("invalid path"),
                );
                continue;
            }
            if text.starts_with('/') {
                self.push(
                    Diag::new(
                        codes::ABSOLUTE_SOURCE,
                        span,
                        format!("VEX file `{text}` is absolute"),
                    )
                    .label("absolute path")
                    .help("keep VEX files in the project and name them relative to the .himg file"),
                );
                continue;
            }
            if !text.ends_with(".json") {
                self.push(
                    Diag::new(
                        codes::BAD_VEX,
                        span,
                        format!("VEX file `{text}` is not a `.json` file"),
                    )
                    .label("expected an OpenVEX JSON document")
                    .help("OpenVEX documents are JSON; name them like `vex/app.openvex.json`"),
                );
                continue;
            }
            let path = match declaring.parent().join(&text) {
                Ok(p) => p,
                Err(e) => {
                    self.push(
                        Diag::new(codes::BAD_PATH, span, e.to_string()).label("invalid path"),
                    );
                    continue;
                }
            };
            if let Some(diag) = outside_by_dots(&path, span, "VEX file", &text) {
                self.push(diag);
                continue;
            }
            if own.contains(&path) {
                self.push(
                    Diag::new(
                        codes::BAD_VEX,
                        span,
                        format!("VEX file `{text}` is listed twice"),
                    )
                    .label("repeated")
                    .help("list each VEX file once"),
                );
                continue;
            }
            match self.cx.loader.kind(&path) {
                Ok(Some(EntryKind::File { .. })) => own.push(path),
                Ok(None) => self.push(
                    Diag::new(
                        codes::MISSING_SOURCE,
                        span,
                        format!("VEX file `{text}` does not exist"),
                    )
                    .label(format!("looked for `{path}`"))
                    .help(format!(
                        "VEX files are relative to the directory of `{declaring}`"
                    )),
                ),
                Ok(Some(_)) => self.push(
                    Diag::new(
                        codes::MISSING_SOURCE,
                        span,
                        format!("VEX file `{text}` is not a regular file"),
                    )
                    .label(format!("`{path}` is a directory or a symlink"))
                    .help("name the VEX file itself"),
                ),
                Err(e) => self.push(e.diagnostic(&path, span, "VEX file")),
            }
        }
        for p in own {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }
}
