//! Starting an agent's attempt: the supervisor spawns an AgentActor (or an
//! ExternalAgentActor for a delegated agent that runs elsewhere) with everything the
//! attempt needs, and a [`SupervisorPort`] addressed to its slot and attempt.

use std::sync::Arc;

use chrono::Utc;
use ractor::{Actor, ActorRef};
use tokio::time::Instant;

use super::slots::Runner;
use super::{Child, SupervisorState};
use crate::agent::{AgentActor, AgentArgs};
use crate::checkpoint::Checkpoint;
use crate::delegate::Delegate;
use crate::external::{ExternalAgentActor, ExternalArgs};
use crate::protocol::{AttemptOrder, RunMsg, SupervisorPort};
use crate::remote_attempt::{RemoteArgs, RemoteAttemptActor};
use crate::report::{AgentStatus, RunEvent};
use crate::spec::{PolicyLayer, RestartFrom};
use crate::tool::ToolContext;

impl SupervisorState {
    pub(super) async fn start_agent(&mut self, myself: &ActorRef<RunMsg>, i: usize) {
        if self.cancelled {
            return;
        }
        if let Runner::Unavailable(why) = &self.agents[i].runner {
            let why = why.clone();
            self.complete(i, AgentStatus::Failed, None, Some(why));
            return;
        }
        let first = self.agents[i].first_started.is_none();
        let Some(attempt) = self.agents[i].begin((Instant::now(), Utc::now())) else {
            return;
        };
        if let (true, Some(deadline)) = (first, self.agents[i].spec.deadline) {
            myself.send_after(deadline, move || RunMsg::AgentDeadline(i));
        }
        let port = SupervisorPort::new(myself.clone(), i, attempt);
        let cell = myself.get_cell();
        let spawned = match &self.agents[i].runner {
            Runner::Local { .. } => {
                let args = self.agent_args(i, port);
                Actor::spawn_linked(None, AgentActor, args, cell).await
            }
            Runner::External(_) => {
                let args = self.external_args(i, port);
                Actor::spawn_linked(None, ExternalAgentActor, args, cell).await
            }
            Runner::Remote(_) => {
                let args = self.remote_args(i, port);
                Actor::spawn_linked(None, RemoteAttemptActor, args, cell).await
            }
            Runner::Unavailable(_) => unreachable!("handled above"),
        };
        match spawned {
            Ok((actor, _)) => {
                self.children.insert(actor.get_id(), Child::Agent(i));
                self.alive.insert(i, actor);
                let agent = self.agents[i].spec.name.clone();
                self.emit(RunEvent::AgentStarted { agent, attempt });
            }
            Err(e) => {
                let why = format!("could not start: {e}");
                self.agents[i].exited(Some(why.clone()));
                self.complete(i, AgentStatus::Failed, None, Some(why));
            }
        }
    }

    /// Agent `i`'s attempt `attempt` completed a turn: its checkpoint is where a restart
    /// continues, and it is written for `codex resume`.
    pub(super) fn checkpointed(&mut self, i: usize, attempt: u32, checkpoint: Checkpoint) {
        if self.agents[i].attempts != attempt {
            return;
        }
        if let Some((store, _)) = &self.checkpoint_store {
            store.save(checkpoint.clone());
        }
        self.agents[i].checkpoint = Some(checkpoint);
    }

    /// Where agent `i`'s next attempt starts, if not from its goal: its newest checkpoint
    /// after a restart; in a resumed run, for its first attempt, the one on disk.
    fn resume_from(&self, i: usize) -> Option<Checkpoint> {
        let slot = &self.agents[i];
        if slot.spec.restart_from != RestartFrom::Checkpoint || !self.checkpoints.keep {
            return None;
        }
        if slot.attempts > 1 {
            return slot.checkpoint.clone();
        }
        let run_dir = self.audit_path.parent().unwrap_or(&self.workspace);
        self.checkpoints
            .resume
            .then(|| crate::checkpoint::load(&crate::checkpoint::path(run_dir, &slot.spec.name)))
            .flatten()
    }

    pub(super) fn tokens_used(&self, agent: &str) -> u64 {
        self.ledger.account(agent).map_or(0, |a| a.used())
    }

    /// The arguments of agent `i`'s next AgentActor (it must run locally).
    fn agent_args(&self, i: usize, port: SupervisorPort) -> AgentArgs {
        let slot = &self.agents[i];
        let Runner::Local {
            model,
            tools,
            specs,
        } = &slot.runner
        else {
            unreachable!("only local agents get an AgentActor")
        };
        let delegator =
            (self.resolver.as_ref()).map(|_| Arc::new(port.delegator()) as Arc<dyn Delegate>);
        let spec = &slot.spec;
        AgentArgs {
            attempt: slot.attempts,
            first_started: slot.first_started.expect("started").1,
            tokens_before: self.tokens_used(&spec.name),
            spec: Arc::clone(spec),
            model: Arc::clone(model),
            tools: Arc::clone(tools),
            tool_specs: Arc::clone(specs),
            ctx: ToolContext {
                agent: spec.name.clone(),
                workspace: spec.root.clone().unwrap_or_else(|| self.workspace.clone()),
                scope: spec.scope.clone(),
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

    /// The arguments of agent `i`'s next ExternalAgentActor.
    fn external_args(&self, i: usize, port: SupervisorPort) -> ExternalArgs {
        let slot = &self.agents[i];
        let Runner::External(runner) = &slot.runner else {
            unreachable!("only external agents get an ExternalAgentActor")
        };
        ExternalArgs {
            attempt: slot.attempts,
            first_started: slot.first_started.expect("started").1,
            tokens_before: self.tokens_used(&slot.spec.name),
            spec: Arc::clone(&slot.spec),
            runner: Arc::clone(runner),
            depth: slot.name().depth(),
            services: self.services.clone(),
            supervisor: port,
        }
    }

    /// The arguments of agent `i`'s next RemoteAttemptActor: the order a worker runs.
    fn remote_args(&self, i: usize, port: SupervisorPort) -> RemoteArgs {
        let slot = &self.agents[i];
        let Runner::Remote(host) = &slot.runner else {
            unreachable!("only remote agents get a RemoteAttemptActor")
        };
        let spec = &slot.spec;
        RemoteArgs {
            order: AttemptOrder {
                run_id: self.run_id.clone(),
                spec: (**spec).clone(),
                attempt: slot.attempts,
                first_started: slot.first_started.expect("started").1,
                tokens_before: self.tokens_used(&spec.name),
                checkpoints: self.checkpoints.keep,
                resume_from: self.resume_from(i),
            },
            root: spec.root.clone().unwrap_or_else(|| self.workspace.clone()),
            host: Arc::clone(host),
            services: self.services.clone(),
            supervisor: port,
        }
    }

    /// Agent `i`'s permissions and scope, then those of each agent above it (nearest
    /// first): set by the engine for a child delegated in this run, and handed to a child
    /// codex process by its delegating one.
    fn policy_layers(&self, i: usize) -> Vec<PolicyLayer> {
        self.agents[i].spec.policy_chain()
    }
}
