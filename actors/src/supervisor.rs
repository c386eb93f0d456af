//! The run supervisor: the root of a run's supervision tree.
//!
//! ```text
//! RunSupervisor
//! ├── AuditActor    permanent   (restarted: reopens the log, continues the sequence)
//! ├── BudgetActor   permanent   (restarted from the supervisor's copy of the ledger)
//! ├── PolicyActor   permanent   (restarted from the same rules)
//! ├── AgentActor ×N transient   (restarted from its goal, within its restart intensity)
//! └── delegated agents          (AgentActor, or ExternalAgentActor for a child run
//!                                elsewhere; started at run time, see [`crate::delegate`])
//! ```
//!
//! ractor tells a supervisor only that a child exited; what happens next is decided by
//! [`crate::restart::decide`] and carried out here. A restart is scheduled with a timer
//! message (`send_after`), never a sleep, so the supervisor keeps serving while it waits.
//!
//! **Ordering.** ractor delivers supervision events ahead of ordinary messages. A child's
//! last messages (an agent's [`RunMsg::AgentDone`], the BudgetActor's journal) could
//! therefore be overtaken by the news of its exit. So every supervision event is turned
//! into a [`RunMsg::ChildExited`] message to ourselves, which queues behind everything the
//! child sent before it died.
//!
//! **Never blocking on a child.** The supervisor never waits on a service inside a handler:
//! a service it waited on could be the one it must restart. Work that needs a service
//! (releasing an agent's reservations, audit records of restarts and results) runs in
//! background tasks that retry until the service is back; the run is reported only after
//! they have all finished.
//!
//! **Delegation.** A `delegate` tool call arrives as [`RunMsg::Delegate`]. A background
//! task resolves the child (the application's [`AgentResolver`]), carves its budget and
//! audits the delegation, then hands it back as [`RunMsg::ChildReady`]; the child starts
//! at once (children do not count against `max_concurrency`: their parent is waiting for
//! them, so queueing them could deadlock). When the child ends, its account is closed and
//! its report goes to the waiting tool call. Whenever an agent's attempt ends, for any
//! reason, its live children are cancelled.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

// tokio's clock: the same as std's in a run, and paused and advanced with the runtime in tests
// (restart windows and durations then follow virtual time).
use tokio::time::Instant;

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use ractor::RpcReplyPort;

use crate::agent::{AgentActor, AgentArgs};
use crate::audit::actor::{AuditActor, AuditArgs, DISK_FULL};
use crate::audit::{AgentExecutionEvent, AuditEvent, BudgetOp, Redactor};
use crate::budget::actor::{BudgetActor, BudgetArgs};
use crate::budget::{BudgetLedger, CarveOutcome, CarveRequest, LedgerOp};
use crate::delegate::{
    AgentResolver, ChildPlan, ChildRunner, Delegate, DelegateRequest, ExternalAgent, ParentInfo,
    DEFAULT_CHILD_DEADLINE,
};
use crate::external::{ExternalAgentActor, ExternalArgs};
use crate::identity::{service_name, AgentName, ServiceKind};
use crate::model::Model;
pub use crate::plan::AgentPlan;
use crate::policy::actor::PolicyActor;
use crate::policy::{PolicyRules, PolicyTable};
use crate::protocol::services::{ServiceError, Services};
use crate::protocol::{
    AgentMsg, AgentOutcome, Carved, Closed, EndedAttempts, JournalPort, PolicyMsg, ReadyChild,
    RunMsg, SupervisorPort,
};
use crate::report::{AgentReport, AgentStatus, RunEvent, RunReport};
use crate::restart::{
    decide, ExitKind, FailureKind, RestartDecision, RestartHistory, RestartPolicy,
};
use crate::spec::AgentSpec;
use crate::tool::{Tool, ToolContext};

/// The smallest budget worth starting a delegated agent with.
const MIN_CHILD_BUDGET: u64 = 256;

/// Everything the supervisor is started with (built by [`crate::run::start`]).
pub struct SupervisorArgs {
    pub(crate) run_id: String,
    pub(crate) workspace: PathBuf,
    pub(crate) audit_path: PathBuf,
    pub(crate) agents: Vec<AgentPlan>,
    pub(crate) ledger: BudgetLedger,
    pub(crate) policies: PolicyTable,
    pub(crate) max_concurrency: usize,
    pub(crate) services: Services,
    pub(crate) events: Option<mpsc::UnboundedSender<RunEvent>>,
    pub(crate) redactor: Arc<Redactor>,
    pub(crate) resolver: Option<Arc<dyn AgentResolver>>,
    pub(crate) max_depth: u32,
    pub(crate) checkpoints: Checkpoints,
    pub(crate) opening: Vec<AuditEvent>,
    pub(crate) closing: Option<Arc<dyn crate::plan::Closing>>,
    pub(crate) done: oneshot::Sender<RunReport>,
}

/// Whether a run keeps checkpoints, and whether its agents' first attempts continue from
/// them (a resumed run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpoints {
    pub(crate) keep: bool,
    pub(crate) resume: bool,
}

/// See the module docs.
pub struct RunSupervisor;

enum Child {
    Agent(usize),
    Service(ServiceKind),
}

/// How a slot's attempts run.
enum Runner {
    /// An AgentActor with this model and these tools.
    Local {
        model: Arc<dyn Model>,
        tools: Arc<Vec<Arc<dyn Tool>>>,
    },
    /// An ExternalAgentActor.
    External(Arc<dyn ExternalAgent>),
}

