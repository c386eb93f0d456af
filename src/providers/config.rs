//! The configuration file, `$CODEX_HOME/codex-actors.toml` (default `~/.codex`), and
//! `-c key=value` overrides. This project never reads or writes other tools' files
//! (such as a `config.toml` in the same directory).
//!
//! ```toml
//! provider = "local"            # the default provider
//! model = "qwen2.5-coder:7b"    # the default model
//!
//! [providers.local]
//! base_url = "http://127.0.0.1:8080/v1"
//! wire_api = "chat"             # "responses" | "chat" | "anthropic"
//! api_key_env = "LOCAL_API_KEY" # optional: no key when absent
//! headers = { "X-Title" = "codex" }
//! max_retries = 4
//! request_timeout_secs = 600
//! stream_idle_timeout_secs = 120
//! context_window = 32768        # tokens per request (default: the model's, when known)
//! first_byte_timeout_secs = 60  # until the server starts answering
//! max_concurrency = 4           # requests in flight at once, over all agents
//! requests_per_minute = 60
//! ```
//!
//! A table named like a preset (`[providers.openai]`) overrides that preset field by
//! field. Overrides are dotted keys into the file (`-c providers.local.base_url=...`),
//! applied before the file is checked; a value is read as TOML when it parses as one
//! (`-c providers.local.max_retries=2`), else as a string. Unknown keys are errors, so a
//! typo is not silently ignored.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::protocol::WireApi;

/// The config file's name under `$CODEX_HOME`.
pub const FILE_NAME: &str = "codex-actors.toml";

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The default provider.
    pub provider: Option<String>,
    /// The default model.
    pub model: Option<String>,
    /// Named providers (new ones, or overrides of presets).
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// `[agent_create]`: what `codex agent-create` may let a generated agent do.
    #[serde(default)]
    pub agent_create: AgentCreateConfig,
    /// `[mcp_servers.NAME]`: MCP servers whose tools agents may call (`tools.mcp`).
    #[serde(default)]
    pub mcp_servers: BTreeMap<String, McpServerConfig>,
    /// `[sandbox]`: the OS sandbox of agents' programs.
    #[serde(default)]
    pub sandbox: codex::sandbox::SandboxConfig,
    /// `[worktrees]`: where isolated agents' worktrees go, and how long `codex gc` keeps
    /// them.
    #[serde(default)]
    pub worktrees: crate::worktree::WorktreesConfig,
    /// `[cluster]`: the NATS server and cluster of `--cluster` and `codex worker`.
    #[serde(default)]
    pub cluster: ClusterConfig,
}

/// `[cluster]` of the config file: the NATS server and cluster of `--cluster` and
/// `codex worker` (see `crate::cluster`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The NATS server (`nats://host:4222`); `--cluster` wins.
    pub url: Option<String>,
    /// The cluster's name: coordinators and workers of one cluster share a queue (default
    /// `default`).
    pub name: Option<String>,
    /// How long a claimed attempt may be silent before it is failed as lost (`10s`).
    pub silence_limit: Option<String>,
}

/// `[mcp_servers.NAME]`: how to start one MCP server (stdio).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// The program to run.
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables set for it (on top of codex's environment).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Its working directory (default: the workspace root).
    pub cwd: Option<std::path::PathBuf>,
    /// How long it may take to start and list its tools (default 10 s).
    pub startup_timeout_secs: Option<u64>,
    /// How long one tool call may take (default 60 s).
    pub tool_timeout_secs: Option<u64>,
    /// If given, only these of its tools are offered.
    pub enabled_tools: Option<Vec<String>>,
    /// Whether it runs in the OS sandbox of the agents that use it (default: yes; see
    /// `crate::mcp::confine`). `false` needs [`Self::sandbox_reason`].
    #[serde(default = "yes")]
    pub sandbox: bool,
    /// Why it must run with codex's own rights (required with `sandbox = false`; printed
    /// when the run starts and recorded in its audit log).
    pub sandbox_reason: Option<String>,
    /// Files or trees outside the workspace it may read in its sandbox (its installation:
    /// a virtualenv, a `node_modules`), besides the files its `command` and `args` name.
    #[serde(default)]
    pub sandbox_read: Vec<std::path::PathBuf>,
}

fn yes() -> bool {
    true
}

impl Default for McpServerConfig {
    fn default() -> Self {
        Self {
            command: String::new(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            startup_timeout_secs: None,
            tool_timeout_secs: None,
            enabled_tools: None,
            sandbox: true,
            sandbox_reason: None,
            sandbox_read: Vec::new(),
        }
    }
}

impl McpServerConfig {
    /// Refuses `sandbox = false` without a reason: running a server with codex's own
    /// rights is a decision someone must have written down.
    pub fn check(&self, name: &str) -> Result<()> {
        let reason = self.sandbox_reason.as_deref().map(str::trim).unwrap_or("");
        if !self.sandbox && reason.is_empty() {
            bail!(
                "[mcp_servers.{name}] sets `sandbox = false` without a reason: add \
                 `sandbox_reason = \"...\"` saying why this server must run with codex's own \
                 rights (it is printed when a run starts and recorded in its audit log), or \
                 remove `sandbox = false`"
            );
        }
        Ok(())
    }
}

/// `[agent_create]`: permissions a generated definition may keep. Both default to `false`:
/// a model-written agent gets no shell and no network unless this file allows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentCreateConfig {
    /// Keep `tools.shell.exec`.
    #[serde(default)]
    pub allow_shell: bool,
    /// Keep `tools.net.allow` and `policies.permissions.network`.
    #[serde(default)]
    pub allow_network: bool,
}

