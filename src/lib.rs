//! himg: a declarative, Nix-style, reproducible OCI image composer.
//!
//! Data flows one way: `.himg` text is evaluated by [`himg_lang`] into image specs ([`load`]), compiled
//! into a derivation graph and realised in the content-addressed store ([`plan`], [`himg_store`]), and
//! written out as OCI images ([`oci`], [`output`]). [`ops`] holds each use-case (build, test, push,
//! promote…) once over these stages; [`cli`] parses arguments and calls it.

// Tests may unwrap: a panic is the failure report there.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod analysis;
pub mod builder;
pub mod cache;
pub mod cli;
pub mod config;
pub mod debian;
pub mod digest_cache;
pub mod image;
pub mod interrupt;
pub mod load;
pub mod oci;
pub mod ops;
pub mod output;
pub mod plan;
pub mod policy;
pub mod printer;
pub mod promote;
pub mod provenance;
pub mod registry;
pub mod sbom;
pub mod testing;
pub mod vuln;
