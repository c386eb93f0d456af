//! The commands' behaviour; `cli` only parses.

pub mod agents;
pub mod policy;
pub mod run;
pub mod tasks;
