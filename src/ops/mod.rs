//! The use-cases behind the commands, each written once: build, lock, test, push, promote, scan….
//!
//! An operation takes a [`Session`] (store, project root, printer) and typed options, never clap
//! arguments; it prints only through the session's [`Printer`](crate::printer::Printer) and
//! returns what it did, so the command line, the tests and later orchestration (workspaces,
//! scheduled pipelines) call the same code. Operations compose: a build realises and writes, and
//! its caller decides whether to push to a cache or judge policies afterwards.

// An operation's error is built once per failed use-case: its size does not matter.
#![allow(clippy::result_large_err)]

pub mod affected;
pub mod audit;
pub mod build;
mod build_report;
pub mod builds;
pub mod cache;
pub mod compile;
pub mod config;
mod error;
pub mod inspect;
pub mod inventory;
pub mod keys;
pub mod lang;
pub mod lock;
pub mod packages;
pub mod pins;
pub mod promote;
pub mod provenance;
pub mod push;
pub mod registry;
mod session;
pub mod settings;
pub mod store;
pub mod target;
pub mod test;
pub mod vuln;
pub mod why;
pub mod workspace;

pub use error::Error;
pub use session::Session;
