//! Hardening policies: named baselines of rules checked against a built image, with waivers that
//! expire. [`rules`] defines each rule and finds its violations in an image; [`facts`] gathers
//! those of every parameter-free rule once (a cacheable record); [`baseline`] names the rule sets;
//! [`waiver`] matches exceptions and judges their dates; [`report`] evaluates a policy over facts
//! into a [`Report`] (what failed, what was waived, which waivers are in force).
//!
//! Policies are not image content: nothing here changes a digest.

pub mod baseline;
pub mod facts;
pub mod report;
pub mod rules;
pub mod waiver;

pub use baseline::Policy;
pub use facts::Facts;
pub use report::{Finding, Report, evaluate};
pub use rules::Rule;
pub use waiver::Date;

#[cfg(test)]
mod tests;
