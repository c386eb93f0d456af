//! The run supervisor: the root of a run's supervision tree, and the only place that
//! spawns actors.
//!
//! ```text
//! RunSupervisor
//! ├── AuditActor    permanent   (restarted: reopens the log, continues the sequence)
//! ├── BudgetActor   permanent   (restarted from the supervisor's copy of the ledger)
//! ├── PolicyActor   permanent   (restarted from the same rules)
//! ├── AgentActor ×N by its spec (transient by default; restarted within its intensity)
//! └── delegated agents          (AgentActor, or ExternalAgentActor for a child run
//!                                elsewhere; started at run time, see [`crate::delegate`])
//! ```
//!
//! The actor is a thin shell over pure parts, each in its own file with its own tests:
//! the slot table with each agent's lifecycle and the verdict after an exit
//! (`slots.rs`, on top of [`crate::restart::decide`]), the concurrency queue (`queue.rs`),
//! and the delegation bookkeeping (`delegation.rs`). The shell turns messages into calls of
//! those parts and carries out what they decide: spawning, killing, timers, background
//! tasks. Its handlers for services (`services.rs`), delegated children (`children.rs`)
//! and background work and the final report (`background.rs`) are submodules.
//!
//! ractor tells a supervisor only that a child exited; a restart is scheduled with a
//! timer message (`send_after`), never a sleep, so the supervisor keeps serving while it
//! waits.
//!
//! **Ordering.** ractor delivers supervision events ahead of ordinary messages. A child's
//! last messages (an agent's [`RunMsg::AgentDone`], the BudgetActor's journal) could
//! therefore be overtaken by the news of its exit. So every supervision event is turned
//! into a [`RunMsg::ChildExited`] message to ourselves, which queues behind everything the
//! child sent before it died; the protocol's ports send into this same mailbox.
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
//! at once (children do not count against `max_concurrency`). When the child ends, its
//! account is closed and its report goes to the waiting tool call. Whenever an agent's
//! attempt ends, for any reason, its live children are cancelled.

mod attempts;
mod background;
mod children;
pub(crate) mod delegation;
pub(crate) mod queue;
mod services;
pub(crate) mod slots;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

// tokio's clock: the same as std's in a run, and paused and advanced with the runtime in tests
// (restart windows and durations then follow virtual time).
use tokio::time::Instant;

use chrono::Utc;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::audit::{AgentExecutionEvent, AuditEvent, Redactor};
use crate::budget::BudgetLedger;
use crate::checkpoint::CheckpointStore;
use crate::delegate::AgentResolver;
use crate::identity::ServiceKind;
use crate::plan::{AgentPlan, Closing};
use crate::policy::PolicyTable;
use crate::protocol::run::ReportPort;
use crate::protocol::{AgentMsg, RemoteHost, RunMsg, Services};
use crate::report::{AgentReport, AgentStatus, RunEvent, RunReport};
use crate::restart::RestartHistory;
use delegation::Delegations;
use queue::StartQueue;
use slots::{after_exit, humanize, AgentSlot, Force, Runner, ToolSpecs, Verdict};

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
    pub(crate) closing: Option<Arc<dyn Closing>>,
    pub(crate) remote: Option<Arc<dyn RemoteHost>>,
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

/// What a child actor of the supervisor is.
enum Child {
    Agent(usize),
    Service(ServiceKind),
}

