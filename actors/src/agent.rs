//! The AgentActor: one attempt of one agent.
//!
//! Each [`AgentMsg::Step`] is one turn: reserve the worst case from the BudgetActor, call
//! the model with its output cap clamped to the grant, commit the reported usage, then run
//! the tool calls the model asked for (each planned by the tool, decided by the
//! PolicyActor, and audited) and queue the next step. One message per turn keeps the actor
//! responsive between turns; a kill (cancellation, deadline) also interrupts a turn in
//! flight, dropping the model stream.
//!
//! The attempt ends with [`SupervisorPort::done`] and a normal stop. A transient model error
//! or an unreachable service returns an error instead, and a panic (in the model, a tool or
//! here) is caught by ractor; both fail the actor, and its supervisor decides whether to
//! restart it. After every turn the conversation is checkpointed ([`crate::checkpoint`]),
//! and a restarted attempt continues from the last checkpoint (or from its goal, with
//! [`crate::spec::RestartFrom::Goal`]); what it spent stays spent, because the ledger is keyed by agent
//! name, not by attempt.
//!
//! Before every call the conversation is brought under the agent's context cap
//! ([`crate::context`]; the agent's side of it is in `compaction.rs`).
//!
//! When the run's global budget is held by siblings' calls in flight, a denied reservation
//! is not the end: the agent waits for them to settle and asks again (the ledger says when
//! waiting can help). Only a budget that is really spent ends it.
//!
//! Tool calls of one turn run concurrently. A tool error or a denial goes back to the model
//! as that call's result; it never fails the agent.
//!
//! For live output the agent sends [`RunEvent`]s (model call started, turn completed with
//! its usage, tool started and called) straight to the run's events channel, which is
//! unbounded: the agent never waits for whoever watches. With
//! [`AgentSpec::redact_secrets`], tool output is passed through the run's redactor before
//! the model sees it.

mod compaction;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;

use crate::audit::{AgentExecutionEvent, AuditEvent, BudgetOp, Redactor};
use crate::budget::{
    failed_call_charge, FailedCallBasis, Grant, PromptCalibration, ReservationId, ReserveOutcome,
    ReserveRequest, Settlement,
};
use crate::checkpoint::Checkpoint;
use crate::context::ContextPolicy;
use crate::model::{
    collect_call, CallPurpose, ChatMessage, FailedCall, Model, ModelError, ModelRequest,
    ModelResponse, Role, ToolCall, ToolSpec, Usage,
};
pub use crate::protocol::agent::{AgentMsg, AgentOutcome};
use crate::protocol::{ServiceError, Services, SupervisorPort};
use crate::report::{AgentStatus, RunEvent, ToolOutcome};
use crate::spec::AgentSpec;
use crate::tool::{Access, Tool, ToolContext};

/// The smallest output cap worth a model call.
const MIN_OUTPUT_TOKENS: u64 = 64;
/// Tool output beyond this is cut before it reaches the model.
const MAX_TOOL_OUTPUT_BYTES: usize = 64 * 1024;
/// What the model is told on its wrap-up turn.
const WRAPUP_NOTE: &str = "Your token budget is nearly spent. Do not call any more tools: \
give your final answer now, with what you found and what remains to be done.";
/// How often in a row an answer cut off by the output cap is continued.
const MAX_CONTINUATIONS: u32 = 2;

