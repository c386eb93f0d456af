//! MCP client: the tools of MCP servers (`[mcp_servers.NAME]` in `codex-actors.toml`)
//! offered to agents whose definitions list them in `tools.mcp`.
//!
//! The servers a run needs (those named by any of its agents' `tools.mcp` patterns) are
//! started once, before its agents are assembled: each as a child process speaking MCP on
//! stdio (rmcp's `TokioChildProcess`), within its startup timeout, and its tools listed
//! (only `enabled_tools`, if given). An agent gets an [`McpTool`] for every tool matching
//! one of its patterns (`server.tool`, `server.*`, `server`). The tool's plan is
//! `[Access::Mcp("server.tool")]`, so the PolicyActor decides and audits each call like any
//! other access; `invoke` calls the server under the tool timeout. The model sees the tool
//! as `server__tool` (provider tool names allow no dots). [`McpServers::shutdown`] stops
//! the servers when the run is over.
//!
//! `codex mcp-server` itself can be such a server (the sub-run has its own audit log and is
//! capped by that server's `--budget`; its tokens are not charged to the calling agent's
//! budget). The `delegate` tool (`crate::assembly::delegation`) is the metered way to delegate,
//! also over MCP. [`DEPTH_VAR`] bounds the nesting either way.
//!
//! Each server runs in the OS sandbox of the agents that use it, unless its config opts
//! out with a reason (see [`confine`]); how each one runs is recorded in the run's
//! audit log ([`McpServers::records`]).

pub mod confine;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use codex_actors::tool::Toolbox;
use codex_actors::{Access, Tool, ToolContext, ToolError, ToolOutput, ToolSpec};
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{Peer, RoleClient, ServiceExt};

use crate::providers::config::McpServerConfig;
use confine::{Confinement, Confiner};

/// Set for every MCP server codex starts: how many codex runs are above it. A codex that
/// is itself such a server (`codex mcp-server` configured as an MCP server: recursive
/// delegation) starts no MCP servers at [`MAX_DEPTH`], so delegation cannot recurse forever.
pub const DEPTH_VAR: &str = "CODEX_MCP_DEPTH";

/// The most nested codex runs that may start MCP servers.
pub const MAX_DEPTH: u32 = 3;

