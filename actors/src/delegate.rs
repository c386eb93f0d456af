//! Recursive delegation: an agent hands a goal to another agent with the [`DelegateTool`].
//!
//! The child runs under the same run supervisor, as a slot of the same run:
//!
//! - its budget is **carved** out of what its parent can still reserve
//!   ([`crate::budget::BudgetLedger::carve`]), so it can never spend more than the parent
//!   had, the run's total never grows, and what it spends counts as its parent's spending;
//! - its permissions are the **intersection** of its parent's and its own
//!   ([`crate::policy::PolicyRules::within`]);
//! - the **depth** is capped ([`DEFAULT_MAX_DEPTH`] unless [`crate::RunConfig`] says
//!   otherwise): the run's own agents are at depth 0, their children at 1;
//! - when its parent's attempt ends for any reason (an answer, a crash, a cancellation, a
//!   deadline), the child is **cancelled**;
//! - its audit records carry its parent and depth, and its name says its lineage:
//!   `lead/test-gen#1` is the first child `lead` delegated to `test-gen`
//!   ([`crate::identity::AgentName`]).
//!
//! The engine knows nothing of definition files or providers, so turning a request into a
//! runnable child is the application's job: an [`AgentResolver`] returns a [`ChildPlan`]
//! with the child's own spec and either a model and tools (in-process) or an
//! [`ExternalAgent`] that runs it elsewhere, such as a child `codex mcp-server` process.
//! Either way the budget, policy, depth and cancellation rules above are the engine's.
//!
//! The tool reaches the supervisor through the [`Delegate`] trait object in its
//! [`ToolContext`] (the protocol's `DelegatePort`), never through the supervisor itself.
//! The tool call waits for the child's report. Every wait has a bound: the child has a
//! deadline (its own, or [`DEFAULT_CHILD_DEADLINE`]), the supervisor ends it when that
//! passes, and the tool waits that long plus [`REPLY_GRACE`].

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::model::{Model, ToolSpec};
use crate::report::{AgentReport, AgentStatus};
use crate::spec::AgentSpec;
use crate::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
pub use crate::tool::{Delegate, DelegateRequest};

/// How deep delegation may go unless the run says otherwise.
pub const DEFAULT_MAX_DEPTH: u32 = 3;

/// The deadline of a child whose request and definition give none.
pub const DEFAULT_CHILD_DEADLINE: Duration = Duration::from_secs(3600);

/// The longest deadline a `delegate` call may ask for: a day.
pub const MAX_DEADLINE_SECS: u64 = 24 * 3600;

/// How much longer than the child's deadline the `delegate` tool waits for its report.
pub const REPLY_GRACE: Duration = Duration::from_secs(60);

/// What the resolver knows about the delegating agent.
#[derive(Debug, Clone)]
pub struct ParentInfo {
    /// The delegating agent's name in the run.
    pub name: String,
    /// Its scope.
    pub scope: String,
    /// The child's depth (the parent's plus one).
    pub depth: u32,
    /// The child's name in the run (`parent/agent#n`), for what the application keeps
    /// per child (such as its worktree).
    pub child: String,
}

/// A child ready to run: its own spec (not yet narrowed by its parent) and how it runs.
pub struct ChildPlan {
    /// The child as its definition and the request describe it. Its `name` is replaced by
    /// the run's name for the child, its `budget` by the carved envelope.
    pub spec: AgentSpec,
    /// Where it runs.
    pub runner: ChildRunner,
}

/// Where a child runs.
pub enum ChildRunner {
    /// In this process, under the run supervisor, like any agent of the run.
    InProcess {
        /// Its model.
        model: Arc<dyn Model>,
        /// Its tools (those its spec enables).
        tools: Vec<Arc<dyn Tool>>,
    },
    /// Somewhere else (a child `codex mcp-server`). The engine reserves the whole envelope
    /// while it runs and charges the usage it reports.
    External(Arc<dyn ExternalAgent>),
}

