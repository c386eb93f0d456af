//! `--record FILE`: a live run's model turns, written as a replay script.
//!
//! [`RecordingModel`] wraps an agent's model and watches each turn's stream go by. When a
//! turn's stream ends cleanly, the turn (text, tool calls, reported usage) goes to the
//! [`Recorder`] over a channel; a failed or abandoned stream records nothing. After the
//! run, [`Recorder::write`] keeps each agent's last attempt (the one that ended the agent,
//! since a restarted agent replays from its first turn) and writes the script. Replaying it
//! with `--replay FILE` gives the same tool calls and the same charged tokens, so a recorded
//! run is a regression test for agent definitions.
//!
//! Delays are not recorded: a replayed run is as fast as the engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::Context as _;
use codex_actors::model::{
    CallPurpose, ChatMessage, ModelError, ModelEvent, ModelRequest, ToolSpec,
};
use codex_actors::Model;
use futures::stream::{BoxStream, Stream, StreamExt};
use tokio::sync::mpsc;

use super::replay::{self, AgentScript, ScriptedCall, ScriptedUsage, Turn};

/// One completed turn, as seen on the wire.
#[derive(Debug, Clone)]
struct Recorded {
    agent: String,
    attempt: u32,
    turn: u32,
    played: Turn,
}

/// Wraps models so that their turns reach a [`Recorder`].
#[derive(Clone)]
pub struct RecordTap {
    sender: mpsc::UnboundedSender<Recorded>,
}

impl RecordTap {
    /// `model`, recording every turn it completes.
    pub fn wrap(&self, model: Arc<dyn Model>) -> Arc<dyn Model> {
        Arc::new(RecordingModel {
            inner: model,
            sender: self.sender.clone(),
        })
    }
}

/// Collects recorded turns during a run and writes them afterwards.
pub struct Recorder {
    path: PathBuf,
    turns: mpsc::UnboundedReceiver<Recorded>,
    sender: mpsc::UnboundedSender<Recorded>,
}

impl Recorder {
    /// A recorder that will write to `path` (the caller checks, before the run, that it can
    /// be written: `assembly::drive::check_writable`).
    pub fn new(path: &Path) -> Self {
        let (sender, turns) = mpsc::unbounded_channel();
        Self {
            path: path.to_owned(),
            turns,
            sender,
        }
    }

    /// `model`, recording every turn it completes.
    pub fn wrap(&self, model: Arc<dyn Model>) -> Arc<dyn Model> {
        self.tap().wrap(model)
    }

    /// A handle that wraps models for this recorder, for models made later in the run
    /// (delegated agents').
    pub fn tap(&self) -> RecordTap {
        RecordTap {
            sender: self.sender.clone(),
        }
    }

    /// Writes each agent's last attempt as a replay script; returns how many turns it holds.
    pub fn write(mut self) -> anyhow::Result<usize> {
        let mut all = Vec::new();
        while let Ok(turn) = self.turns.try_recv() {
            all.push(turn);
        }
        let agents = last_attempts(all);
        let count = agents.values().map(|s| s.turns.len()).sum();
        let yaml = replay::to_yaml(agents)?;
        let header = "# Recorded by `codex --record`; replay with `--replay FILE`.\n";
        crate::atomic_file::write(
            &self.path,
            format!("{header}{yaml}").as_bytes(),
            crate::atomic_file::Replace::Allowed,
        )
        .context("could not write the recording")?;
        Ok(count)
    }
}

/// Each agent's turns of its highest attempt, in turn order.
fn last_attempts(all: Vec<Recorded>) -> BTreeMap<String, AgentScript> {
    let mut last: BTreeMap<String, u32> = BTreeMap::new();
    for r in &all {
        let a = last.entry(r.agent.clone()).or_default();
        *a = (*a).max(r.attempt);
    }
    let mut turns: BTreeMap<String, BTreeMap<u32, Turn>> = BTreeMap::new();
    for r in all.into_iter().filter(|r| last[&r.agent] == r.attempt) {
        turns.entry(r.agent).or_default().insert(r.turn, r.played);
    }
    turns
        .into_iter()
        .map(|(agent, t)| {
            let turns = t.into_values().collect();
            (agent, AgentScript { turns })
        })
        .collect()
}

/// A model that reports every completed turn to a [`Recorder`].
struct RecordingModel {
    inner: Arc<dyn Model>,
    sender: mpsc::UnboundedSender<Recorded>,
}

impl Model for RecordingModel {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn context_window(&self) -> Option<u64> {
        self.inner.context_window()
    }