/// `[providers.<name>]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The API's base URL (the protocol adds its path).
    pub base_url: Option<String>,
    /// The environment variable holding the key; absent: no key.
    pub api_key_env: Option<String>,
    /// The protocol (default for new providers: `chat`).
    pub wire_api: Option<WireApi>,
    /// Extra headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Retries after the first try.
    pub max_retries: Option<usize>,
    /// Total time limit of one request, streaming included.
    pub request_timeout_secs: Option<u64>,
    /// The longest a stream may go without an event.
    pub stream_idle_timeout_secs: Option<u64>,
    /// The longest the server may take to start answering a request.
    pub first_byte_timeout_secs: Option<u64>,
    /// Requests in flight at once over all agents on this provider.
    pub max_concurrency: Option<usize>,
    /// Request starts per minute over all agents on this provider.
    pub requests_per_minute: Option<u32>,
    /// The default model of this provider (before the file's `model`).
    pub model: Option<String>,
    /// The context window of its models, in tokens (prompt and output): agents whose
    /// definition sets no `policies.context.max_tokens` keep their requests under it.
    /// Default: the model's known window (OpenAI and Anthropic models), else none.
    pub context_window: Option<u64>,
}

impl Config {
    /// Reads `<home>/codex-actors.toml` (missing: empty) and applies `overrides`.
    pub fn load(home: Option<&Path>, overrides: &[String]) -> Result<Self> {
        let path = home.map(|h| h.join(FILE_NAME));
        let mut table = match &path {
            Some(p) if p.is_file() => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("{} is not valid TOML", p.display()))?
            }
            _ => toml::Table::new(),
        };
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        let origin = path
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| FILE_NAME.to_owned());
        let config = Config::deserialize(toml::Value::Table(table))
            .with_context(|| format!("{origin} (with the -c overrides): invalid configuration"))?;
        for (name, server) in &config.mcp_servers {
            server
                .check(name)
                .with_context(|| format!("{origin}: invalid configuration"))?;
        }
        Ok(config)
    }
}

/// Sets `key=value` (a dotted key) in `table`.
pub fn apply_override(table: &mut toml::Table, setting: &str) -> Result<()> {
    let Some((key, value)) = setting.split_once('=') else {
        bail!("-c {setting}: expected key=value, for example -c providers.local.base_url=http://127.0.0.1:8080/v1");
    };
    let parts: Vec<&str> = key.trim().split('.').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        bail!("-c {setting}: the key `{key}` has an empty part");
    }
    let value = parse_value(value.trim());
    let (last, path) = parts.split_last().expect("split gives one part at least");
    let mut at = table;
    for part in path {
        let entry = at
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = match entry {
            toml::Value::Table(t) => t,
            _ => bail!("-c {setting}: `{part}` is a value, not a table"),
        };
    }
    at.insert(last.to_string(), value);
    Ok(())
}

/// A TOML value if `text` is one (`2`, `true`, `"x"`, `{ a = "b" }`), else a string.
fn parse_value(text: &str) -> toml::Value {
    format!("v = {text}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_overrides_combine() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join(FILE_NAME),
            "provider = \"local\"\n[providers.local]\nbase_url = \"http://a/v1\"\nwire_api = \"chat\"\n",
        )
        .unwrap();
        let overrides = [
            "providers.local.base_url=http://127.0.0.1:8080/v1".to_owned(),
            "providers.local.max_retries=2".to_owned(),
            "model=qwen".to_owned(),
        ];
        let config = Config::load(Some(home.path()), &overrides).unwrap();
        let local = &config.providers["local"];
        assert_eq!(local.base_url.as_deref(), Some("http://127.0.0.1:8080/v1"));
        assert_eq!(local.max_retries, Some(2));
        assert_eq!(local.wire_api, Some(WireApi::Chat));
        assert_eq!(config.model.as_deref(), Some("qwen"));
        assert_eq!(config.provider.as_deref(), Some("local"));
    }

    #[test]
    fn typos_and_malformed_overrides_are_errors() {
        let e = Config::load(None, &["providers.x.base_ur=http://a".to_owned()]).unwrap_err();
        assert!(format!("{e:#}").contains("base_ur"), "{e:#}");
        let e = Config::load(None, &["provider".to_owned()]).unwrap_err();
        assert!(e.to_string().contains("key=value"), "{e}");
        let e = Config::load(None, &["providers.x.wire_api=grpc".to_owned()]).unwrap_err();
        assert!(format!("{e:#}").contains("grpc"), "{e:#}");
    }

    #[test]
    fn no_file_is_an_empty_config() {
        let home = tempfile::tempdir().unwrap();
        assert_eq!(
            Config::load(Some(home.path()), &[]).unwrap(),
            Config::default()
        );
    }
}