impl ChildRunner {
    /// `in-process`, or the external agent's [`ExternalAgent::transport`], for the audit
    /// log.
    pub fn transport(&self) -> &'static str {
        match self {
            ChildRunner::InProcess { .. } => "in-process",
            ChildRunner::External(external) => external.transport(),
        }
    }
}

/// Turns a `delegate` request into a runnable child. Implemented by the application, which
/// knows the definitions and the providers.
#[async_trait::async_trait]
pub trait AgentResolver: Send + Sync + 'static {
    /// The child for `request`, or a message for the delegating model saying what is wrong
    /// (an unknown agent, a scope that does not exist).
    async fn resolve(
        &self,
        request: &DelegateRequest,
        parent: &ParentInfo,
    ) -> Result<ChildPlan, String>;
}

/// How an agent run elsewhere ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalOutcome {
    /// Its status.
    pub status: AgentStatus,
    /// Its final answer.
    pub final_message: Option<String>,
    /// Why it did not complete.
    pub error: Option<String>,
    /// Tokens it used: charged to its account (beyond the envelope, as an overrun).
    pub tokens_used: u64,
    /// Workspace-relative files it wrote.
    pub artifacts: Vec<String>,
}

/// An agent run outside this process.
#[async_trait::async_trait]
pub trait ExternalAgent: Send + Sync + 'static {
    /// Runs `spec` (whose `budget` is the most it may spend) at delegation depth `depth`.
    /// `Err` is a failure of the transport (the process died): the supervisor may restart
    /// the attempt. Dropping the future must cancel the run.
    async fn run(&self, spec: &AgentSpec, depth: u32) -> Result<ExternalOutcome, String>;

    /// How it runs, in a word, for the audit log (`mcp` for a child `codex mcp-server`).
    fn transport(&self) -> &'static str {
        "external"
    }
}

/// The `delegate` tool: hands a goal to another agent and returns its report. Offered to
/// agents whose permissions name agents they may delegate to; each call is decided by the
/// policy as [`Access::Delegate`].
#[derive(Debug, Default, Clone, Copy)]
pub struct DelegateTool;

/// The tool's name.
pub const DELEGATE_TOOL: &str = "delegate";

#[async_trait::async_trait]
impl Tool for DelegateTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: DELEGATE_TOOL.into(),
            description: "Delegate a goal to another agent and wait for its report. Its budget \
                is carved out of yours (what it spends, you spend) and it may do only what \
                both of you may do. Returns JSON: status, final_message, tokens_used, \
                artifacts, error."
                .into(),
            parameters: serde_json::json!({
                "type": "object",
                "properties": {
                    "agent": {"type": "string", "description": "The agent to delegate to, by name."},
                    "goal": {"type": "string", "description": "What it should achieve."},
                    "scope": {"type": "string", "description": "The workspace subtree it works on (default: yours)."},
                    "budget": {"type": "integer", "description": "Its token budget, taken from yours (default: its definition's)."},
                    "deadline_secs": {"type": "integer", "description": "Its wall-clock limit in seconds (default: its definition's, else one hour)."}
                },
                "required": ["agent", "goal"],
                "additionalProperties": false
            }),
        }
    }

    fn plan(
        &self,
        arguments: &serde_json::Value,
        _ctx: &ToolContext,
    ) -> Result<Vec<Access>, ToolError> {
        let request = parse(arguments)?;
        Ok(vec![Access::Delegate(request.agent)])
    }

    async fn invoke(
        &self,
        arguments: serde_json::Value,
        _approved: &[Access],
        ctx: &ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        let request = parse(&arguments)?;
        let delegator = ctx.delegator.as_ref().ok_or_else(|| {
            ToolError::new("delegation is not available in this run (no agent resolver)")
        })?;
        let report = delegator.delegate(request).await.map_err(ToolError::new)?;
        let summary = ChildSummary::from(&report);
        let text = serde_json::to_string_pretty(&summary).expect("a summary serializes");
        Ok(ToolOutput {
            content: text,
            written: Vec::new(),
            sandbox: None,
        })
    }
}

