//! The evaluator's resource limits. A `.himg` file may come from anyone (a pull request): whatever
//! it computes, evaluation ends quickly, in bounded memory, with a diagnostic naming the limit.

/// How deeply evaluation may recurse (nested expressions plus function calls). Unoptimised builds use
/// about 3.5 KiB of stack per level, so this stays well inside a 2 MiB thread stack.
pub(crate) const MAX_EVAL_DEPTH: usize = 200;

/// How deeply lists and records may nest inside each other. Keeps every recursive walk over values
/// (comparison, dropping) far from the stack limit.
pub(crate) const MAX_VALUE_DEPTH: usize = 200;

/// The longest string a value may hold, in bytes (16 MiB).
pub(crate) const MAX_STRING_BYTES: usize = 16 << 20;

/// The most items a list may hold.
pub(crate) const MAX_LIST_ITEMS: usize = 100_000;

/// The most parameters a function may declare.
pub(crate) const MAX_PARAMS: usize = 255;

/// The work one evaluation may do, in steps: each expression evaluated is a step, and so is each
/// value compared by `==`, each list item or record field copied by `+` or `//`, each image in a
/// bare `images`, and every [`BYTES_PER_STEP`] bytes of a string built. A file of 20,000 small
/// images stays far below it.
pub(crate) const MAX_STEPS: u64 = 20_000_000;

/// The most images and builds one image or build may embed, counting repeats: itself, its `from`
/// chain, each build it copies and, for a build, its environment and the builds it takes sources
/// from, each with everything it embeds. A spec holds copies of what it embeds, so without this
/// bound builds that each use the previous one twice would grow exponentially.
pub(crate) const MAX_SPEC_NODES: u64 = 10_000;

/// String bytes built per step (so strings built in one evaluation total at most 320 MiB).
pub(crate) const BYTES_PER_STEP: u64 = 16;
