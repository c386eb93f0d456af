//! Starting a run: [`start`] validates a [`RunConfig`], spawns the supervision tree and
//! returns a [`RunHandle`] to wait for the [`RunReport`] or cancel the run.
//!
//! Everything that can be checked before an agent runs is checked here, so a bad
//! configuration is an error, not a half-started run: at least one agent, unique agent
//! names, every enabled tool present, every permission pattern valid, and an audit log
//! that can be opened.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorRef};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::audit::{AuditEvent, Redactor};
use crate::budget::BudgetLedger;
use crate::delegate::{AgentResolver, DEFAULT_MAX_DEPTH};
pub use crate::plan::{AgentPlan, Closing};
use crate::policy::PolicyRules;
use crate::protocol::RemoteHost;
use crate::protocol::{RunMsg, Services};
use crate::report::{RunEvent, RunReport};
use crate::supervisor::{RunSupervisor, SupervisorArgs};

/// A run that could not start, or that ended without a report.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration is invalid; nothing was started.
    #[error("{0}")]
    InvalidConfig(String),
    /// The supervision tree could not be started (for example, the audit log could not be
    /// opened); no agent ran.
    #[error("the run could not start: {0}")]
    Start(String),
    /// The supervisor stopped without a report (a bug; the audit log has what happened).
    #[error("the run ended without a report: {0}")]
    Lost(String),
}

/// What to run and how.
pub struct RunConfig {
    /// The run's id (see [`new_run_id`]); names the audit log's directory.
    pub run_id: String,
    /// The workspace root (absolute).
    pub workspace: PathBuf,
    /// Where the audit log goes (default: `<workspace>/.codex/runs/<run_id>/audit.jsonl`).
    pub audit_path: PathBuf,
    /// The agents, in order.
    pub agents: Vec<AgentPlan>,
    /// The run's global budget (default: the sum of the agents' budgets).
    pub total_budget: Option<u64>,
    /// Agents running at once (default: all).
    pub max_concurrency: Option<usize>,
    /// Where live [`RunEvent`]s go.
    pub events: Option<mpsc::UnboundedSender<RunEvent>>,
    /// How long one call to a service may take before it is retried (default 5 s).
    pub call_timeout: Duration,
    /// How long an agent waits for a service that is down before its attempt fails
    /// (default 10 s).
    pub service_wait: Duration,
    /// Masks secrets in every audit record, and in the tool output of agents with
    /// [`crate::AgentSpec::redact_secrets`] (default: [`Redactor::from_env`], the values of
    /// this process's `*_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD` variables plus the
    /// built-in credential formats).
    pub redactor: Arc<Redactor>,
    /// Turns `delegate` tool calls into child agents (default: none, and the `delegate`
    /// tool says delegation is unavailable). See [`crate::delegate`].
    pub resolver: Option<Arc<dyn AgentResolver>>,
    /// How deep delegation may go: the run's agents are at depth 0, their children at 1
    /// (default [`DEFAULT_MAX_DEPTH`]).
    pub max_delegation_depth: u32,
    /// Whether agents' conversations are checkpointed after each turn (in
    /// `<run dir>/agents/`), so that a restarted attempt continues from there (default:
    /// yes). See [`crate::checkpoint`].
    pub checkpoints: bool,
    /// Whether the agents' first attempts continue from the checkpoints already in the run
    /// directory: a run resumed after it was killed (default: no).
    pub resume: bool,
    /// Where the log's head is anchored when the run ends (see [`crate::audit::anchor`];
    /// default: nowhere). Keep it outside the workspace.
    pub anchor: Option<PathBuf>,
    /// Records the application adds right after `run_started`, before any agent starts
    /// (e.g. the worktrees it created; default: none).
    pub opening: Vec<AuditEvent>,
    /// Asked for records once every agent is final, before `run_finished` (e.g. the
    /// changes of isolated agents; default: none).
    pub closing: Option<Arc<dyn Closing>>,
    /// Runs the run's own agents on workers, through this transport (default: none, they
    /// run in this process). Delegated agents still run here. See
    /// [`crate::protocol::remote`].
    pub remote: Option<Arc<dyn RemoteHost>>,
}

impl RunConfig {
    /// A configuration with the defaults above.
    pub fn new(
        run_id: impl Into<String>,
        workspace: impl Into<PathBuf>,
        agents: Vec<AgentPlan>,
    ) -> Self {
        let run_id = run_id.into();
        let workspace = workspace.into();
        let audit_path = workspace
            .join(".codex/runs")
            .join(&run_id)
            .join("audit.jsonl");
        Self {
            run_id,
            workspace,
            audit_path,
            agents,
            total_budget: None,
            max_concurrency: None,
            events: None,
            call_timeout: Duration::from_secs(5),
            service_wait: Duration::from_secs(10),
            redactor: Arc::new(Redactor::from_env()),
            resolver: None,
            max_delegation_depth: DEFAULT_MAX_DEPTH,
            checkpoints: true,
            resume: false,
            anchor: None,
            opening: Vec::new(),
            closing: None,
            remote: None,
        }
    }
}

/// A run in progress.
pub struct RunHandle {
    run_id: String,
    supervisor: ActorRef<RunMsg>,
    join: JoinHandle<()>,
    done: oneshot::Receiver<RunReport>,
    /// The audit log and where to anchor its head once the run ended.
    anchor: Option<(PathBuf, PathBuf)>,
}

impl RunHandle {
    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Something that can cancel the run from elsewhere (a Ctrl-C handler).
    pub fn canceller(&self) -> Canceller {
        Canceller(self.supervisor.clone())
    }