fn parse(arguments: &serde_json::Value) -> Result<DelegateRequest, ToolError> {
    const FIELDS: [&str; 5] = ["agent", "goal", "scope", "budget", "deadline_secs"];
    let invalid = |why: String| ToolError::new(format!("invalid delegate arguments: {why}"));
    let object = arguments
        .as_object()
        .ok_or_else(|| invalid("expected a JSON object".into()))?;
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(invalid(format!(
            "unknown argument `{unknown}` (expected {})",
            FIELDS.join(", ")
        )));
    }
    let request: DelegateRequest =
        serde_json::from_value(arguments.clone()).map_err(|e| invalid(e.to_string()))?;
    if request.agent.trim().is_empty() || request.goal.trim().is_empty() {
        return Err(invalid("`agent` and `goal` must not be empty".into()));
    }
    if let Some(secs) = request.deadline_secs {
        if !(1..=MAX_DEADLINE_SECS).contains(&secs) {
            return Err(invalid(format!(
                "`deadline_secs` must be between 1 and {MAX_DEADLINE_SECS} (a day), not {secs}"
            )));
        }
    }
    Ok(request)
}

/// What the delegating model reads about its child.
#[derive(Debug, Serialize)]
struct ChildSummary<'a> {
    agent: &'a str,
    status: AgentStatus,
    final_message: Option<&'a str>,
    tokens_used: u64,
    budget: u64,
    artifacts: &'a [String],
    error: Option<&'a str>,
}

impl<'a> From<&'a AgentReport> for ChildSummary<'a> {
    fn from(r: &'a AgentReport) -> Self {
        Self {
            agent: &r.agent,
            status: r.status,
            final_message: r.final_message.as_deref(),
            tokens_used: r.tokens_used,
            budget: r.budget,
            artifacts: &r.artifacts,
            error: r.error.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ToolContext {
        ToolContext {
            agent: "lead".into(),
            workspace: std::env::temp_dir(),
            scope: String::new(),
            delegator: None,
            policy: Vec::new(),
        }
    }

    #[test]
    fn a_call_is_planned_as_delegation_to_the_named_agent() {
        let args = serde_json::json!({"agent": "test-gen", "goal": "write tests"});
        let plan = DelegateTool.plan(&args, &ctx()).unwrap();
        assert_eq!(plan, vec![Access::Delegate("test-gen".into())]);
    }

    #[test]
    fn missing_or_unknown_arguments_are_refused_before_any_decision() {
        for bad in [
            serde_json::json!({"agent": "x"}),
            serde_json::json!({"agent": "", "goal": "g"}),
            serde_json::json!({"agent": "x", "goal": "g", "budgett": 5}),
            serde_json::json!({"agent": "x", "goal": "g", "deadline_secs": 0}),
            serde_json::json!({"agent": "x", "goal": "g", "deadline_secs": u64::MAX}),
            serde_json::json!({"agent": "x", "goal": "g", "budget": -5}),
            serde_json::json!(["x", "g"]),
        ] {
            let e = DelegateTool.plan(&bad, &ctx()).unwrap_err();
            assert!(e.0.starts_with("invalid delegate arguments"), "{e}");
        }
    }

    #[tokio::test]
    async fn without_a_delegator_the_call_says_delegation_is_unavailable() {
        let args = serde_json::json!({"agent": "x", "goal": "g"});
        let e = DelegateTool.invoke(args, &[], &ctx()).await.unwrap_err();
        assert!(e.0.contains("not available"), "{e}");
    }

    #[test]
    fn the_schema_requires_agent_and_goal() {
        let schema = DelegateTool.spec().parameters;
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(required, ["agent", "goal"]);
    }
}