/// Where a delegated agent's report goes: the waiting `delegate` tool call.
use crate::protocol::run::ReportPort;

struct AgentSlot {
    /// Why it cannot run: it ends `failed` with this instead of starting.
    unavailable: Option<String>,
    spec: Arc<AgentSpec>,
    runner: Runner,
    /// For a delegated agent, until its report is sent. Its parent and depth are in its
    /// name ([`AgentName`]).
    reply: Option<ReportPort>,
    /// Slots of the children this agent delegated to.
    children: Vec<usize>,
    /// Children delegated so far (numbers their names).
    delegated: u32,
    attempt: u32,
    history: RestartHistory,
    first_started: Option<(Instant, DateTime<Utc>)>,
    ended: Option<Instant>,
    alive: Option<ActorRef<AgentMsg>>,
    status: AgentStatus,
    /// Set when the supervisor ends the agent (cancel, deadline, run failure).
    forced: Option<(AgentStatus, String)>,
    outcome: Option<AgentOutcome>,
    last_error: Option<String>,
    /// Its last answer was cut off by the output cap.
    truncated: bool,
    /// Its newest checkpoint: where a restarted attempt continues.
    checkpoint: Option<crate::checkpoint::Checkpoint>,
    artifacts: BTreeSet<String>,
    report: Option<AgentReport>,
}

/// The supervisor's state.
pub struct SupervisorState {
    run_id: String,
    workspace: PathBuf,
    audit_path: PathBuf,
    started: Instant,
    agents: Vec<AgentSlot>,
    pending: VecDeque<usize>,
    max_concurrency: usize,
    children: HashMap<ActorId, Child>,
    ledger: BudgetLedger,
    policies: PolicyTable,
    service_history: BTreeMap<&'static str, RestartHistory>,
    services: Services,
    events: Option<mpsc::UnboundedSender<RunEvent>>,
    redactor: Arc<Redactor>,
    resolver: Option<Arc<dyn AgentResolver>>,
    max_depth: u32,
    checkpoints: Checkpoints,
    /// The run's checkpoint writer and its task (awaited before the run reports).
    checkpoint_store: Option<(crate::checkpoint::CheckpointStore, JoinHandle<()>)>,
    /// The application's records for right after `run_started` (taken at `Begin`).
    opening: Vec<AuditEvent>,
    /// The application's records for before `run_finished`.
    closing: Option<Arc<dyn crate::plan::Closing>>,
    tasks: Vec<JoinHandle<()>>,
    begun: bool,
    cancelled: bool,
    draining: bool,
    done: Option<oneshot::Sender<RunReport>>,
    /// The run's first record, written by the AuditActor's first start.
    first_record: Option<AuditEvent>,
}

impl Actor for RunSupervisor {
    type Msg = RunMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let agents: Vec<AgentSlot> = args.agents.into_iter().map(AgentSlot::new).collect();
        let mut state = SupervisorState {
            resolver: args.resolver,
            max_depth: args.max_depth,
            checkpoint_store: args.checkpoints.keep.then(|| {
                let run_dir = args.audit_path.parent().unwrap_or(&args.workspace);
                crate::checkpoint::CheckpointStore::spawn(run_dir.to_owned())
            }),
            checkpoints: args.checkpoints,
            opening: args.opening,
            closing: args.closing,
            run_id: args.run_id,
            workspace: args.workspace,
            audit_path: args.audit_path,
            started: Instant::now(),
            pending: (0..agents.len()).collect(),
            agents,
            max_concurrency: args.max_concurrency.max(1),
            children: HashMap::new(),
            ledger: args.ledger,
            policies: args.policies,
            service_history: BTreeMap::new(),
            services: args.services,
            events: args.events,
            redactor: args.redactor,
            tasks: Vec::new(),
            begun: false,
            cancelled: false,
            draining: false,
            done: Some(args.done),
            first_record: None,
        };
        // `run_started` is the log's first record, written before the AuditActor counts as
        // started: a log that cannot take it (a full disk) stops the run before any agent.
        state.first_record = Some(AuditEvent::RunStarted {
            agents: state.agents.iter().map(|a| a.spec.name.clone()).collect(),
            total_budget: state.ledger.global().limit,
        });
        for kind in ServiceKind::ALL {
            state.spawn_service(&myself, kind).await?;
        }
        Ok(state)
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // `run_started` is on disk (see `pre_start`): agents may start.
        myself.send_message(RunMsg::Begin)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RunMsg::Cancel => state.cancel_all(AgentStatus::Cancelled, "cancelled by the user"),
            RunMsg::BudgetJournal(op) => state.ledger.apply(&op),
            RunMsg::Artifact { index, path } => {
                state.agents[index].artifacts.insert(path);
            }
            RunMsg::Checkpoint {
                index,
                attempt,
                checkpoint,
            } => state.checkpointed(index, attempt, *checkpoint),
            RunMsg::AgentDone {
                index,
                attempt,
                outcome,
            } => {
                if state.agents[index].attempt == attempt {
                    state.agents[index].outcome = Some(outcome);
                }
            }
            RunMsg::ChildExited { id, failure } => match state.children.remove(&id) {
                Some(Child::Agent(i)) => state.agent_exited(&myself, i, failure).await,
                Some(Child::Service(kind)) => state.service_exited(&myself, kind, failure),
                None => {}
            },
            RunMsg::Begin => {
                let opening = std::mem::take(&mut state.opening);
                if !opening.is_empty() {
                    if let Err(e) = state.services.record_all(opening).await {
                        record_lost(&e);
                    }
                }
                state.begun = true;
            }
            RunMsg::StartAgent(i) => state.start_agent(&myself, i).await,
            RunMsg::RestartService(kind) => {
                if let Err(e) = state.spawn_service(&myself, kind).await {
                    state.service_exited(&myself, kind, Some(e.to_string()));
                }
            }
            RunMsg::AgentDeadline(i) => {
                let limit = state.agents[i].spec.deadline.unwrap_or_default();
                let why = format!("deadline of {} passed", humanize(limit));
                state.force_end(i, AgentStatus::TimedOut, &why);
            }
            RunMsg::Drained => {
                // Work started after the drain began (a late child's account closing).
                if state.tasks.iter().any(|t| !t.is_finished()) {
                    state.draining = false;
                } else {
                    state.finalize(&myself);
                }
            }
            RunMsg::Delegate {
                parent,
                attempt,
                request,
                reply,
            } => state.delegate(&myself, parent, attempt, request, reply),
            RunMsg::ChildReady(child) => state.child_ready(&myself, *child).await,
            RunMsg::Finalized(report) => {
                if let Some(done) = state.done.take() {
                    let _ = done.send(*report);
                }
                myself.stop(None);
            }
        }
        state.start_pending(&myself).await;
        state.maybe_drain(&myself);
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failure) = match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => (cell, reason),
            SupervisionEvent::ActorFailed(cell, err) => (cell, Some(err.to_string())),
            _ => return Ok(()),
        };
        myself.send_message(RunMsg::ChildExited {
            id: cell.get_id(),
            failure,
        })?;
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        for child in myself.get_children() {
            child.stop(None);
        }
        Ok(())
    }
}