/// The supervisor's state: the pure parts, and the handles the shell needs.
pub struct SupervisorState {
    run_id: String,
    workspace: PathBuf,
    audit_path: PathBuf,
    started: Instant,
    agents: Vec<AgentSlot>,
    /// The tool specs of the agents' toolsets, one copy per distinct set.
    tool_specs: ToolSpecs,
    queue: StartQueue,
    delegations: Delegations<ReportPort>,
    /// The live attempt of each agent that runs, by slot.
    alive: HashMap<usize, ActorRef<AgentMsg>>,
    children: HashMap<ActorId, Child>,
    ledger: BudgetLedger,
    policies: PolicyTable,
    service_history: BTreeMap<ServiceKind, RestartHistory>,
    services: Services,
    events: Option<mpsc::UnboundedSender<RunEvent>>,
    redactor: Arc<Redactor>,
    resolver: Option<Arc<dyn AgentResolver>>,
    max_depth: u32,
    checkpoints: Checkpoints,
    /// The run's checkpoint writer and its task (awaited before the run reports).
    checkpoint_store: Option<(CheckpointStore, JoinHandle<()>)>,
    /// The application's records for right after `run_started` (taken at `Begin`).
    opening: Vec<AuditEvent>,
    /// The application's records for before `run_finished`.
    closing: Option<Arc<dyn Closing>>,
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
        let mut state = SupervisorState::new(args);
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
        // `run_started` is on disk (see `SupervisorState::new`): agents may start.
        myself.send_message(RunMsg::Begin)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.dispatch(&myself, msg).await;
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

/// A run's own agent's slot: its attempts run on workers when the run has a
/// [`RemoteHost`].
fn slot_of(
    plan: AgentPlan,
    remote: Option<&Arc<dyn RemoteHost>>,
    specs: &mut ToolSpecs,
) -> AgentSlot {
    let runner = match (plan.unavailable, remote) {
        (Some(why), _) => Runner::Unavailable(why),
        (None, Some(host)) => Runner::Remote(Arc::clone(host)),
        (None, None) => Runner::Local {
            model: plan.model,
            specs: specs.of(&plan.tools),
            tools: Arc::new(plan.tools),
        },
    };
    AgentSlot::new(plan.spec, runner)
}

impl SupervisorState {
    fn new(args: SupervisorArgs) -> Self {
        let remote = args.remote.as_ref();
        let mut tool_specs = ToolSpecs::default();
        let agents: Vec<AgentSlot> = (args.agents.into_iter())
            .map(|plan| slot_of(plan, remote, &mut tool_specs))
            .collect();
        // `run_started` is the log's first record, written before the AuditActor counts as
        // started: a log that cannot take it (a full disk) stops the run before any agent.
        let first_record = AuditEvent::RunStarted {
            agents: agents.iter().map(|a| a.spec.name.clone()).collect(),
            total_budget: args.ledger.global().limit,
        };
        let run_dir = args.audit_path.parent().unwrap_or(&args.workspace);
        Self {
            checkpoint_store: (args.checkpoints.keep)
                .then(|| CheckpointStore::spawn(run_dir.to_owned())),
            queue: StartQueue::new(agents.len(), args.max_concurrency),
            agents,
            tool_specs,
            delegations: Delegations::default(),
            alive: HashMap::new(),
            resolver: args.resolver,
            max_depth: args.max_depth,
            checkpoints: args.checkpoints,
            opening: args.opening,
            closing: args.closing,
            run_id: args.run_id,
            workspace: args.workspace,
            audit_path: args.audit_path,
            started: Instant::now(),
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
            first_record: Some(first_record),
        }
    }