    fn stream(&self, request: ModelRequest) -> BoxStream<'static, Result<ModelEvent, ModelError>> {
        if request.purpose == CallPurpose::Compaction {
            // Not a turn: a replay answers compactions itself.
            return self.inner.stream(request);
        }
        let turn = Recorded {
            agent: request.agent.clone(),
            attempt: request.attempt,
            turn: request.turn,
            played: Turn::default(),
        };
        Box::pin(Recording {
            inner: self.inner.stream(request),
            turn: Some(turn),
            sender: self.sender.clone(),
        })
    }

    fn estimate_prompt_tokens(&self, messages: &[ChatMessage], tools: &[ToolSpec]) -> u64 {
        self.inner.estimate_prompt_tokens(messages, tools)
    }
}

/// The inner stream, passed through unchanged, with its events noted on the side.
struct Recording {
    inner: BoxStream<'static, Result<ModelEvent, ModelError>>,
    turn: Option<Recorded>,
    sender: mpsc::UnboundedSender<Recorded>,
}

impl Stream for Recording {
    type Item = Result<ModelEvent, ModelError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let item = match this.inner.poll_next_unpin(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        match (&item, this.turn.as_mut()) {
            (Some(Ok(event)), Some(r)) => note(&mut r.played, event),
            (Some(Err(_)), _) => this.turn = None,
            (None, _) => {
                if let Some(r) = this.turn.take() {
                    let _ = this.sender.send(r);
                }
            }
            (Some(Ok(_)), None) => {}
        }
        Poll::Ready(item)
    }
}

fn note(turn: &mut Turn, event: &ModelEvent) {
    match event {
        ModelEvent::TextDelta(t) => turn.text.push_str(t),
        ModelEvent::ToolCall(c) => turn.tool_calls.push(ScriptedCall {
            name: c.name.clone(),
            arguments: c.arguments.clone(),
        }),
        ModelEvent::Usage(u) => {
            turn.usage = Some(ScriptedUsage {
                input_tokens: Some(u.input_tokens),
                output_tokens: Some(u.output_tokens),
            })
        }
        // A replayed turn ends normally; a truncation is in the live run's audit log.
        ModelEvent::Stop(_) | ModelEvent::Accepted => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use codex_actors::model::{collect_response, ToolCall, Usage};
    use futures::stream;

    /// A model that answers every turn with the same events.
    struct Fixed(Vec<ModelEvent>, bool);

    impl Model for Fixed {
        fn name(&self) -> String {
            "fixed".into()
        }
        fn stream(&self, _: ModelRequest) -> BoxStream<'static, Result<ModelEvent, ModelError>> {
            let mut items: Vec<_> = self.0.iter().cloned().map(Ok).collect();
            if self.1 {
                items.push(Err(ModelError::Transient("cut off".into())));
            }
            stream::iter(items).boxed()
        }
    }

    fn request(agent: &str, attempt: u32, turn: u32) -> ModelRequest {
        ModelRequest {
            agent: agent.into(),
            attempt,
            turn,
            model: None,
            messages: Vec::new(),
            tools: Vec::new().into(),
            max_output_tokens: 100,
            purpose: Default::default(),
        }
    }

    fn events() -> Vec<ModelEvent> {
        vec![
            ModelEvent::TextDelta("Reading ".into()),
            ModelEvent::TextDelta("it".into()),
            ModelEvent::ToolCall(ToolCall {
                id: "c1".into(),
                name: "read_file".into(),
                arguments: serde_json::json!({"path": "a.rs"}),
            }),
            ModelEvent::Usage(Usage {
                input_tokens: 120,
                output_tokens: 30,
            }),
        ]
    }

    #[tokio::test]
    async fn a_recorded_run_replays_the_same_turns_and_usage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.yaml");
        let recorder = Recorder::new(&path);
        let model = recorder.wrap(Arc::new(Fixed(events(), false)));
        let live = collect_response(model.stream(request("a", 1, 0)))
            .await
            .unwrap();
        assert_eq!(recorder.write().unwrap(), 1);

        let replayed = super::super::replay_model(&path, &["a"]).unwrap();
        let again = collect_response(replayed.stream(request("a", 1, 0)))
            .await
            .unwrap();
        assert_eq!(again.text, live.text);
        assert_eq!(again.usage, live.usage);
        assert_eq!(again.tool_calls[0].name, "read_file");
        assert_eq!(again.tool_calls[0].arguments, live.tool_calls[0].arguments);
    }

    #[tokio::test]
    async fn a_failed_turn_is_not_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Recorder::new(&dir.path().join("rec.yaml"));
        let model = recorder.wrap(Arc::new(Fixed(events(), true)));
        assert!(collect_response(model.stream(request("a", 1, 0)))
            .await
            .is_err());
        assert_eq!(recorder.write().unwrap(), 0);
    }

    #[tokio::test]
    async fn only_the_last_attempt_of_an_agent_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.yaml");
        let recorder = Recorder::new(&path);
        let model = recorder.wrap(Arc::new(Fixed(events(), false)));
        for (attempt, turn) in [(1, 0), (1, 1), (2, 0)] {
            let s = model.stream(request("a", attempt, turn));
            collect_response(s).await.unwrap();
        }
        assert_eq!(recorder.write().unwrap(), 1);
    }
}