impl AgentSlot {
    fn new(plan: AgentPlan) -> Self {
        let runner = Runner::Local {
            model: plan.model,
            tools: Arc::new(plan.tools),
        };
        let mut slot = Self::with(plan.spec, runner, None);
        slot.unavailable = plan.unavailable;
        slot
    }

    fn with(spec: AgentSpec, runner: Runner, reply: Option<ReportPort>) -> Self {
        Self {
            unavailable: None,
            spec: Arc::new(spec),
            runner,
            reply,
            children: Vec::new(),
            delegated: 0,
            attempt: 0,
            history: RestartHistory::default(),
            first_started: None,
            ended: None,
            alive: None,
            status: AgentStatus::Running,
            forced: None,
            outcome: None,
            truncated: false,
            checkpoint: None,
            last_error: None,
            artifacts: BTreeSet::new(),
            report: None,
        }
    }

    fn is_final(&self) -> bool {
        self.report.is_some()
    }

    /// A run's own agent, started and not yet ended: what `max_concurrency` limits.
    fn is_running(&self) -> bool {
        self.depth() == 0 && self.first_started.is_some() && !self.is_final()
    }

    fn depth(&self) -> u32 {
        AgentName::parse(&self.spec.name).depth()
    }

    fn parent_name(&self) -> Option<String> {
        AgentName::parse(&self.spec.name)
            .parent()
            .map(str::to_owned)
    }
}

impl SupervisorState {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn emit(&self, event: RunEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }

    /// Keeps `task` to wait for before the run is reported, forgetting those already done
    /// (so a long run does not pile up finished handles).
    fn background(&mut self, task: JoinHandle<()>) {
        self.tasks.retain(|t| !t.is_finished());
        self.tasks.push(task);
    }

    /// Records an audit event from a background task that waits for the AuditActor.
    fn record(&mut self, event: AuditEvent) {
        let services = self.services.clone();
        self.background(tokio::spawn(async move {
            if let Err(e) = services.record(event).await {
                record_lost(&e);
            }
        }));
    }

    /// Records `event`, then (after `delay`) sends `then` to the supervisor: what `then`
    /// starts is never recorded before the event that explains it.
    fn record_then(
        &mut self,
        event: AuditEvent,
        me: ActorRef<RunMsg>,
        delay: Duration,
        then: RunMsg,
    ) {
        let services = self.services.clone();
        self.background(tokio::spawn(async move {
            if let Err(e) = services.record(event).await {
                record_lost(&e);
            }
            me.send_after(delay, move || then);
        }));
    }