/// This process's depth (0 unless an MCP client that is codex started it).
pub fn depth() -> u32 {
    std::env::var(DEPTH_VAR)
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

/// Default time a server may take to start and list its tools.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time one tool call may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// One running server and its (enabled) tools.
struct Server {
    name: String,
    service: RunningService<RoleClient, ()>,
    tools: Vec<Arc<dyn Tool>>,
    /// Its private temporary directory in the sandbox, removed when it is dropped.
    _temp: Option<codex::sandbox::launch::CallTemp>,
}

/// The MCP servers of one run.
#[derive(Default)]
pub struct McpServers {
    servers: Vec<Server>,
    /// Configured servers that did not start, with why.
    failed: Vec<(String, String)>,
    /// The audit records of the servers' starts (their sandboxes).
    records: Vec<codex_actors::audit::AuditEvent>,
}

/// The server part of a `tools.mcp` pattern (`gh` of `gh.search` and `gh.*`).
fn server_of(pattern: &str) -> &str {
    pattern.split_once('.').map_or(pattern, |(s, _)| s)
}

/// Whether `pattern` (`server.tool`, `server.*` or `server`) covers `server.tool`.
fn covers(pattern: &str, server: &str, tool: &str) -> bool {
    match pattern.split_once('.') {
        None => pattern == server,
        Some((s, "*")) => s == server,
        Some((s, t)) => s == server && t == tool,
    }
}

impl McpServers {
    /// Starts the servers `patterns` name (each once). A named server that is not
    /// configured is an error (no agent runs: the configuration is wrong). One that does not
    /// start or cannot list its tools is kept as failed: the agents that need it end
    /// `failed` with the reason ([`Self::unavailable`]), the others run.
    ///
    /// `optional` patterns are those of agents the run's agents may delegate to: their
    /// servers are started too when configured, but a problem with them (not configured,
    /// too deep) only makes such a child unavailable.
    pub async fn start<'a>(
        configs: &std::collections::BTreeMap<String, McpServerConfig>,
        patterns: impl IntoIterator<Item = &'a String>,
        optional: impl IntoIterator<Item = &'a String>,
        workspace: &Path,
        stderr_dir: &Path,
        confiner: &Confiner,
    ) -> Result<Self> {
        let patterns: Vec<&String> = patterns.into_iter().collect();
        for p in &patterns {
            check_pattern(p)?;
        }
        let required: BTreeSet<&str> = patterns.iter().map(|p| server_of(p)).collect();
        let optional: BTreeSet<&str> = optional
            .into_iter()
            .filter(|p| check_pattern(p).is_ok())
            .map(|p| server_of(p))
            .filter(|name| !required.contains(name))
            .collect();
        if !patterns.is_empty() && depth() >= MAX_DEPTH {
            bail!(
                "this run is {} levels below the first codex ({DEPTH_VAR}), the most that may \
                 start MCP servers; an agent at this depth cannot use `tools.mcp`",
                depth()
            );
        }
        let mut servers = Vec::new();
        let mut failed = Vec::new();
        let mut records = Vec::new();
        for name in required {
            let config = configs.get(name).ok_or_else(|| {
                anyhow!(
                    "an agent lists MCP tools of `{name}`, but codex-actors.toml has no \
                     [mcp_servers.{name}]; add it (command, args) or remove the pattern"
                )
            })?;
            let confinement = confine(confiner, name, config, workspace);
            let record = confinement.record(name, confiner);
            match start_one(name, config, workspace, stderr_dir, confiner, confinement).await {
                Ok(server) => {
                    records.push(record);
                    servers.push(server);
                }
                Err(e) => failed.push((name.to_owned(), format!("{e:#}"))),
            }
        }
        for name in optional {
            let started = match configs.get(name) {
                None => Err(anyhow!("codex-actors.toml has no [mcp_servers.{name}]")),
                Some(_) if depth() >= MAX_DEPTH => Err(anyhow!(
                    "this run is {} levels below the first codex ({DEPTH_VAR}), too deep to start MCP servers",
                    depth()
                )),
                Some(config) => {
                    let confinement = confine(confiner, name, config, workspace);
                    let record = confinement.record(name, confiner);
                    start_one(name, config, workspace, stderr_dir, confiner, confinement)
                        .await
                        .map(|server| (server, record))
                }
            };
            match started {
                Ok((server, record)) => {
                    records.push(record);
                    servers.push(server);
                }
                Err(e) => failed.push((name.to_owned(), format!("{e:#}"))),
            }
        }
        Ok(McpServers {
            servers,
            failed,
            records,
        })
    }

    /// The audit records of the servers' starts: each one's sandbox, or why it has none
    /// (for the run's log, right after `run_started`).
    pub fn records(&self) -> Vec<codex_actors::audit::AuditEvent> {
        self.records.clone()
    }

    /// Why an agent whose `tools.mcp` are `patterns` cannot run: one of its servers did not
    /// start. `None` when all of them run.
    pub fn unavailable(&self, patterns: &[String]) -> Option<String> {
        unavailable(&self.failed, patterns)
    }

    /// The tools of these servers that `patterns` cover.
    pub fn tools_for(&self, patterns: &[String]) -> Toolbox {
        self.tools().tools_for(patterns)
    }

    /// Every tool of these servers, as a handle that outlives this borrow (for agents
    /// assembled while the run goes on: delegated ones). The tools stop working once the
    /// servers are shut down.
    pub fn tools(&self) -> McpTools {
        let tools = self
            .servers
            .iter()
            .flat_map(|s| s.tools.iter().map(|t| (s.name.clone(), Arc::clone(t))))
            .collect();
        McpTools {
            tools: Arc::new(tools),
            failed: Arc::new(self.failed.clone()),
        }
    }

    /// Stops every server.
    pub async fn shutdown(self) {
        for server in self.servers {
            if let Err(e) = server.service.cancel().await {
                tracing::debug!("MCP server `{}` did not stop cleanly: {e}", server.name);
            }
        }
    }
}

