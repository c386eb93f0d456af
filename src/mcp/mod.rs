//! MCP, the Model Context Protocol, on top of the official Rust SDK (`rmcp`).
//!
//! `server.rs` is `codex mcp-server`: the agents offered to an MCP client as tools. It
//! assembles and starts runs exactly as the run commands do (`commands::run::assemble`),
//! so budgets, policies and the audit log are the same; the engine (`codex-actors`) knows
//! nothing of MCP.

pub mod server;