/// Everything one attempt needs; fixed for the attempt.
pub struct AgentArgs {
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// When the agent's first attempt started.
    pub first_started: DateTime<Utc>,
    /// Tokens the agent had spent when this attempt started (earlier attempts' usage).
    pub tokens_before: u64,
    /// The agent.
    pub spec: Arc<AgentSpec>,
    /// Its model.
    pub model: Arc<dyn Model>,
    /// Its tools (already limited to those its spec enables).
    pub tools: Arc<Vec<Arc<dyn Tool>>>,
    /// Their specs, in the same order (one copy shared by the agents with the same tools).
    pub tool_specs: Arc<[ToolSpec]>,
    /// What its tools know about it.
    pub ctx: ToolContext,
    /// The run's services.
    pub services: Services,
    /// The attempt's handle on the run supervisor.
    pub supervisor: SupervisorPort,
    /// Where live [`RunEvent`]s go (model calls, turns, tool calls); never waited on.
    pub events: Option<mpsc::UnboundedSender<RunEvent>>,
    /// Masks secrets in tool output when the spec asks for it, and in the arguments the
    /// audit record keeps (before they are cut to size, so no secret is half kept).
    pub redactor: Arc<Redactor>,
    /// Whether the run keeps checkpoints: the agent sends one to the supervisor after
    /// every turn ([`SupervisorPort::checkpoint`]).
    pub checkpoints: bool,
    /// Where this attempt starts, if not from its goal: the last checkpoint of a restarted
    /// attempt or of a resumed run (the supervisor leaves it out under
    /// [`crate::spec::RestartFrom::Goal`]).
    pub resume_from: Option<Checkpoint>,
}

/// See the module docs.
pub struct AgentActor;

/// The attempt's conversation and progress.
pub struct AgentState {
    core: Arc<AgentArgs>,
    tool_specs: Arc<[ToolSpec]>,
    messages: Vec<ChatMessage>,
    /// Prompt estimates anchored on the provider's reported counts.
    calibration: PromptCalibration,
    /// The context cap: the definition's, else the model's context window.
    context: ContextPolicy,
    turn: u32,
    /// Model calls made by this attempt (turns and compactions): the reservations' ids.
    calls: u32,
    /// Whether this turn is the wrap-up turn (no tools, a request for the final answer).
    wrapup: bool,
    /// Whether the next one will be: less than the wrap-up fraction of the budget is left.
    wrapup_next: bool,
    /// The parts of a final answer the output cap cut off, continued on the next turn.
    cut: String,
    /// Continuations asked for in a row.
    continuations: u32,
}

impl Actor for AgentActor {
    type Msg = AgentMsg;
    type State = AgentState;
    type Arguments = AgentArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: AgentArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let resumed = args
            .resume_from
            .clone()
            .filter(|c| c.agent == args.spec.name);
        let (messages, turn, wrapup) = match resumed {
            Some(c) => (c.messages, c.turn, c.wrapup),
            None => (first_messages(&args.spec), 0, false),
        };
        Ok(AgentState {
            context: args.spec.context.or_window(args.model.context_window()),
            tool_specs: Arc::clone(&args.tool_specs),
            core: Arc::new(args),
            messages,
            calibration: PromptCalibration::default(),
            turn,
            calls: 0,
            wrapup,
            wrapup_next: wrapup,
            cut: String::new(),
            continuations: 0,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // On disk before the first model call: its reservation's record waits for it.
        state.core.append(state.core.started_event()).await?;
        myself.send_message(AgentMsg::Step)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        AgentMsg::Step: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match state.turn().await? {
            Some(outcome) => {
                state.core.supervisor.done(outcome)?;
                myself.stop(None);
            }
            None => myself.send_message(AgentMsg::Step)?,
        }
        Ok(())
    }
}

/// A conversation that starts from the goal: the instructions and the task.
fn first_messages(spec: &AgentSpec) -> Vec<ChatMessage> {
    let mut messages = Vec::new();
    if !spec.instructions.trim().is_empty() {
        messages.push(ChatMessage::text(Role::System, spec.instructions.clone()));
    }
    messages.push(ChatMessage::text(Role::User, task_prompt(spec)));
    messages
}

fn task_prompt(spec: &AgentSpec) -> String {
    let scope = if spec.scope.is_empty() {
        "the whole workspace".to_owned()
    } else {
        format!(
            "`{}` (paths are relative to the workspace root)",
            spec.scope
        )
    };
    format!(
        "Goal: {}\n\nScope: {scope}.\nWhen you are done, answer without calling tools; that answer is your final report.",
        spec.goal
    )
}

fn done(status: AgentStatus, final_message: Option<String>, error: Option<String>) -> AgentOutcome {
    AgentOutcome::new(status, final_message, error)
}

/// What the model is told when the output cap cut its answer off.
fn continue_note(cap: u64) -> String {
    format!(
        "Your answer was cut off by the output limit ({cap} tokens). Continue it exactly \
         where it stopped, without repeating anything."
    )
}

impl AgentState {
    /// One turn. `Some` ends the attempt; `None` asks for another turn; `Err` fails it.
    async fn turn(&mut self) -> Result<Option<AgentOutcome>, ActorProcessingErr> {
        let spec = Arc::clone(&self.core.spec);
        if self.turn >= spec.max_turns {
            let error = format!("used all {} turns without a final answer", spec.max_turns);
            return Ok(Some(done(
                AgentStatus::MaxTurns,
                self.last_text(),
                Some(error),
            )));
        }
        let tools = if self.wrapup {
            self.messages
                .push(ChatMessage::text(Role::User, WRAPUP_NOTE));
            Arc::from([])
        } else {
            Arc::clone(&self.tool_specs)
        };
        if let Some(outcome) = self.fit_context(&tools).await? {
            return Ok(Some(outcome));
        }
        let (response, max_output) = match self.call_model(tools).await? {
            Ok(answer) => answer,
            Err(outcome) => return Ok(Some(outcome)),
        };
        self.turn += 1;
        self.messages.push(ChatMessage {
            role: Role::Assistant,
            content: response.text.clone(),
            tool_calls: response
                .tool_calls
                .iter()
                .map(crate::limits::for_history)
                .collect(),
            tool_call_id: None,
        });
        if let Some(outcome) = self.answered(&response, max_output) {
            return Ok(Some(outcome));
        }
        let specs = &self.tool_specs;
        let results = join_all(
            response
                .tool_calls
                .iter()
                .enumerate()
                .map(|(i, c)| self.core.run_tool(i, c, specs)),
        )
        .await;
        for result in results {
            self.messages.push(result?);
        }
        self.checkpoint();
        Ok(None)
    }