    /// Waits for the run to end; the report includes agents that were cancelled.
    pub async fn wait(self) -> Result<RunReport, EngineError> {
        let report = self.done.await;
        let _ = self.join.await;
        if let Some((log, anchor)) = &self.anchor {
            anchor_head(&self.run_id, log, anchor);
        }
        report.map_err(|_| EngineError::Lost(format!("supervisor of run {} stopped", self.run_id)))
    }
}

/// Appends the ended run's head to the anchor file. A failure is logged, not fatal: the run
/// is over and its report matters more (`codex audit verify` then finds no anchor).
fn anchor_head(run_id: &str, log: &std::path::Path, anchor: &std::path::Path) {
    let head = std::fs::read(log)
        .ok()
        .and_then(|bytes| crate::audit::anchor::head_of(run_id, &bytes));
    let Some(head) = head else {
        tracing::warn!("run {run_id}: no audit log head to anchor");
        return;
    };
    if let Err(e) = crate::audit::anchor::append(anchor, &head) {
        tracing::warn!(
            "run {run_id}: cannot anchor the audit log in {}: {e}",
            anchor.display()
        );
    }
}

/// Cancels a run: every agent is stopped, its reservations released, the audit log
/// flushed, and the run reports what it has.
#[derive(Clone)]
pub struct Canceller(ActorRef<RunMsg>);

impl Canceller {
    /// Asks the run to cancel. Returns at once; idempotent.
    pub fn cancel(&self) {
        let _ = self.0.cast(RunMsg::Cancel);
    }
}

/// A fresh run id: UTC time plus a random suffix, e.g. `20261124T054701Z-3fa2c1`.
pub fn new_run_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    let suffix = RandomState::new().hash_one(std::process::id()) & 0xff_ffff;
    format!(
        "{}-{suffix:06x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    )
}

/// Validates `config` and starts the run. See the module docs for what is checked.
pub async fn start(config: RunConfig) -> Result<RunHandle, EngineError> {
    let policies = validate(&config)?;
    let anchor = config
        .anchor
        .clone()
        .map(|a| (config.audit_path.clone(), a));
    let total_budget = config
        .total_budget
        .unwrap_or_else(|| config.agents.iter().map(|a| a.spec.budget).sum());
    let mut ledger = BudgetLedger::new(total_budget);
    for plan in &config.agents {
        ledger
            .register(&plan.spec.name, plan.spec.budget)
            .map_err(|e| EngineError::InvalidConfig(e.to_string()))?;
    }
    let (done_tx, done_rx) = oneshot::channel();
    let n = config.agents.len();
    let args = SupervisorArgs {
        services: Services::new(&config.run_id, config.call_timeout, config.service_wait),
        run_id: config.run_id.clone(),
        workspace: config.workspace,
        audit_path: config.audit_path,
        agents: config.agents,
        ledger,
        policies,
        resolver: config.resolver,
        max_depth: config.max_delegation_depth,
        checkpoints: crate::supervisor::Checkpoints {
            keep: config.checkpoints,
            resume: config.resume,
        },
        max_concurrency: config.max_concurrency.unwrap_or(n).max(1),
        events: config.events,
        redactor: config.redactor,
        opening: config.opening,
        closing: config.closing,
        remote: config.remote,
        done: done_tx,
    };
    let name = Some(format!("{}/supervisor", config.run_id));
    let (supervisor, join) = Actor::spawn(name, RunSupervisor, args)
        .await
        .map_err(|e| EngineError::Start(root_cause(&e)))?;
    Ok(RunHandle {
        run_id: config.run_id,
        supervisor,
        join,
        done: done_rx,
        anchor,
    })
}

fn validate(config: &RunConfig) -> Result<BTreeMap<String, PolicyRules>, EngineError> {
    let invalid = |m: String| EngineError::InvalidConfig(m);
    if config.agents.is_empty() {
        return Err(invalid("no agents to run".into()));
    }
    let mut policies = BTreeMap::new();
    // Agents with the same permissions, scope and chain share one compilation (its glob
    // matchers are shared, not copied: a thousand agents, one set of regexes).
    let mut compiled: HashMap<String, PolicyRules> = HashMap::new();
    for plan in &config.agents {
        let spec = &plan.spec;
        if spec.name.contains(['/', '#']) {
            return Err(invalid(format!(
                "agent `{}`: `/` and `#` are reserved for the names of delegated agents",
                spec.name
            )));
        }
        if policies.contains_key(&spec.name) {
            return Err(invalid(format!(
                "agent `{}` appears twice; each agent of a run needs its own name",
                spec.name
            )));
        }
        let have: BTreeSet<String> = plan.tools.iter().map(|t| t.spec().name).collect();
        if let Some(missing) = spec.tools.iter().find(|t| !have.contains(*t)) {
            return Err(invalid(format!(
                "agent `{}` enables tool `{missing}`, which this build does not provide",
                spec.name
            )));
        }
        let key = serde_json::to_string(&(&spec.permissions, &spec.scope, &spec.ancestors))
            .expect("permissions always serialize");
        let rules = match compiled.get(&key) {
            Some(rules) => rules.clone(),
            None => {
                let rules =
                    PolicyRules::compile_within(&spec.permissions, &spec.scope, &spec.ancestors)
                        .map_err(|e| invalid(format!("agent `{}`: {e}", spec.name)))?;
                compiled.insert(key, rules.clone());
                rules
            }
        };
        policies.insert(spec.name.clone(), rules);
    }
    Ok(policies)
}

/// ractor wraps a failed `pre_start` several times over; the innermost message is the one
/// that says what went wrong.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg = s.to_string();
        source = s.source();
    }
    msg
}
