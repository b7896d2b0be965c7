//! Reading built images back: the one view of an image's files, packages and config that inspect, diff,
//! SBOM, policy checks, vulnerability scans and the test sandbox all share.

pub mod model;

pub use model::{FileEntry, FileKind, ImageView, InstalledPackage, LayerView};