    /// The reservation id of the attempt's next model call.
    fn next_call(&mut self) -> ReservationId {
        let id = ReservationId {
            agent: self.core.spec.name.clone(),
            attempt: self.core.attempt,
            turn: self.calls,
        };
        self.calls += 1;
        id
    }

    /// Makes the turn's model call. `Ok(Ok(_))` is the response and the output cap it was
    /// given; `Ok(Err(outcome))` ends the attempt.
    async fn call_model(
        &mut self,
        tools: Arc<[ToolSpec]>,
    ) -> Result<Result<(ModelResponse, u64), AgentOutcome>, ActorProcessingErr> {
        let spec = Arc::clone(&self.core.spec);
        let model = Arc::clone(&self.core.model);
        let prompt = self.calibration.estimate(&self.messages, &tools, |m, t| {
            model.estimate_prompt_tokens(m, t)
        });
        let sent = self.messages.len();
        let call = PendingCall {
            messages: self.messages.clone(),
            tools,
            prompt,
            wanted: self.context.output_cap(prompt, spec.max_output_tokens),
            purpose: CallPurpose::Turn,
        };
        let called = match self.model_call(call).await? {
            Ok(called) => called,
            Err(outcome) => return Ok(Err(outcome)),
        };
        if let Some(usage) = called.response.usage {
            self.calibration.observe(sent, usage);
        }
        let threshold = (spec.budget as f64 * spec.wrapup_fraction) as u64;
        self.wrapup_next = called.settlement.available < threshold.max(1);
        Ok(Ok((called.response, called.grant.max_output_tokens)))
    }

