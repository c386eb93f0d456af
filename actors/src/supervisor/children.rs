//! Delegated children, the shell's side: a `delegate` call is checked ([`refusal`]),
//! resolved and carved in a background task (the supervisor never waits on a service),
//! started when ready, cancelled when its parent's attempt ends, and its account closed
//! and its report sent back when it ends. The bookkeeping is [`super::delegation`].

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;

use super::background::record_lost;
use super::delegation::{refusal, Asking};
use super::slots::{AgentSlot, Runner};
use super::SupervisorState;
use crate::audit::{AuditEvent, BudgetOp};
use crate::budget::{CarveOutcome, CarveRequest};
use crate::delegate::{
    AgentResolver, ChildPlan, ChildRunner, DelegateRequest, ParentInfo, DEFAULT_CHILD_DEADLINE,
};
use crate::identity::{service_name, ServiceKind};
use crate::policy::PolicyRules;
use crate::protocol::run::ReportPort;
use crate::protocol::{Carved, Closed, PolicyMsg, ReadyChild, RunMsg, Services};
use crate::report::{AgentReport, AgentStatus, RunEvent};

/// The smallest budget worth starting a delegated agent with.
const MIN_CHILD_BUDGET: u64 = 256;

impl SupervisorState {
    /// Handles a `delegate` tool call of agent `parent`: checks what needs no service here,
    /// then resolves the child and carves its budget in a background task, which sends
    /// [`RunMsg::ChildReady`] (or replies with why no child runs).
    pub(super) fn delegate(
        &mut self,
        myself: &ActorRef<RunMsg>,
        parent: usize,
        attempt: u32,
        request: DelegateRequest,
        reply: ReportPort,
    ) {
        let slot = &self.agents[parent];
        let depth = slot.name().depth() + 1;
        let asking = Asking {
            name: &slot.spec.name,
            runs: slot.runs(attempt),
            max_depth: self.max_depth,
            resolver: self.resolver.is_some(),
        };
        if let Some(why) = refusal(asking) {
            let mut event = AuditEvent::delegation(&slot.spec.name, depth, &request);
            if let AuditEvent::AgentDelegated { refused, .. } = &mut event {
                *refused = Some(why.clone());
            }
            let _ = reply.send(Err(why));
            self.record(event);
            return;
        }
        let parent_name = slot.spec.name.clone();
        let name = (self.delegations).next_child_name(parent, &parent_name, &request.agent);
        let info = ParentInfo {
            name: parent_name,
            scope: slot.spec.scope.clone(),
            depth,
            child: name.clone(),
        };
        let resolver = Arc::clone(self.resolver.as_ref().expect("checked by refusal"));
        let services = self.services.clone();
        let me = myself.clone();
        self.background(tokio::spawn(async move {
            match prepare_child(&*resolver, &services, &request, &info, name).await {
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
    pub(super) async fn child_ready(&mut self, myself: &ActorRef<RunMsg>, child: ReadyChild) {
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
        let gone = !p.runs(attempt) || self.cancelled;
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
            let why = why.unwrap_or_else(|| "no policy for the parent".into());
            self.abandon_child(name, why, reply);
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
                specs: self.tool_specs.of(&tools),
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
        self.agents.push(AgentSlot::new(spec, runner));
        self.delegations.adopt(parent, i, reply);
        self.start_agent(myself, i).await;
    }

    /// Gives a carved envelope back (its child will not run) and tells the tool call why.
    fn abandon_child(&mut self, name: String, why: String, reply: ReportPort) {
        let services = self.services.clone();
        self.background(tokio::spawn(async move {
            if let Err(e) = services.close(&name).await {
                tracing::error!("could not close the account of {name}: {e}");
            }
            let _ = reply.send(Err(why));
        }));
    }

    /// Cancels the live children of agent `i`, whose attempt ended.
    pub(super) fn cancel_children(&mut self, i: usize) {
        let why = format!(
            "cancelled: the agent that delegated to it (`{}`) ended",
            self.agents[i].spec.name
        );
        for c in self.delegations.children_of(i).to_vec() {
            self.force_end(c, AgentStatus::Cancelled, &why);
        }
    }

    /// Closes an ended child's budget account (the rest of its envelope goes back to its
    /// parent), audits it, then sends its report to the waiting tool call: the parent's
    /// next turn sees the tokens returned.
    pub(super) fn close_child(&mut self, report: &AgentReport, reply: ReportPort) {
        let services = self.services.clone();
        let report = report.clone();
        self.background(tokio::spawn(async move {
            match services.close(&report.agent).await {
                Ok(Closed {
                    returned,
                    available,
                }) => {
                    let event = AuditEvent::budget_released(
                        &report.agent,
                        BudgetOp::Close,
                        returned,
                        available,
                    );
                    if let Err(e) = services.record(event).await {
                        record_lost(&e);
                    }
                }
                Err(e) => tracing::error!("could not close the account of {}: {e}", report.agent),
            }
            let _ = reply.send(Ok(report));
        }));
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
    let mut event = AuditEvent::delegation(&parent.name, parent.depth, request);
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
            let op = BudgetOp::Carve;
            let carve = AuditEvent::budget_granted(&parent.name, op, wanted, envelope, available);
            services.record(carve).await.map_err(|e| e.to_string())?;
            Ok((plan, envelope))
        }
        CarveOutcome::Denied(d) => Err(format!(
            "not enough budget to delegate: `{}` has {} tokens left and a child needs at least {}",
            parent.name, d.available, d.needed
        )),
    }
}
