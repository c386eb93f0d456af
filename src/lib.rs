//! The parts of the `codex` application that integration tests drive directly: the tools.
//!
//! The binary (`src/main.rs`) holds the command line, definitions, providers and output;
//! the tools live in this small library so `tests/security.rs` can run the real tools
//! through plan → policy → invoke without going through a model.

pub mod sandbox;
pub mod tools;