    /// Ends an agent's attempt (it ended, crashed or was killed): a model call it left in
    /// flight is charged in full, and audited, from a background task.
    fn end_attempt(&mut self, agent: &str, attempt: u32) {
        let services = self.services.clone();
        let agent = agent.to_owned();
        self.background(tokio::spawn(async move {
            let EndedAttempts { charged, available } =
                match services.end_attempts(&agent, attempt).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!("could not end the attempt of {agent}: {e}");
                        return;
                    }
                };
            if charged == 0 {
                return;
            }
            let event = AuditEvent::BudgetDecision {
                agent: agent.clone(),
                op: BudgetOp::ChargeInFlight,
                requested: charged,
                granted: charged,
                released: 0,
                overrun: 0,
                available,
                denied: None,
            };
            if let Err(e) = services.record(event).await {
                record_lost(&e);
            }
        }));
    }

    async fn spawn_service(
        &mut self,
        myself: &ActorRef<RunMsg>,
        kind: ServiceKind,
    ) -> Result<(), ActorProcessingErr> {
        let name = Some(service_name(&self.run_id, kind));
        let sup = myself.get_cell();
        let cell: ActorCell = match kind {
            ServiceKind::Audit => {
                let args = AuditArgs {
                    path: self.audit_path.clone(),
                    run_id: self.run_id.clone(),
                    redactor: Arc::clone(&self.redactor),
                    first: self.first_record.take(),
                };
                Actor::spawn_linked(name, AuditActor, args, sup)
                    .await?
                    .0
                    .into()
            }
            ServiceKind::Budget => {
                // Agents not running hold nothing: release what a lost release left open.
                for slot in self.agents.iter().filter(|s| s.alive.is_none()) {
                    let op = LedgerOp::EndAttempts(slot.spec.name.clone(), slot.attempt);
                    self.ledger.apply(&op);
                }
                let args = BudgetArgs {
                    ledger: self.ledger.clone(),
                    journal: Some(JournalPort::new(myself.clone())),
                };
                Actor::spawn_linked(name, BudgetActor, args, sup)
                    .await?
                    .0
                    .into()
            }
            ServiceKind::Policy => {
                let table = self.policies.clone();
                Actor::spawn_linked(name, PolicyActor, table, sup)
                    .await?
                    .0
                    .into()
            }
        };
        self.children.insert(cell.get_id(), Child::Service(kind));
        Ok(())
    }

    fn service_exited(
        &mut self,
        myself: &ActorRef<RunMsg>,
        kind: ServiceKind,
        why: Option<String>,
    ) {
        if self.done.is_none() {
            return;
        }
        let why = why.unwrap_or_else(|| "stopped".into());
        if kind == ServiceKind::Audit && why.starts_with(DISK_FULL) {
            // Restarting cannot help: stop the run now, without waiting on the log.
            tracing::error!("{why}");
            self.services = self.services.without_audit();
            for t in self.tasks.drain(..) {
                t.abort();
            }
            let msg = format!("the run was stopped: {why}");
            self.cancel_all(AgentStatus::Failed, &msg);
            return;
        }
        let policy = RestartPolicy::service_default();
        let now = self.now();
        let history = self.service_history.entry(kind.label()).or_default();
        match decide(&policy, history, now, ExitKind::Abnormal) {
            RestartDecision::Restart { delay } => {
                history.record(now, policy.period);
                tracing::warn!("{} service went down ({why}); restarting", kind.label());
                myself.send_after(delay, move || RunMsg::RestartService(kind));
                self.record(AuditEvent::ServiceRestarted {
                    service: kind.label().into(),
                    reason: why,
                });
            }
            RestartDecision::Escalate | RestartDecision::GiveUp | RestartDecision::Done => {
                let msg = format!(
                    "the {} service failed {} times within {:?} (last: {why}); the run was stopped so that no agent runs without it",
                    kind.label(),
                    policy.max_restarts + 1,
                    policy.period
                );
                tracing::error!("{msg}");
                self.cancel_all(AgentStatus::Failed, &msg);
            }
        }
    }

    /// Starts queued agents while fewer than `max_concurrency` run. Called after every
    /// message, so it returns at once when nothing is queued, and counts the running agents
    /// once per call, not once per agent started (a run of N agents would otherwise cost
    /// O(N) per budget journal entry and O(N^2) to start).
    async fn start_pending(&mut self, myself: &ActorRef<RunMsg>) {
        if !self.begun || self.pending.is_empty() {
            return;
        }
        let mut running = self.agents.iter().filter(|a| a.is_running()).count();
        while running < self.max_concurrency && !self.cancelled {
            let Some(i) = self.pending.pop_front() else {
                break;
            };
            let before = usize::from(self.agents[i].is_running());
            self.start_agent(myself, i).await;
            // Starting agent `i` changes no other slot.
            running = running - before + usize::from(self.agents[i].is_running());
        }
    }

    async fn start_agent(&mut self, myself: &ActorRef<RunMsg>, i: usize) {
        if self.agents[i].is_final() || self.cancelled {
            return;
        }
        if let Some(why) = self.agents[i].unavailable.take() {
            self.complete(i, AgentStatus::Failed, None, Some(why));
            return;
        }
        let slot = &mut self.agents[i];
        slot.attempt += 1;
        if slot.first_started.is_none() {
            slot.first_started = Some((Instant::now(), Utc::now()));
            if let Some(deadline) = slot.spec.deadline {
                myself.send_after(deadline, move || RunMsg::AgentDeadline(i));
            }
        }
        let attempt = slot.attempt;
        let agent = slot.spec.name.clone();
        let spawned = match &slot.runner {
            Runner::Local { .. } => {
                let args = self.agent_args(myself, i);
                Actor::spawn_linked(None, AgentActor, args, myself.get_cell())
                    .await
                    .map(|(a, _)| a)
            }
            Runner::External(runner) => {
                let args = ExternalArgs {
                    attempt,
                    first_started: slot.first_started.expect("set above").1,
                    tokens_before: self.ledger.account(&agent).map_or(0, |a| a.used()),
                    spec: Arc::clone(&slot.spec),
                    runner: Arc::clone(runner),
                    depth: slot.depth(),
                    services: self.services.clone(),
                    supervisor: SupervisorPort::new(myself.clone(), i, attempt),
                };
                Actor::spawn_linked(None, ExternalAgentActor, args, myself.get_cell())
                    .await
                    .map(|(a, _)| a)
            }
        };
        match spawned {
            Ok(actor) => {
                self.children.insert(actor.get_id(), Child::Agent(i));
                self.agents[i].alive = Some(actor);
                self.emit(RunEvent::AgentStarted { agent, attempt });
            }
            Err(e) => {
                let why = format!("could not start: {e}");
                self.complete(i, AgentStatus::Failed, None, Some(why));
            }
        }
    }

    /// Agent `i`'s attempt `attempt` completed a turn: its checkpoint is where a restart
    /// continues, and it is written for `codex resume`.
    fn checkpointed(&mut self, i: usize, attempt: u32, checkpoint: crate::checkpoint::Checkpoint) {
        if self.agents[i].attempt != attempt {
            return;
        }
        if let Some((store, _)) = &self.checkpoint_store {
            store.save(checkpoint.clone());
        }
        self.agents[i].checkpoint = Some(checkpoint);
    }

    /// Where agent `i`'s next attempt starts, if not from its goal: its newest checkpoint
    /// after a restart; in a resumed run, for its first attempt, the one on disk.
    fn resume_from(&self, i: usize) -> Option<crate::checkpoint::Checkpoint> {
        let slot = &self.agents[i];
        if slot.spec.restart_from != crate::spec::RestartFrom::Checkpoint || !self.checkpoints.keep
        {
            return None;
        }
        if slot.attempt > 1 {
            return slot.checkpoint.clone();
        }
        let run_dir = self.audit_path.parent().unwrap_or(&self.workspace);
        self.checkpoints
            .resume
            .then(|| crate::checkpoint::load(&crate::checkpoint::path(run_dir, &slot.spec.name)))
            .flatten()
    }

    /// The arguments of agent `i`'s next AgentActor (it must run locally).
    fn agent_args(&self, myself: &ActorRef<RunMsg>, i: usize) -> AgentArgs {
        let slot = &self.agents[i];
        let Runner::Local { model, tools } = &slot.runner else {
            unreachable!("only local agents get an AgentActor")
        };
        let port = SupervisorPort::new(myself.clone(), i, slot.attempt);
        let delegator = self
            .resolver
            .as_ref()
            .map(|_| Arc::new(port.delegator()) as Arc<dyn Delegate>);
        AgentArgs {
            attempt: slot.attempt,
            first_started: slot.first_started.expect("started").1,
            tokens_before: self.ledger.account(&slot.spec.name).map_or(0, |a| a.used()),
            spec: Arc::clone(&slot.spec),
            model: Arc::clone(model),
            tools: Arc::clone(tools),
            ctx: ToolContext {
                agent: slot.spec.name.clone(),
                workspace: slot
                    .spec
                    .root
                    .clone()
                    .unwrap_or_else(|| self.workspace.clone()),
                scope: slot.spec.scope.clone(),
                delegator,
                policy: self.policy_layers(i),
            },
            services: self.services.clone(),
            supervisor: port,
            events: self.events.clone(),
            redactor: Arc::clone(&self.redactor),
            checkpoints: self.checkpoints.keep,
            resume_from: self.resume_from(i),
        }
    }

    async fn agent_exited(&mut self, myself: &ActorRef<RunMsg>, i: usize, failure: Option<String>) {
        let name = self.agents[i].spec.name.clone();
        self.agents[i].alive = None;
        let attempt = self.agents[i].attempt;
        self.end_attempt(&name, attempt);
        self.cancel_children(i);
        if let Some((status, why)) = self.agents[i].forced.clone() {
            let last = self.agents[i].outcome.take().and_then(|o| o.final_message);
            self.complete(i, status, last, Some(why));
            return;
        }
        if let Some(o) = self.agents[i].outcome.take() {
            self.agents[i].truncated = o.truncated;
            self.complete(i, o.status, o.final_message, o.error);
            return;
        }
        let why = failure.unwrap_or_else(|| "stopped without an outcome".into());
        self.agents[i].last_error = Some(why.clone());
        let now = self.now();
        let slot = &mut self.agents[i];
        slot.history.failed(FailureKind::of(&why));
        match decide(&slot.spec.restart, &slot.history, now, ExitKind::Abnormal) {
            RestartDecision::Restart { delay } => {
                slot.history.record(now, slot.spec.restart.period);
                let attempt = slot.attempt + 1;
                tracing::info!("agent {name} failed ({why}); restart {attempt} in {delay:?}");
                self.emit(RunEvent::AgentRestarting {
                    agent: name.clone(),
                    reason: why.clone(),
                    delay_ms: delay.as_millis() as u64,
                });
                let restarted = AuditEvent::AgentRestarted {
                    agent: name,
                    attempt,
                    delay_ms: delay.as_millis() as u64,
                    reason: why,
                };
                let start = RunMsg::StartAgent(i);
                self.record_then(restarted, myself.clone(), delay, start);
            }
            RestartDecision::Escalate | RestartDecision::Done => {
                let p = &slot.spec.restart;
                let msg = format!(
                    "failed after {} restarts (limit {} within {}); last error: {why}",
                    slot.history.total(),
                    p.max_restarts,
                    humanize(p.period)
                );
                self.complete(i, AgentStatus::Failed, None, Some(msg));
            }
            RestartDecision::GiveUp => {
                let msg = format!(
                    "failed {} times in a row the same way (limit {}, after {} restarts); \
                     last error: {why}",
                    slot.history.streak(),
                    slot.spec.restart.max_consecutive_failures,
                    slot.history.total(),
                );
                self.complete(i, AgentStatus::Failed, None, Some(msg));
            }
        }
    }

    /// Ends agent `i` on the supervisor's initiative: kill it if it runs, else end it now.
    fn force_end(&mut self, i: usize, status: AgentStatus, why: &str) {
        let slot = &mut self.agents[i];
        if slot.is_final() || slot.forced.is_some() {
            return;
        }
        slot.forced = Some((status, why.to_owned()));
        match &slot.alive {
            Some(actor) => actor.kill(),
            None => self.complete(i, status, None, Some(why.to_owned())),
        }
    }

    fn cancel_all(&mut self, status: AgentStatus, why: &str) {
        self.cancelled = true;
        for i in 0..self.agents.len() {
            self.force_end(i, status, why);
        }
        self.pending.clear();
    }

    fn complete(
        &mut self,
        i: usize,
        status: AgentStatus,
        final_message: Option<String>,
        error: Option<String>,
    ) {
        if self.agents[i].is_final() {
            return;
        }
        self.cancel_children(i);
        let slot = &mut self.agents[i];
        slot.status = status;
        slot.ended = Some(Instant::now());
        let error = error.or_else(|| {
            (status != AgentStatus::Completed)
                .then(|| slot.last_error.clone())
                .flatten()
        });
        let report = AgentReport {
            agent: slot.spec.name.clone(),
            goal: slot.spec.goal.clone(),
            scope: slot.spec.scope.clone(),
            status,
            tokens_used: self.ledger.account(&slot.spec.name).map_or(0, |a| a.used()),
            budget: slot.spec.budget,
            duration_secs: slot.duration().as_secs_f64(),
            restarts: slot.history.total(),
            artifacts: slot.artifacts.iter().cloned().collect(),
            error,
            final_message,
            parent: slot.parent_name(),
            depth: slot.depth(),
            truncated: slot.truncated,
        };
        slot.report = Some(report.clone());
        let start_time = slot.first_started.map_or_else(Utc::now, |s| s.1);
        let attempt = slot.attempt;
        self.record(AuditEvent::AgentFinished(AgentExecutionEvent {
            agent_name: report.agent.clone(),
            attempt,
            status,
            goal: report.goal.clone(),
            start_time,
            end_time: Some(Utc::now()),
            duration_secs: Some(report.duration_secs),
            tokens_used: report.tokens_used,
            artifacts: report.artifacts.clone(),
            error: report.error.clone(),
        }));
        if let Some(reply) = self.agents[i].reply.take() {
            self.close_child(&report, reply);
        }
        self.emit(RunEvent::AgentFinished(report));
    }

    /// Agent `i`'s permissions and scope, then those of each agent above it (nearest first).
    fn policy_layers(&self, i: usize) -> Vec<crate::spec::PolicyLayer> {
        // The agent's own layer, then every delegating ancestor's, nearest first: set by
        // the engine for a child delegated in this run, and handed to a child codex process
        // by its delegating one.
        let spec = &self.agents[i].spec;
        let own = crate::spec::PolicyLayer {
            permissions: spec.permissions.clone(),
            scope: spec.scope.clone(),
        };
        std::iter::once(own)
            .chain(spec.ancestors.iter().cloned())
            .collect()
    }

    /// Handles a `delegate` tool call of agent `parent`: checks what needs no service here,
    /// then resolves the child and carves its budget in a background task, which sends
    /// [`RunMsg::ChildReady`] (or replies with why no child runs).
    fn delegate(
        &mut self,
        myself: &ActorRef<RunMsg>,
        parent: usize,
        attempt: u32,
        request: DelegateRequest,
        reply: RpcReplyPort<Result<AgentReport, String>>,
    ) {
        let slot = &mut self.agents[parent];
        let refused = |why: String| {
            let mut event = delegation_event(&slot.spec.name, slot.depth() + 1, &request);
            if let AuditEvent::AgentDelegated { refused, .. } = &mut event {
                *refused = Some(why);
            }
            event
        };
        let why = if slot.is_final() || slot.attempt != attempt || slot.forced.is_some() {
            Some("the delegating agent is ending".to_owned())
        } else if slot.depth() + 1 > self.max_depth {
            Some(format!(
                "delegation depth limit reached: `{}` is at depth {} and this run allows at most {} levels of delegation",
                slot.spec.name,
                slot.depth(),
                self.max_depth
            ))
        } else if self.resolver.is_none() {
            Some("delegation is not available in this run (no agent resolver)".to_owned())
        } else {
            None
        };
        if let Some(why) = why {
            let event = refused(why.clone());
            let _ = reply.send(Err(why));
            self.record(event);
            return;
        }
        slot.delegated += 1;
        let info = ParentInfo {
            name: slot.spec.name.clone(),
            scope: slot.spec.scope.clone(),
            depth: slot.depth() + 1,
        };
        let name = format!("{}/{}#{}", info.name, request.agent, slot.delegated);
        let resolver = Arc::clone(self.resolver.as_ref().expect("checked above"));
        let services = self.services.clone();
        let me = myself.clone();
        self.background(tokio::spawn(async move {
            let child = prepare_child(&*resolver, &services, &request, &info, name).await;
            match child {
                Ok((plan, envelope)) => {
                    let deadline = request
                        .deadline_secs
                        .map_or(DEFAULT_CHILD_DEADLINE, Duration::from_secs)
                        .min(plan.spec.deadline.unwrap_or(Duration::MAX));
                    let ready = ReadyChild {
                        parent,
                        attempt,
                        name: plan.spec.name.clone(),
                        plan,
                        envelope,
                        deadline,
                        reply,
                    };
                    let _ = me.cast(RunMsg::ChildReady(Box::new(ready)));
                }
                Err(why) => {
                    let _ = reply.send(Err(why));
                }
            }
        }));
    }

    /// Starts a resolved child, unless its parent's attempt ended meanwhile.
    async fn child_ready(&mut self, myself: &ActorRef<RunMsg>, child: ReadyChild) {
        let ReadyChild {
            parent,
            attempt,
            name,
            plan,
            envelope,
            deadline,
            reply,
        } = child;
        let p = &self.agents[parent];
        let gone = p.is_final() || p.attempt != attempt || p.forced.is_some() || self.cancelled;
        let mut spec = plan.spec;
        // A child works where its parent works (its parent's worktree under isolation).
        spec.root = spec.root.or_else(|| p.spec.root.clone());
        spec.budget = envelope;
        spec.deadline = Some(deadline);
        let rules = PolicyRules::compile(&spec.permissions, &spec.scope);
        let why = match (&rules, gone) {
            (_, true) => Some("the delegating agent ended before its child started".to_owned()),
            (Err(e), _) => Some(format!("agent `{name}`: {e}")),
            _ => None,
        };
        let parent_rules = self.policies.get(&p.spec.name).cloned();
        let (Some(parent_rules), Ok(rules), None) = (parent_rules, rules, why.clone()) else {
            self.abandon_child(
                name,
                why.unwrap_or_else(|| "no policy for the parent".into()),
                reply,
            );
            return;
        };
        let rules = rules.within(parent_rules);
        // A child in another process enforces the same intersection from these.
        spec.ancestors = rules.layers().split_off(1);
        self.policies.insert(name.clone(), rules.clone());
        let policy = service_name(&self.run_id, ServiceKind::Policy);
        if let Some(actor) = ActorRef::<PolicyMsg>::where_is(policy) {
            let _ = actor.cast(PolicyMsg::Register(name.clone(), Box::new(rules)));
        }
        let runner = match plan.runner {
            ChildRunner::InProcess { model, tools } => Runner::Local {
                model,
                tools: Arc::new(tools),
            },
            ChildRunner::External(external) => Runner::External(external),
        };
        self.emit(RunEvent::AgentDelegated {
            agent: name,
            parent: self.agents[parent].spec.name.clone(),
            budget: envelope,
        });
        let i = self.agents.len();
        self.agents.push(AgentSlot::with(spec, runner, Some(reply)));
        self.agents[parent].children.push(i);
        self.start_agent(myself, i).await;
    }

    /// Gives a carved envelope back (its child will not run) and tells the tool call why.
    fn abandon_child(
        &mut self,
        name: String,
        why: String,
        reply: RpcReplyPort<Result<AgentReport, String>>,
    ) {
        let services = self.services.clone();
        self.background(tokio::spawn(async move {
            if let Err(e) = services.close(&name).await {
                tracing::error!("could not close the account of {name}: {e}");
            }
            let _ = reply.send(Err(why));
        }));
    }

    /// Cancels the live children of agent `i`, whose attempt ended.
    fn cancel_children(&mut self, i: usize) {
        let why = format!(
            "cancelled: the agent that delegated to it (`{}`) ended",
            self.agents[i].spec.name
        );
        for c in self.agents[i].children.clone() {
            self.force_end(c, AgentStatus::Cancelled, &why);
        }
    }

    /// Closes an ended child's budget account (the rest of its envelope goes back to its
    /// parent), audits it, then sends its report to the waiting tool call: the parent's
    /// next turn sees the tokens returned.
    fn close_child(
        &mut self,
        report: &AgentReport,
        reply: RpcReplyPort<Result<AgentReport, String>>,
    ) {
        let services = self.services.clone();
        let report = report.clone();
        self.background(tokio::spawn(async move {
            match services.close(&report.agent).await {
                Ok(Closed {
                    returned,
                    available,
                }) => {
                    let event = AuditEvent::BudgetDecision {
                        agent: report.agent.clone(),
                        op: BudgetOp::Close,
                        requested: 0,
                        granted: 0,
                        released: returned,
                        overrun: 0,
                        available,
                        denied: None,
                    };
                    if let Err(e) = services.record(event).await {
                        record_lost(&e);
                    }
                }
                Err(e) => tracing::error!("could not close the account of {}: {e}", report.agent),
            }
            let _ = reply.send(Ok(report));
        }));
    }

    /// Once every agent is final, waits (in a task) for the background work, then reports.
    fn maybe_drain(&mut self, myself: &ActorRef<RunMsg>) {
        if self.draining || !self.agents.iter().all(AgentSlot::is_final) {
            return;
        }
        self.draining = true;
        let mut tasks = std::mem::take(&mut self.tasks);
        // The checkpoint writer ends once its store is dropped, its queue written.
        if let Some((store, writer)) = self.checkpoint_store.take() {
            drop(store);
            tasks.push(writer);
        }
        let me = myself.clone();
        tokio::spawn(async move {
            for t in tasks {
                let _ = t.await;
            }
            let _ = me.cast(RunMsg::Drained);
        });
    }

    fn finalize(&mut self, myself: &ActorRef<RunMsg>) {
        let report = self.report();
        let services = self.services.clone();
        let me = myself.clone();
        let finished = AuditEvent::RunFinished {
            total_tokens: report.total_tokens,
            success_count: report.success_count,
            total_count: report.total_count,
            wall_secs: report.wall_secs,
            cancelled: self.cancelled,
        };
        let closing = self.closing.take();
        tokio::spawn(async move {
            if let Some(closing) = closing {
                let records = closing.records().await;
                if !records.is_empty() {
                    if let Err(e) = services.record_all(records).await {
                        record_lost(&e);
                    }
                }
            }
            if let Err(e) = services.record(finished).await {
                record_lost(&e);
            }
            if let Err(e) = services.flush_audit().await {
                record_lost(&e);
            }
            let _ = me.cast(RunMsg::Finalized(Box::new(report)));
        });
    }

    /// The run's report, with token counts from the supervisor's copy of the ledger.
    fn report(&self) -> RunReport {
        let agents: Vec<AgentReport> = self
            .agents
            .iter()
            .filter_map(|slot| {
                let mut r = slot.report.clone()?;
                r.tokens_used = self.ledger.account(&r.agent).map_or(0, |a| a.used());
                Some(r)
            })
            .collect();
        let own: Vec<&AgentReport> = agents.iter().filter(|a| a.parent.is_none()).collect();
        RunReport {
            run_id: self.run_id.clone(),
            success_count: own
                .iter()
                .filter(|a| a.status == AgentStatus::Completed)
                .count(),
            total_count: own.len(),
            total_tokens: self.ledger.global().used(),
            total_budget: self.ledger.global().limit,
            wall_secs: self.started.elapsed().as_secs_f64(),
            agents,
        }
    }
}