/// The tools of a run's MCP servers, by server, and the servers that did not start;
/// cheap to clone.
#[derive(Clone, Default)]
pub struct McpTools {
    tools: Arc<Vec<(String, Arc<dyn Tool>)>>,
    failed: Arc<Vec<(String, String)>>,
}

impl McpTools {
    /// See [`McpServers::unavailable`].
    pub fn unavailable(&self, patterns: &[String]) -> Option<String> {
        unavailable(&self.failed, patterns)
    }

    /// The tools that `patterns` cover.
    pub fn tools_for(&self, patterns: &[String]) -> Toolbox {
        let mut out: Toolbox = Vec::new();
        for (server, tool) in self.tools.iter() {
            let name = tool.spec().name;
            let bare = name.strip_prefix(&format!("{server}__")).unwrap_or(&name);
            if patterns.iter().any(|p| covers(p, server, bare)) {
                out.push(Arc::clone(tool));
            }
        }
        out
    }
}

/// Why `patterns` cannot be served: the first of their servers among `failed`.
fn unavailable(failed: &[(String, String)], patterns: &[String]) -> Option<String> {
    let (name, why) = failed
        .iter()
        .find(|(name, _)| patterns.iter().any(|p| server_of(p) == name))?;
    Some(format!(
        "MCP server `{name}`, which this agent's tools.mcp needs, did not start: {why}"
    ))
}

/// Where a server's stderr goes: `<stderr_dir>/mcp-<name>.stderr` (the run's directory),
/// never the terminal, where it would mix with the run's output. If that file cannot be
/// created, nowhere.
fn stderr_file(stderr_dir: &Path, name: &str) -> std::process::Stdio {
    let path = stderr_dir.join(format!("mcp-{name}.stderr"));
    let file = std::fs::create_dir_all(stderr_dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
    });
    match file {
        Ok(f) => f.into(),
        Err(e) => {
            tracing::debug!("{}: {e}; the server's stderr is discarded", path.display());
            std::process::Stdio::null()
        }
    }
}

/// How the server `name` runs; printed when it opted out of the sandbox.
fn confine(
    confiner: &Confiner,
    name: &str,
    config: &McpServerConfig,
    workspace: &Path,
) -> Confinement {
    let confinement = confiner.confinement(name, config, workspace);
    if let Some(warning) = confinement.warning(name) {
        eprintln!("{warning}");
    }
    confinement
}

/// Starts one server and lists its tools, within its startup timeout.
async fn start_one(
    name: &str,
    config: &McpServerConfig,
    workspace: &Path,
    stderr_dir: &Path,
    confiner: &Confiner,
    confinement: Confinement,
) -> Result<Server> {
    let cwd = config.cwd.as_deref().unwrap_or(workspace);
    let (mut cmd, temp) = confiner
        .command(&confinement, config, cwd)
        .map_err(|e| anyhow!("{e}"))?;
    cmd.envs(&config.env)
        .env(DEPTH_VAR, (depth() + 1).to_string())
        .current_dir(cwd);
    let timeout = config
        .startup_timeout_secs
        .map_or(STARTUP_TIMEOUT, Duration::from_secs);
    let startup = async {
        // rmcp's `TokioChildProcess::new` makes stderr inherit the terminal, whatever the
        // command says: the builder is the way to set it.
        let (transport, _) = TokioChildProcess::builder(cmd)
            .stderr(stderr_file(stderr_dir, name))
            .spawn()
            .with_context(|| format!("cannot run `{}`", config.command))?;
        let service = ().serve(transport).await.context("no MCP handshake")?;
        let listed = service
            .list_all_tools()
            .await
            .context("cannot list its tools")?;
        anyhow::Ok((service, listed))
    };
    let (service, listed) = tokio::time::timeout(timeout, startup)
        .await
        .map_err(|_| anyhow!("did not start within {} s", timeout.as_secs()))
        .and_then(|r| r)
        .with_context(|| {
            format!("MCP server `{name}` (check [mcp_servers.{name}] in codex-actors.toml)")
        })?;
    let call_timeout = config
        .tool_timeout_secs
        .map_or(TOOL_TIMEOUT, Duration::from_secs);
    let tools = listed
        .into_iter()
        .filter(|t| {
            config
                .enabled_tools
                .as_ref()
                .is_none_or(|e| e.iter().any(|n| n == t.name.as_ref()))
        })
        .map(|t| {
            Arc::new(McpTool {
                server: name.to_owned(),
                tool: t.name.to_string(),
                description: t.description.as_deref().unwrap_or("").to_owned(),
                schema: serde_json::Value::Object((*t.input_schema).clone()),
                peer: service.peer().clone(),
                timeout: call_timeout,
            }) as Arc<dyn Tool>
        })
        .collect();
    Ok(Server {
        name: name.to_owned(),
        service,
        tools,
        _temp: temp,
    })
}