    /// One model call of the attempt, a turn's or a compaction's: reserve, stream, settle
    /// and audit. `Ok(Err(outcome))` ends the attempt (budget spent, a fatal error, or an
    /// overrun that stops the agent); a transient error fails it.
    async fn model_call(
        &mut self,
        pending: PendingCall,
    ) -> Result<Result<Called, AgentOutcome>, ActorProcessingErr> {
        let spec = Arc::clone(&self.core.spec);
        let id = self.next_call();
        let grant = match self
            .core
            .reserve(&id, pending.prompt, pending.wanted)
            .await?
        {
            Ok(grant) => grant,
            Err(error) => return Ok(Err(self.ended(AgentStatus::BudgetExceeded, error))),
        };
        let request = ModelRequest {
            agent: spec.name.clone(),
            attempt: self.core.attempt,
            turn: self.turn,
            model: None,
            messages: pending.messages,
            tools: pending.tools,
            max_output_tokens: grant.max_output_tokens,
            purpose: pending.purpose,
        };
        // Turns are shown and recorded from 1, as attempts are (`self.turn` is an index).
        self.core.emit(RunEvent::ModelCallStarted {
            agent: spec.name.clone(),
            attempt: self.core.attempt,
            turn: self.turn + 1,
        });
        let call = Call {
            id: &id,
            turn: self.turn,
            grant,
            prompt: pending.prompt,
        };
        let response = match collect_call(self.core.model.stream(request)).await {
            Ok(r) => r,
            Err(failed) => return Ok(Err(self.core.model_failed(call, failed).await?)),
        };
        let settlement = self.core.settle(call, &response).await?;
        if stops_for_overrun(&settlement, &grant, response.usage) {
            let error = format!(
                "the provider reported {} tokens for a call granted {}: {} over, recorded as an overrun; agent stopped",
                settlement.charged + settlement.overrun,
                settlement.granted,
                settlement.overrun
            );
            let last = Some(response.text).filter(|t| !t.trim().is_empty());
            let last = last.or_else(|| self.last_text());
            return Ok(Err(done(AgentStatus::BudgetExceeded, last, Some(error))));
        }
        Ok(Ok(Called {
            response,
            grant,
            settlement,
        }))
    }

    /// After the model answered (with an output cap of `max_output`): `Some` when the
    /// attempt ends here (a wrap-up answer, or a final answer without tool calls). A final
    /// answer cut by the output cap is continued on the next turn when it may be.
    fn answered(&mut self, response: &ModelResponse, max_output: u64) -> Option<AgentOutcome> {
        let truncated = response.truncated();
        if self.wrapup {
            let error = "budget nearly spent: ended with a wrap-up answer".to_owned();
            let mut outcome = self.ended(AgentStatus::BudgetExceeded, error);
            outcome.truncated = truncated;
            return Some(outcome);
        }
        if !response.tool_calls.is_empty() {
            self.continuations = 0;
            self.cut.clear();
        } else if truncated && self.may_continue() {
            // The answer was cut: the model is told, and continues it next turn.
            self.cut.push_str(&response.text);
            self.continuations += 1;
            let note = continue_note(max_output);
            self.messages.push(ChatMessage::text(Role::User, note));
        } else {
            let text = std::mem::take(&mut self.cut) + &response.text;
            let mut outcome = done(AgentStatus::Completed, Some(text), None);
            outcome.truncated = truncated;
            return Some(outcome);
        }
        self.wrapup = self.wrapup_next;
        None
    }

    /// The attempt ends with `status` and `error`, keeping the last answer.
    fn ended(&self, status: AgentStatus, error: String) -> AgentOutcome {
        done(status, self.last_text(), Some(error))
    }

    /// Hands the conversation after a complete turn to the checkpoint writer.
    fn checkpoint(&self) {
        if !self.core.checkpoints {
            return;
        }
        let checkpoint = Checkpoint {
            agent: self.core.spec.name.clone(),
            attempt: self.core.attempt,
            turn: self.turn,
            wrapup: self.wrapup_next,
            messages: self.messages.clone(),
        };
        self.core.supervisor.checkpoint(checkpoint);
    }

    /// Whether a final answer cut by the output cap may be continued: turns are left, the
    /// agent is not wrapping up, and it has not been continued too often in a row (the
    /// next turn's reservation decides whether the budget allows it).
    fn may_continue(&self) -> bool {
        !self.wrapup
            && self.turn < self.core.spec.max_turns
            && self.continuations < MAX_CONTINUATIONS
    }

    fn last_text(&self) -> Option<String> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::Assistant && !m.content.trim().is_empty())
            .map(|m| m.content.clone())
    }
}

