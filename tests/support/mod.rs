//! Hermetic fixtures for apt tests: signing keys, `.deb` files, signed repositories, and an
//! HTTP server on 127.0.0.1 with fault injection.
//!
//! Everything is generated in Rust (no gpg, dpkg-deb or network) and deterministic, so tests
//! can build a complete signed repository in milliseconds:
//!
//! ```ignore
//! let key = TestKey::generate("archive");
//! let deb = DebBuilder::new("hello", "1.0-1", "amd64").file("/usr/bin/hello", b"hi", 0o755).build()?;
//! let mut repo = RepoBuilder::new();
//! repo.sign_with(&key).suite("trixie").add("main", &deb);
//! let built = repo.write_temp()?;
//! let server = serve(built.root())?;   // server.base_url = http://127.0.0.1:PORT
//! ```
//!
//! This module depends on nothing else in the crate (only external crates), so it can live
//! in a test tree (`tests/support/`).

// Each test crate uses a different part of the fixture kit.
#![allow(unused_imports)]

pub mod deb;
pub mod key;
pub mod repo;
pub mod server;

pub use deb::{Compression, Deb, DebBuilder, EntryKind, RawEntry};
pub use key::{TestKey, TestKeyOptions};
pub use repo::{BuiltRepo, IndexFormat, RepoBuilder, SuiteSpec, publish, serve_fixture};
pub use server::{Request, TestServer, serve};