impl AgentSlot {
    fn duration(&self) -> Duration {
        match (self.first_started, self.ended) {
            (Some((start, _)), Some(end)) => end - start,
            _ => Duration::ZERO,
        }
    }
}

/// Logs an audit record that could not be written, unless the audit log was given up for
/// good (a full disk: said once, when it happened).
fn record_lost(e: &ServiceError) {
    if !matches!(e, ServiceError::Stopped(_)) {
        tracing::error!("audit record lost: {e}");
    }
}

/// The `agent_delegated` record of `request` by `parent`, before anything is known of the
/// child (no child, no envelope, not refused).
fn delegation_event(parent: &str, child_depth: u32, request: &DelegateRequest) -> AuditEvent {
    AuditEvent::AgentDelegated {
        agent: parent.to_owned(),
        child: None,
        target: request.agent.clone(),
        child_depth,
        goal: request.goal.clone(),
        transport: None,
        wanted: request.budget.unwrap_or(0),
        envelope: 0,
        refused: None,
    }
}

/// Resolves a child and carves its budget out of its parent's, auditing the delegation
/// (refused or not) before anything of the child is recorded. Runs in a background task.
async fn prepare_child(
    resolver: &dyn AgentResolver,
    services: &Services,
    request: &DelegateRequest,
    parent: &ParentInfo,
    name: String,
) -> Result<(ChildPlan, u64), String> {
    let mut event = delegation_event(&parent.name, parent.depth, request);
    let outcome = carve_for(resolver, services, request, parent, &name, &mut event).await;
    if let (Err(why), AuditEvent::AgentDelegated { refused, .. }) = (&outcome, &mut event) {
        *refused = Some(why.clone());
    }
    services
        .record(event)
        .await
        .map_err(|e| format!("the delegation could not be audited: {e}"))?;
    outcome
}

