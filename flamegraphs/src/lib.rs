//! Profiles as folded stacks, charged to named boxes, drawn as flamegraphs.
//!
//! The pipeline, one module per step: [`script`] validates `perf script` text line by line;
//! [`profile`] turns its events into on-CPU and off-CPU folded stacks (folding is inferno's perf
//! collapser, fed by [`fold::StackFolder`], names cleaned by [`symbols`]); [`rules`] maps frames
//! and stacks to boxes; [`attribution`] totals the boxes; [`svg`] draws plain and differential
//! flamegraphs with each frame's box in its tooltip.
pub mod attribution;
pub mod fold;
pub mod profile;
pub mod rules;
pub mod script;
pub mod svg;
pub mod symbols;

pub use attribution::{attribute, Attribution, BoxTotal};
pub use fold::{diff, DiffRow, Folded, FoldedError, StackFolder};
pub use profile::{from_script, from_script_where, Profile};
pub use rules::{Classifier, Level, LockKind, Rules, RulesError, CALLER_UNKNOWN, OTHER};
pub use script::{Event, Frame, ScriptError};
