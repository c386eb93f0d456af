//! The agent's side of context management: before a call, bring the conversation under
//! its cap (the decisions are pure, in [`crate::context`]); a compaction with `retention:
//! job` makes one model call, reserved, settled and audited like a turn's.

use std::sync::Arc;

use ractor::ActorProcessingErr;

use super::{done, AgentOutcome, AgentState, PendingCall};
use crate::audit::AuditEvent;
use crate::context::{self, Compaction, ContextStep, Retention};
use crate::model::{CallPurpose, ChatMessage, ToolSpec};
use crate::report::{AgentStatus, RunEvent};

impl AgentState {
    /// Brings the conversation under the context cap before a call with `tools`: `Some`
    /// ends the attempt (the compaction call failed, the budget is spent, or even the
    /// system prompt and goal do not fit).
    pub(super) async fn fit_context(
        &mut self,
        tools: &[ToolSpec],
    ) -> Result<Option<AgentOutcome>, ActorProcessingErr> {
        let spec = Arc::clone(&self.core.spec);
        let policy = self.context;
        let Some(cap) = policy.prompt_cap(spec.max_output_tokens) else {
            return Ok(None);
        };
        let model = Arc::clone(&self.core.model);
        let est = |m: &[ChatMessage]| model.estimate_prompt_tokens(m, tools);
        if est(&self.messages) <= cap {
            return Ok(None);
        }
        let elided = context::elide_tool_outputs(&mut self.messages, |m| est(m) <= cap);
        let mut dropped = 0;
        if let ContextStep::Compact(c) = context::plan(&self.messages, &policy, cap, est) {
            let note = match policy.retention {
                Retention::Job => match self.handoff_note(c, cap).await? {
                    Ok(note) => Some(context::handoff_note(&note)),
                    Err(outcome) => return Ok(Some(outcome)),
                },
                Retention::Turn | Retention::None => None,
            };
            dropped = c.keep_from - c.head;
            context::apply(&mut self.messages, c, note);
        }
        if !context::cut_to_fit(&mut self.messages, cap, est) {
            let head = &self.messages[..context::head_len(&self.messages)];
            let error = format!(
                "the instructions and the goal alone need about {} tokens, over the context cap \
                 of {cap} prompt tokens: raise policies.context.max_tokens",
                est(head)
            );
            return Ok(Some(done(
                AgentStatus::Failed,
                self.last_text(),
                Some(error),
            )));
        }
        // The provider's count covered a conversation that is no more.
        self.calibration.reset();
        let record = AuditEvent::ContextCompacted {
            agent: spec.name.clone(),
            turn: self.turn + 1,
            elided,
            dropped,
            retention: policy.retention,
            prompt_tokens: est(&self.messages),
            cap,
        };
        self.core.record(record).await?;
        self.core.emit(RunEvent::ContextCompacted {
            agent: spec.name.clone(),
            turn: self.turn + 1,
            elided,
            dropped,
        });
        Ok(None)
    }

    /// The model's handoff note for the messages `compaction` drops. `Ok(Err(outcome))`
    /// ends the attempt.
    async fn handoff_note(
        &mut self,
        compaction: Compaction,
        cap: u64,
    ) -> Result<Result<String, AgentOutcome>, ActorProcessingErr> {
        let spec = Arc::clone(&self.core.spec);
        let model = Arc::clone(&self.core.model);
        let dropped = &self.messages[compaction.head..compaction.keep_from];
        let messages =
            context::compaction_request(dropped, cap, |m| model.estimate_prompt_tokens(m, &[]));
        let prompt = model.estimate_prompt_tokens(&messages, &[]);
        // A note of at most a quarter of the cap, so that it fits beside the recent turns.
        let wanted = self
            .context
            .output_cap(prompt, spec.max_output_tokens.min(cap / 4));
        let call = PendingCall {
            messages,
            tools: Arc::from([]),
            prompt,
            wanted,
            purpose: CallPurpose::Compaction,
        };
        Ok(self
            .model_call(call)
            .await?
            .map(|called| called.response.text))
    }
}