    async fn dispatch(&mut self, myself: &ActorRef<RunMsg>, msg: RunMsg) {
        match msg {
            RunMsg::Cancel => self.cancel_all(AgentStatus::Cancelled, "cancelled by the user"),
            RunMsg::BudgetJournal(op) => self.ledger.apply(&op),
            RunMsg::Artifact { index, path } => {
                self.agents[index].artifacts.insert(path);
            }
            RunMsg::Checkpoint {
                index,
                attempt,
                checkpoint,
            } => self.checkpointed(index, attempt, *checkpoint),
            RunMsg::AgentDone {
                index,
                attempt,
                outcome,
            } => self.agents[index].record_outcome(attempt, outcome),
            RunMsg::ChildExited { id, failure } => match self.children.remove(&id) {
                Some(Child::Agent(i)) => self.agent_exited(myself, i, failure),
                Some(Child::Service(kind)) => self.service_exited(myself, kind, failure),
                None => {}
            },
            RunMsg::Begin => self.begin().await,
            RunMsg::StartAgent(i) => self.start_agent(myself, i).await,
            RunMsg::RestartService(kind) => {
                if let Err(e) = self.spawn_service(myself, kind).await {
                    self.service_exited(myself, kind, Some(e.to_string()));
                }
            }
            RunMsg::AgentDeadline(i) => {
                let limit = self.agents[i].spec.deadline.unwrap_or_default();
                let why = format!("deadline of {} passed", humanize(limit));
                self.force_end(i, AgentStatus::TimedOut, &why);
            }
            RunMsg::Drained => self.drained(myself),
            RunMsg::Delegate {
                parent,
                attempt,
                request,
                reply,
            } => self.delegate(myself, parent, attempt, request, reply),
            RunMsg::ChildReady(child) => self.child_ready(myself, *child).await,
            RunMsg::Finalized(report) => {
                if let Some(done) = self.done.take() {
                    let _ = done.send(*report);
                }
                myself.stop(None);
            }
        }
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn emit(&self, event: RunEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }

    /// Starts queued agents while places under `max_concurrency` are free. Called after
    /// every message, so it returns at once when nothing is queued, and counts the places
    /// taken once per call, not once per agent started.
    async fn start_pending(&mut self, myself: &ActorRef<RunMsg>) {
        if !self.begun || self.queue.is_empty() || self.cancelled {
            return;
        }
        let mut running = self.agents.iter().filter(|a| a.holds_a_place()).count();
        while let Some(i) = self.queue.next(running) {
            let before = usize::from(self.agents[i].holds_a_place());
            self.start_agent(myself, i).await;
            // Starting agent `i` changes no other slot.
            running = running - before + usize::from(self.agents[i].holds_a_place());
        }
    }

    /// Agent `i`'s attempt exited: what follows is [`after_exit`]'s verdict.
    fn agent_exited(&mut self, myself: &ActorRef<RunMsg>, i: usize, failure: Option<String>) {
        self.alive.remove(&i);
        let attempt = self.agents[i].attempts;
        let name = self.agents[i].spec.name.clone();
        self.end_attempt(&name, attempt);
        self.cancel_children(i);
        let now = self.now();
        let slot = &mut self.agents[i];
        let exit = slot.exited(failure);
        match after_exit(slot, exit, now) {
            Verdict::Restart {
                attempt,
                delay,
                reason,
            } => {
                tracing::info!("agent {name} failed ({reason}); restart {attempt} in {delay:?}");
                let delay_ms = delay.as_millis() as u64;
                self.emit(RunEvent::AgentRestarting {
                    agent: name.clone(),
                    reason: reason.clone(),
                    delay_ms,
                });
                let restarted = AuditEvent::AgentRestarted {
                    agent: name,
                    attempt,
                    delay_ms,
                    reason,
                };
                let start = RunMsg::StartAgent(i);
                self.record_then(restarted, myself.clone(), delay, start);
            }
            Verdict::Final {
                status,
                final_message,
                error,
            } => self.complete(i, status, final_message, error),
        }
    }

    /// Ends agent `i` on the supervisor's initiative: kill it if it runs, else end it now.
    fn force_end(&mut self, i: usize, status: AgentStatus, why: &str) {
        match self.agents[i].force(status, why) {
            Force::Nothing => {}
            Force::Kill => {
                if let Some(actor) = self.alive.get(&i) {
                    actor.kill();
                }
            }
            Force::EndNow => self.complete(i, status, None, Some(why.to_owned())),
        }
    }

    fn cancel_all(&mut self, status: AgentStatus, why: &str) {
        self.cancelled = true;
        for i in 0..self.agents.len() {
            self.force_end(i, status, why);
        }
        self.queue.clear();
    }

    /// Agent `i` is final: its report is made, audited, sent to a waiting parent and shown.
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
        let report = self.report_of(i, status, final_message, error);
        if let Some((store, _)) = &self.checkpoint_store {
            store.finished(&report.agent);
        }
        let slot = &mut self.agents[i];
        slot.finish(report.clone());
        let start_time = slot.first_started.map_or_else(Utc::now, |s| s.1);
        let attempt = slot.attempts;
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
        if let Some(reply) = self.delegations.take_port(i) {
            self.close_child(&report, reply);
        }
        self.emit(RunEvent::AgentFinished(report));
    }

    /// Agent `i`'s report as it ends now with `status`.
    fn report_of(
        &self,
        i: usize,
        status: AgentStatus,
        final_message: Option<String>,
        error: Option<String>,
    ) -> AgentReport {
        let slot = &self.agents[i];
        let error = error.or_else(|| {
            (status != AgentStatus::Completed)
                .then(|| slot.last_error.clone())
                .flatten()
        });
        AgentReport {
            agent: slot.spec.name.clone(),
            goal: slot.spec.goal.clone(),
            scope: slot.spec.scope.clone(),
            status,
            tokens_used: self.tokens_used(&slot.spec.name),
            budget: slot.spec.budget,
            duration_secs: slot.duration(Instant::now()).as_secs_f64(),
            restarts: slot.history.total(),
            artifacts: slot.artifacts.iter().cloned().collect(),
            error,
            final_message,
            parent: slot.name().parent().map(str::to_owned),
            depth: slot.name().depth(),
            truncated: slot.truncated,
        }
    }
}