/// One tool of an MCP server, as an agent's tool.
pub struct McpTool {
    server: String,
    tool: String,
    description: String,
    schema: serde_json::Value,
    peer: Peer<RoleClient>,
    timeout: Duration,
}

impl McpTool {
    /// `server.tool`: what the policy matches.
    fn qualified(&self) -> String {
        format!("{}.{}", self.server, self.tool)
    }
}

#[async_trait::async_trait]
impl Tool for McpTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: format!("{}__{}", self.server, self.tool),
            description: format!("(MCP server `{}`) {}", self.server, self.description),
            parameters: self.schema.clone(),
        }
    }

    fn plan(
        &self,
        arguments: &serde_json::Value,
        _: &ToolContext,
    ) -> Result<Vec<Access>, ToolError> {
        if !(arguments.is_object() || arguments.is_null()) {
            return Err(ToolError::new("the arguments must be a JSON object"));
        }
        Ok(vec![Access::Mcp(self.qualified())])
    }

    async fn invoke(
        &self,
        arguments: serde_json::Value,
        approved: &[Access],
        _: &ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        if approved != [Access::Mcp(self.qualified())] {
            return Err(ToolError::new(
                "internal: the approved plan is not this tool's",
            ));
        }
        let mut params = CallToolRequestParams::new(self.tool.clone());
        if let serde_json::Value::Object(args) = arguments {
            params = params.with_arguments(args);
        }
        let result = tokio::time::timeout(self.timeout, self.peer.call_tool(params))
            .await
            .map_err(|_| {
                ToolError::new(format!(
                    "`{}` did not answer within {} s",
                    self.qualified(),
                    self.timeout.as_secs()
                ))
            })?
            .map_err(|e| ToolError::new(format!("`{}` failed: {e}", self.qualified())))?;
        let mut text: Vec<String> = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        if text.is_empty() {
            if let Some(v) = &result.structured_content {
                text.push(v.to_string());
            }
        }
        let text = text.join("\n");
        if result.is_error == Some(true) {
            return Err(ToolError::new(format!("`{}`: {text}", self.qualified())));
        }
        Ok(ToolOutput::text(text))
    }
}

/// Refuses `tools.mcp` patterns that name no tool (`.x`, `a.`), before anything starts.
pub fn check_pattern(pattern: &str) -> Result<()> {
    let ok = match pattern.split_once('.') {
        None => !pattern.is_empty(),
        Some((s, t)) => !s.is_empty() && !t.is_empty(),
    };
    if !ok {
        bail!("tools.mcp: `{pattern}` is not `server.tool`, `server.*` or `server`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_cover_a_tool_a_server_or_one_tool() {
        assert!(covers("gh.search", "gh", "search"));
        assert!(!covers("gh.search", "gh", "delete"));
        assert!(covers("gh.*", "gh", "delete"));
        assert!(covers("gh", "gh", "delete"));
        assert!(!covers("ghx.*", "gh", "search"));
        assert_eq!(server_of("gh.*"), "gh");
        assert!(check_pattern(".x").is_err() && check_pattern("gh.*").is_ok());
    }
}
