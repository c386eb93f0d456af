//! MCP, the Model Context Protocol, on top of the official Rust SDK (`rmcp`).
//!
//! `server.rs` is `codex mcp-server`: the agents offered to an MCP client as tools (and
//! `create_agent`, and read-only `read_file` / `grep` / `codebase_search` on the
//! workspace). It assembles and starts runs exactly as the run commands do
//! (`assembly::plan::assemble`), so budgets, policies and the audit log are the same. Its
//! session budget is `assembly::budget` (a pool owned by an actor), the text and error flag of
//! its results `outcome.rs`, and its transports (stdio, Streamable HTTP) and shutdown on
//! the end of input, SIGTERM and SIGINT `serve.rs`.
//!
//! `crate::mcp_client` is the other direction: MCP servers configured in `codex-actors.toml`,
//! started once per run, whose tools agents call as ordinary `Tool`s (plan:
//! `Access::Mcp("server.tool")`, decided by the policy and audited).
//!
//! The engine (`codex-actors`) knows nothing of MCP: it sees tools and accesses.

pub mod outcome;
pub mod serve;
pub mod server;
