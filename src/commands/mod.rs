//! The commands' behaviour; `cli` only parses.

pub mod agent_create;
pub mod agents;
pub mod audit;
pub mod changes;
pub mod gc;
pub mod policy;
pub mod resume;
pub mod run;
pub mod sandbox;
pub mod tasks;
pub mod worker;