impl AgentArgs {
    fn name(&self) -> &str {
        &self.spec.name
    }

    /// Sends a live event; a receiver that is gone is ignored.
    fn emit(&self, event: RunEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }

    /// Records `event` and waits until it is on disk (with every record of this agent
    /// before it): for records a side effect depends on. See [`AgentArgs::append`].
    async fn record(&self, event: AuditEvent) -> Result<u64, ServiceError> {
        self.services.record(event).await
    }

    /// Records `event` without waiting for the disk. The rule: a record made before a side
    /// effect (a model call, a write, a program, a fetch, an MCP call, a delegation) is on
    /// disk before that side effect starts; records after it, and before reads, ride on the
    /// next durable wait. One wait per side effect instead of one per record.
    async fn append(&self, event: AuditEvent) -> Result<(), ServiceError> {
        self.services.append(vec![event]).await
    }

    fn started_event(&self) -> AuditEvent {
        AuditEvent::AgentStarted(AgentExecutionEvent::started(
            &self.spec.name,
            &self.spec.goal,
            self.attempt,
            self.first_started,
            self.tokens_before,
        ))
    }

    /// Reserves for a call; `Ok(Err(reason))` is a denial.
    async fn reserve(
        &self,
        id: &ReservationId,
        prompt: u64,
        wanted: u64,
    ) -> Result<Result<Grant, String>, ServiceError> {
        let req = ReserveRequest {
            id: id.clone(),
            prompt_tokens: prompt,
            max_output_tokens: wanted,
            min_output_tokens: MIN_OUTPUT_TOKENS.min(wanted),
        };
        let outcome = self.reserve_waiting(req).await?;
        let name = self.name();
        let requested = prompt + wanted;
        let (event, result) = match outcome {
            ReserveOutcome::Granted(g) => {
                let op = BudgetOp::Reserve;
                let event = AuditEvent::budget_granted(name, op, requested, g.granted, g.available);
                (event, Ok(g))
            }
            ReserveOutcome::Denied(d) => {
                let whose = if d.global { "the run's" } else { "its" };
                let reason = format!(
                    "budget exhausted: {whose} remaining {} tokens cannot cover a turn needing {}",
                    d.available, d.needed
                );
                let event = AuditEvent::budget_denied(name, requested, d.available, reason.clone());
                (event, Err(reason))
            }
        };
        self.record(event).await?;
        Ok(result)
    }

    /// Reserves, and while the denial is only because siblings' calls in flight hold the
    /// run's tokens, waits for them to settle and asks again (same id, so idempotent).
    async fn reserve_waiting(&self, req: ReserveRequest) -> Result<ReserveOutcome, ServiceError> {
        let mut pause = Duration::from_millis(20);
        loop {
            let outcome = self.services.reserve(req.clone()).await?;
            match &outcome {
                ReserveOutcome::Denied(d) if d.wait => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                _ => return Ok(outcome),
            }
        }
    }

    /// Commits a successful call's usage and audits it.
    async fn settle(
        &self,
        call: Call<'_>,
        response: &ModelResponse,
    ) -> Result<Settlement, ServiceError> {
        let (usage, estimated) = match response.usage {
            Some(u) => (u, false),
            None => (estimated_usage(call.prompt, response), true),
        };
        let facts = CallFacts {
            usage,
            estimated,
            tool_calls: response.tool_calls.len(),
            error: None,
            truncated: response.truncated(),
        };
        let settlement = self.commit_call(call, facts).await?;
        self.emit(RunEvent::TurnCompleted {
            agent: self.name().to_owned(),
            attempt: self.attempt,
            turn: call.turn + 1,
            usage,
            tokens_used: settlement.agent_used,
            tool_calls: response.tool_calls.len(),
            truncated: response.truncated(),
        });
        Ok(settlement)
    }

