//! From evaluated image specs to a graph of derivations, and from that graph to outputs in the store.
//!
//! Data flows one way: [`compile`] turns specs into a [`BuildGraph`] (every node has its derivation key
//! computed up front, which hashes every file the build reads), then [`realise`] walks the graph
//! top-down to find what the store already has and builds the rest bottom-up in parallel waves.

pub mod accounts;
mod compile;
mod config;
mod derivation;
pub mod dot;
mod error;
pub mod inputs;
mod realise;
mod steps;

pub use compile::{CompileOptions, compile};
pub use derivation::{
    ArchOutputs, BuildGraph, BuildStep, Derivation, ImageOutputs, LayerItem, LayerStep, NodeId,
    STEP_KINDS, Step,
};
pub use error::PlanError;
pub use realise::{
    BuildReport, Event, NodeOutcome, Realised, Substituter, realise, realise_with, rebuild,
};
pub use steps::failed_build_log;