async fn carve_for(
    resolver: &dyn AgentResolver,
    services: &Services,
    request: &DelegateRequest,
    parent: &ParentInfo,
    name: &str,
    event: &mut AuditEvent,
) -> Result<(ChildPlan, u64), String> {
    let mut plan = resolver.resolve(request, parent).await?;
    plan.spec.name = name.to_owned();
    let wanted = plan.spec.budget;
    let req = CarveRequest {
        parent: parent.name.clone(),
        child: name.to_owned(),
        wanted,
        min: MIN_CHILD_BUDGET.min(wanted.max(1)),
    };
    let Carved { outcome, available } = services.carve(req).await.map_err(|e| e.to_string())?;
    if let AuditEvent::AgentDelegated {
        child,
        transport,
        wanted: w,
        envelope: e,
        ..
    } = event
    {
        *w = wanted;
        *transport = Some(plan.runner.transport().to_owned());
        if let CarveOutcome::Carved(envelope) = outcome {
            *child = Some(name.to_owned());
            *e = envelope;
        }
    }
    match outcome {
        CarveOutcome::Carved(envelope) => {
            let carve = AuditEvent::BudgetDecision {
                agent: parent.name.clone(),
                op: BudgetOp::Carve,
                requested: wanted,
                granted: envelope,
                released: 0,
                overrun: 0,
                available,
                denied: None,
            };
            services.record(carve).await.map_err(|e| e.to_string())?;
            Ok((plan, envelope))
        }
        CarveOutcome::Denied(d) => Err(format!(
            "not enough budget to delegate: `{}` has {} tokens left and a child needs at least {}",
            parent.name, d.available, d.needed
        )),
    }
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s >= 60 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{}s", d.as_secs_f64())
    }
}