    /// Commits a call's usage, then audits the call and the commit.
    async fn commit_call(
        &self,
        call: Call<'_>,
        facts: CallFacts,
    ) -> Result<Settlement, ServiceError> {
        let used = facts.usage.total();
        let model_call = AuditEvent::ModelCall {
            agent: self.name().to_owned(),
            attempt: self.attempt,
            turn: call.turn + 1,
            model: self.model.name(),
            granted: call.grant.granted,
            max_output_tokens: call.grant.max_output_tokens,
            usage: facts.usage,
            usage_estimated: facts.estimated,
            tool_calls: facts.tool_calls,
            error: facts.error,
            truncated: facts.truncated,
        };
        // The commit and both records in one request, written together after the call: the
        // next side effect's durable wait puts them on disk (see `append`).
        let s = (self.services)
            .commit_recorded(call.id.clone(), used, model_call)
            .await?;
        Ok(s)
    }

    /// A failed call is charged what the provider may bill for it ([`failed_call_charge`]:
    /// its reported usage, else the whole reservation once the provider accepted the call)
    /// and audited; a fatal error ends the agent (`Ok`), a transient one fails the attempt.
    async fn model_failed(
        &self,
        call: Call<'_>,
        failed: FailedCall,
    ) -> Result<AgentOutcome, ActorProcessingErr> {
        let FailedCall {
            error,
            accepted,
            usage,
        } = failed;
        let (usage, basis) = failed_call_charge(call.prompt, call.grant.granted, accepted, usage);
        let facts = CallFacts {
            usage,
            estimated: basis != FailedCallBasis::Reported,
            tool_calls: 0,
            error: Some(format!("{error} ({})", basis.explain())),
            truncated: false,
        };
        self.commit_call(call, facts).await?;
        match error {
            ModelError::Fatal(_) => Ok(done(AgentStatus::Failed, None, Some(error.to_string()))),
            ModelError::Transient(_) => Err(error.into()),
        }
    }

    /// Runs one tool call through plan → policy → invoke, auditing each step; the result is
    /// the message the model gets back.
    /// `specs` are the agent's tools' specs, in the order of `self.tools` (computed once per
    /// attempt: building a spec builds its JSON schema).
    async fn run_tool(
        &self,
        index: usize,
        call: &ToolCall,
        specs: &[ToolSpec],
    ) -> Result<ChatMessage, ServiceError> {
        self.emit(RunEvent::ToolStarted {
            agent: self.name().to_owned(),
            tool: call.name.clone(),
        });
        let result = match crate::limits::refusal(index, call) {
            Some(why) => ToolResult::Error(why),
            None => self.checked_invoke(call, specs).await?,
        };
        let (outcome, error, content, sandbox) = match result {
            ToolResult::Ok(content, sandbox) => (ToolOutcome::Ok, None, content, sandbox),
            ToolResult::Denied(why) => (ToolOutcome::Denied, Some(why.clone()), why, None),
            ToolResult::Error(why) => {
                let content = format!("error: {why}");
                (ToolOutcome::Error, Some(why), content, None)
            }
        };
        let content = if self.spec.redact_secrets {
            self.redactor.redact(&content).into_owned()
        } else {
            content
        };
        let content = cap_output(content);
        let arguments = call.arguments.to_string();
        self.append(AuditEvent::ToolCall {
            agent: self.name().to_owned(),
            tool: call.name.clone(),
            call_id: call.id.clone(),
            arguments: truncate(&self.redactor.redact(&arguments), 2048),
            outcome,
            error,
            output_bytes: content.len(),
            sandbox,
        })
        .await?;
        self.emit(RunEvent::ToolCalled {
            agent: self.name().to_owned(),
            tool: call.name.clone(),
            outcome,
        });
        Ok(ChatMessage::tool_result(call.id.clone(), content))
    }

