//! The commands' behaviour; `cli` only parses.

pub mod agents;
pub mod audit;
pub mod policy;
pub mod run;
pub mod tasks;
