//! Reading built images back: the one view of an image's files, packages and config that inspect, diff,
//! SBOM, policy checks, vulnerability scans and the test sandbox all share.
//!
//! ```text
//! layout dir | oci-archive | docker-archive ──ImageSource::open──▶ ImageSource
//!   ──images()──▶ ImageView per (image, architecture)      (blobs: verified sha256; layers streamed)
//!   ──extract_rootfs()──▶ unpacked directory               (same merge rules as the view)
//!   ──read_file()──▶ one file's bytes                      (checked against the view's sha256)
//! ```

mod blobs;
pub mod contents;
pub mod diff;
mod dpkg;
pub mod error;
mod extract;
pub mod inspect;
pub mod links;
mod merge;
pub mod model;
pub mod read;
pub mod scan;
pub mod secrets;
mod walk;

pub use contents::{FileContents, RootfsContents};
pub use diff::{DiffReport, diff};
pub use error::ImageError;
pub use inspect::{InspectReport, inspect};
pub use model::{ContentFacts, FileEntry, FileKind, ImageView, InstalledPackage, LayerView};
pub use read::{ImageSource, ManifestSummary, SourceKind};
