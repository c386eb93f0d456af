//! Agent definitions (YAML): schema, loading, validation, and conversion to the engine's
//! [`codex_actors::AgentSpec`].
//!
//! # Files and layers
//!
//! A definition is one YAML file (see [`schema::AgentDefinition`] for the fields). The
//! [`Catalog`] reads three layers, a later one overriding an earlier one by the `name` inside
//! the file (never the file name): the bundled definitions (`agents/*.yaml` of this
//! repository, embedded in the binary), `$CODEX_HOME/agents/*.yaml` (default `~/.codex`),
//! and `<workspace>/.codex/agents/*.yaml`.
//!
//! # Errors and warnings
//!
//! A malformed file is an error naming the file, line, column and field
//! (`agents/foo.yaml:7:10: field `budget`: invalid type: ...`); a missing or invalid `name`,
//! a name used twice in one directory, and a permission pattern that does not compile are
//! errors too. No broken file is ever skipped. Unknown fields are warnings (file and field
//! path), returned to the caller rather than printed.
//!
//! # From definition to permissions
//!
//! [`AgentDefinition::permissions`] maps a definition to [`codex_actors::Permissions`]:
//!
//! - **read**: `policies.permissions.filesystem` if present; else `**` if `tools.fs.read` is
//!   true; else nothing.
//! - **write**: the `tools.fs.write` list; `true` means the same set as read; `false` or
//!   absent means nothing.
//! - **network**: `tools.net.allow` followed by `policies.permissions.network` (duplicates
//!   dropped).
//! - **exec**: `tools.shell.exec`.
//! - **mcp**: `tools.mcp` (`server.tool`, `server.*`; matched by the engine, no MCP tool is
//!   offered yet).
//!
//! Read and write entries are normalised: a leading `./` is dropped, `.` means `**`, and an
//! entry without glob characters (`artifacts`, `./artifacts/`) becomes `artifacts/**`, which
//! the engine's matcher treats as the entry itself and everything below it. Absolute paths and
//! `..` are rejected.
//!
//! The tools offered to the model follow from the permissions ([`offered_tools`]):
//! `read_file`, `list_dir`, `grep`, `find_files` and `codebase_search` if anything may be
//! read; `write_file` and `apply_patch` if anything may be written; `shell` if
//! `tools.shell.exec` names a program; `web_fetch` if a network pattern is allowed.
//! `tools.mcp` is matched by the policy but offers no tool yet.
//!
//! [`AgentDefinition::to_spec`] builds the spec for a run: command-line values override the
//! definition's; defaults are a budget of [`DEFAULT_BUDGET`] tokens, [`DEFAULT_MAX_TURNS`]
//! turns and [`DEFAULT_MAX_OUTPUT_TOKENS`] output tokens per turn.

pub mod bundled;
pub mod convert;
pub mod deadline;
pub mod loader;
pub mod parse;
pub mod schema;
pub mod suggest;

#[allow(unused_imports)] // the CLI's API; unused until the commands are wired
pub use convert::{
    normalize_scope, offered_tools, DEFAULT_BUDGET, DEFAULT_MAX_OUTPUT_TOKENS, DEFAULT_MAX_TURNS,
};
#[allow(unused_imports)]
pub use deadline::{format_deadline, parse_deadline, parse_deadline_flag, Deadline};
pub use loader::{
    default_codex_home, discover, duplicate_names, load_file, load_source, Catalog,
    LoadedDefinition, Source,
};
#[allow(unused_imports)]
pub use parse::{parse_definition, Parsed};
pub use schema::{AgentDefinition, DelegateVia, WriteAccess};
