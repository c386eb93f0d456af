//! MCP, the Model Context Protocol, on top of the official Rust SDK (`rmcp`).
//!
//! `server.rs` is `codex mcp-server`: the agents offered to an MCP client as tools (and
//! `create_agent`, and read-only `read_file` / `grep` / `codebase_search` on the
//! workspace). It assembles and starts runs exactly as the run commands do
//! (`commands::run::assemble`), so budgets, policies and the audit log are the same. Its
//! session budget is `budget.rs` (a pool owned by an actor), the text and error flag of
//! its results `outcome.rs`, and its transports (stdio, Streamable HTTP) and shutdown on
//! the end of input, SIGTERM and SIGINT `serve.rs`.
//!
//! `client.rs` is the other direction: MCP servers configured in `codex-actors.toml`,
//! started once per run, whose tools agents call as ordinary `Tool`s (plan:
//! `Access::Mcp("server.tool")`, decided by the policy and audited), each in the OS
//! sandbox of the agents that use it (`confine.rs`).
//!
//! The engine (`codex-actors`) knows nothing of MCP: it sees tools and accesses.

pub mod budget;
pub mod client;
pub mod confine;
pub mod outcome;
pub mod serve;
pub mod server;
