//! The application's wiring: how a run is put together from the workspace's definitions,
//! the command line's model flags and the engine. Everything here is shared by more than
//! one front end (the run commands, `codex resume`, `codex agent-create`, the MCP server
//! and delegation), so none of them imports another; the commands (`commands/`) only
//! parse arguments, call this module and print.
//!
//! - [`task`]: one agent to run and what its caller says about it.
//! - [`models`]: where the agents' models come from (a replay script or providers).
//! - [`plan`]: a task turned into the engine's `AgentPlan` (spec, model, tools), with the
//!   checks that need no model.
//! - [`toolbox`]: the run's sandbox and MCP servers (what the tools run under and with).
//! - [`isolation`]: the agents' git worktrees, and their changes recorded at the end.
//! - [`delegation`]: a `delegate` call turned into a child agent (in process or a child
//!   `codex mcp-server`).
//! - [`cluster`]: a run whose agents run on a cluster's workers (`--cluster`).
//! - [`drive`]: a run of assembled plans: the engine, progress, signals, the report, `-o`.
//! - [`run`]: all of the above for a list of tasks (`codex delegate`, `resume`).
//! - [`create`] and [`budget`]: a definition written by a model within a token pool
//!   (`codex agent-create`, the MCP tool `create_agent`, the MCP server's session budget).
//!
//! Dependencies point one way: `commands` and `mcp` (the server) import this module; it
//! imports the domain modules (definitions, providers, the MCP client, tools, worktrees)
//! and never a command.

pub mod budget;
pub mod cluster;
pub mod create;
pub mod delegation;
pub mod drive;
pub mod isolation;
pub mod models;
pub mod plan;
pub mod review;
pub mod run;
pub mod task;
pub mod toolbox;