    async fn checked_invoke(
        &self,
        call: &ToolCall,
        specs: &[ToolSpec],
    ) -> Result<ToolResult, ServiceError> {
        let found = specs.iter().position(|s| s.name == call.name);
        let Some(tool) = found.map(|i| &self.tools[i]) else {
            let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            return Ok(ToolResult::Error(format!(
                "unknown tool `{}`; available: {}",
                call.name,
                names.join(", ")
            )));
        };
        let plan = match tool.plan(&call.arguments, &self.ctx) {
            Ok(plan) => plan,
            Err(e) => return Ok(ToolResult::Error(e.to_string())),
        };
        for access in &plan {
            let decision = self.services.decide(self.name(), access).await?;
            self.append(AuditEvent::PolicyDecision {
                agent: self.name().to_owned(),
                tool: call.name.clone(),
                access: access.clone(),
                allowed: decision.allowed,
                rule: decision.rule.clone(),
            })
            .await?;
            if !decision.allowed {
                return Ok(ToolResult::Denied(denial_message(access, &decision.rule)));
            }
        }
        if plan.iter().any(Access::is_side_effect) {
            self.services.flush_audit().await?;
        }
        match tool.invoke(call.arguments.clone(), &plan, &self.ctx).await {
            Ok(out) => {
                for path in out.written {
                    self.supervisor.artifact(path);
                }
                Ok(ToolResult::Ok(out.content, out.sandbox))
            }
            Err(e) => Ok(ToolResult::Error(e.to_string())),
        }
    }
}

/// A model call about to be made.
struct PendingCall {
    messages: Vec<ChatMessage>,
    tools: Arc<[ToolSpec]>,
    /// The prompt's estimate.
    prompt: u64,
    /// The output cap wanted (the grant may clamp it).
    wanted: u64,
    purpose: CallPurpose,
}

/// A model call that answered, settled.
struct Called {
    response: ModelResponse,
    grant: Grant,
    settlement: Settlement,
}

/// One model call of an attempt, as its settlement needs it.
#[derive(Clone, Copy)]
struct Call<'a> {
    /// Its reservation.
    id: &'a ReservationId,
    /// The agent's turn it belongs to (a compaction belongs to the turn it precedes).
    turn: u32,
    /// What was granted.
    grant: Grant,
    /// The prompt's estimate.
    prompt: u64,
}

/// What the audit log says about one model call.
struct CallFacts {
    usage: Usage,
    estimated: bool,
    tool_calls: usize,
    error: Option<String>,
    truncated: bool,
}

enum ToolResult {
    /// The output, and the OS sandbox the call's program ran in, if any.
    Ok(String, Option<String>),
    Denied(String),
    Error(String),
}

/// Whether an overrun ends the agent. The provider reported more than the call's grant; if
/// its answer stayed within the output cap, the excess is the prompt estimate's error (the
/// provider counted the prompt higher than the calibrated estimate), recorded as an overrun
/// but no reason to stop an agent that still has budget: its next reservation sees the
/// overrun and is denied if nothing is left. An answer longer than the cap it was given is a
/// provider that ignores the cap: the agent stops at once.
fn stops_for_overrun(settlement: &Settlement, grant: &Grant, usage: Option<Usage>) -> bool {
    if settlement.overrun == 0 {
        return false;
    }
    let ignored_the_cap = usage.is_none_or(|u| u.output_tokens > grant.max_output_tokens);
    ignored_the_cap || settlement.available == 0
}

fn denial_message(access: &Access, rule: &str) -> String {
    format!("permission denied: this agent may not {access} ({rule})")
}

/// Usage when the provider reported none: the prompt estimate plus a byte-based estimate of
/// the output. Recorded as estimated.
fn estimated_usage(prompt: u64, response: &ModelResponse) -> Usage {
    let calls: usize = response
        .tool_calls
        .iter()
        .map(|c| c.name.len() + c.arguments.to_string().len())
        .sum();
    Usage {
        input_tokens: prompt,
        output_tokens: ((response.text.len() + calls) as u64).div_ceil(3).max(1),
    }
}

fn cap_output(mut content: String) -> String {
    if content.len() > MAX_TOOL_OUTPUT_BYTES {
        let cut = floor_char_boundary(&content, MAX_TOOL_OUTPUT_BYTES);
        content.truncate(cut);
        content.push_str("\n[output truncated by the engine at 64 KiB]");
    }
    content
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    format!("{}…", &s[..floor_char_boundary(s, max)])
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
