//! The `replay` provider: a [`Model`] that plays scripted turns instead of calling a language
//! model. It is the test double of the engine and the no-key demo (`--replay FILE`).
//!
//! # Script format
//!
//! One YAML file holds scripts for several agents, keyed by agent name:
//!
//! ```yaml
//! agents:
//!   code-reviewer:
//!     turns:
//!       - text: "I'll look at the parser first."   # assistant text (may be empty or absent)
//!         tool_calls:                              # optional
//!           - name: read_file
//!             arguments: { path: src/parser.rs }
//!         usage: { input_tokens: 420, output_tokens: 60 }  # optional, either field may be left out
//!         delay_ms: 500                            # optional: async wait before answering
//!       - text: "Final review: ..."                # no tool calls: the final answer
//!       # Faults, per turn:
//!       #   fault: panic | error | fatal   panic!() in the stream / ModelError::Transient / ModelError::Fatal
//!       #   fault_message: "..."           optional text of the fault
//!       #   attempts: [1]                  the fault applies only on these attempts (default: all)
//!       #   overrun: true                  report usage even above max_output_tokens
//!   "lead/test-gen#1":                     # a delegated agent, by its name in the run; if
//!     turns: [...]                         # absent, its definition's script (`test-gen`)
//!   default:                               # optional: the script of agents not listed
//!     turns: [...]
//! ```
//!
//! Unknown fields are errors (scripts are written for machines, a typo should not be ignored),
//! and a malformed file is reported as `file:line:column: field: problem`.
//!
//! # Playing a turn
//!
//! The engine calls [`Model::stream`] once per agent turn; [`ModelRequest::turn`] (from 0,
//! within an attempt) picks the scripted turn, so a restarted agent replays its script from
//! the start. A turn's stream first waits `delay_ms` (a tokio sleep inside the stream, so
//! dropping the stream cancels it), then either fails with the turn's fault (when it applies
//! to [`ModelRequest::attempt`]) without emitting anything, or emits the text as a few
//! [`ModelEvent::TextDelta`] chunks, each tool call as a [`ModelEvent::ToolCall`] with id
//! `call_<turn>_<index>`, and one [`ModelEvent::Usage`].
//!
//! Usage not given in the script is estimated like a real model would count it: input =
//! ceil(prompt bytes / 4), where the prompt is every message's content and tool calls plus the
//! tool specs as JSON; output = max(1, ceil((text bytes + tool-call JSON bytes) / 4)). Output
//! is then clamped to [`ModelRequest::max_output_tokens`], as a real model stops at its
//! limit, unless the turn says `overrun: true` (to test overrun detection).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use codex_actors::model::{
    CallPurpose, ChatMessage, Model, ModelError, ModelEvent, ModelRequest, ToolCall, ToolSpec,
    Usage,
};
use futures::stream::{self, BoxStream, StreamExt};
use futures::FutureExt;
use serde::{Deserialize, Serialize};

/// Writes scripts for `agents` as a replay file's YAML (what `--record` produces).
pub fn to_yaml(agents: BTreeMap<String, AgentScript>) -> anyhow::Result<String> {
    Ok(serde_yaml::to_string(&ScriptFile { agents })?)
}

/// The script used for agents that have none of their own.
pub const DEFAULT_AGENT: &str = "default";

/// How many [`ModelEvent::TextDelta`] chunks a turn's text is split into (at most).
const TEXT_CHUNKS: usize = 3;

/// Replay scripts for several agents, loaded from YAML ([`ReplayScript::load`]) or built in
/// code ([`ReplayScript::scripted`]). Immutable once built.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayScript {
    /// Where the script came from, for error messages (a path, or `<scripted>`).
    source: String,
    /// Scripts by agent name; [`DEFAULT_AGENT`] is the fallback.
    agents: BTreeMap<String, AgentScript>,
}

/// The file's top level.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ScriptFile {
    agents: BTreeMap<String, AgentScript>,
}

/// One agent's script: its turns, played in order within each attempt.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentScript {
    /// The turns; turn `n` of an attempt plays `turns[n]`.
    pub turns: Vec<Turn>,
}

/// One scripted model response. Build it in code with [`Turn::say`] and the `with_*`
/// methods, or with struct update syntax over `Turn::default()`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// The assistant text; may be empty.
    #[serde(default)]
    pub text: String,
    /// Tool calls, in order. A turn without any is a final answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ScriptedCall>,
    /// Usage to report; missing fields are estimated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ScriptedUsage>,
    /// Milliseconds to wait (asynchronously) before answering.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delay_ms: u64,
    /// A fault to produce instead of the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    /// The fault's message (a generic one names the agent and turn otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_message: Option<String>,
    /// The attempts (from 1) the fault applies to; `None` means every attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<u32>>,
    /// Report the usage unclamped even when it exceeds `max_output_tokens`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overrun: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A scripted tool call; its id is assigned when played (`call_<turn>_<index>`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedCall {
    /// The tool's name.
    pub name: String,
    /// The arguments, passed to the tool as written (default: `{}`).
    #[serde(default = "empty_object")]
    pub arguments: serde_json::Value,
}

/// Scripted usage; a field left out is estimated (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedUsage {
    /// Prompt tokens to report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Generated tokens to report (clamped unless the turn overruns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
}

/// What goes wrong on a faulty turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// `panic!()` while the stream is polled: tests the actor's panic isolation.
    Panic,
    /// [`ModelError::Transient`]: the attempt fails and the supervisor may restart the agent.
    Error,
    /// [`ModelError::Fatal`]: the agent fails without restarts.
    Fatal,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// Builders for scripts written in Rust (tests).
#[cfg(test)]
impl Turn {
    /// A turn that answers `text` with no tool calls.
    pub fn say(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    /// Adds a tool call to `name` with `arguments`.
    pub fn with_call(mut self, name: impl Into<String>, arguments: serde_json::Value) -> Self {
        self.tool_calls.push(ScriptedCall {
            name: name.into(),
            arguments,
        });
        self
    }

    /// Reports exactly this usage (output still clamped unless [`Turn::with_overrun`]).
    pub fn with_usage(mut self, input_tokens: u64, output_tokens: u64) -> Self {
        self.usage = Some(ScriptedUsage {
            input_tokens: Some(input_tokens),
            output_tokens: Some(output_tokens),
        });
        self
    }

    /// Waits `ms` milliseconds before answering.
    pub fn with_delay(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }

    /// Produces `fault` (on every attempt unless [`Turn::on_attempts`]).
    pub fn with_fault(mut self, fault: Fault, message: impl Into<String>) -> Self {
        self.fault = Some(fault);
        self.fault_message = Some(message.into());
        self
    }

    /// Limits the fault to these attempts (from 1).
    pub fn on_attempts(mut self, attempts: impl Into<Vec<u32>>) -> Self {
        self.attempts = Some(attempts.into());
        self
    }

    /// Reports usage unclamped by `max_output_tokens`.
    pub fn with_overrun(mut self) -> Self {
        self.overrun = true;
        self
    }
}

impl Turn {
    /// Whether the fault (if any) applies on `attempt`.
    fn fault_on(&self, attempt: u32) -> Option<Fault> {
        let applies = self.attempts.as_ref().is_none_or(|a| a.contains(&attempt));
        self.fault.filter(|_| applies)
    }

    /// Checks fields that only make sense together; `at` names the turn.
    fn validate(&self, at: &str) -> anyhow::Result<()> {
        if self.fault.is_none() {
            anyhow::ensure!(
                self.attempts.is_none(),
                "{at}: `attempts` applies only to a `fault`"
            );
            anyhow::ensure!(
                self.fault_message.is_none(),
                "{at}: `fault_message` needs a `fault`"
            );
        }
        if let Some(attempts) = &self.attempts {
            anyhow::ensure!(!attempts.contains(&0), "{at}: attempts are numbered from 1");
        }
        Ok(())
    }
}

impl ReplayScript {
    /// Reads and checks a YAML script. Errors name the file, and for malformed YAML the line,
    /// column and field; unknown fields are rejected.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read replay script `{}`", path.display()))?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses script `text`; `source` names it in errors.
    pub fn parse(source: &str, text: &str) -> anyhow::Result<Self> {
        let file: ScriptFile = serde_yaml::from_str(text).map_err(|e| yaml_error(source, &e))?;
        let script = Self {
            source: source.to_string(),
            agents: file.agents,
        };
        script.validate()?;
        Ok(script)
    }

    /// A script built in code: `(agent name, turns)` pairs ([`DEFAULT_AGENT`] for the
    /// fallback). Its source is `<scripted>`.
    #[cfg(test)]
    pub fn scripted<N: Into<String>>(agents: impl IntoIterator<Item = (N, Vec<Turn>)>) -> Self {
        let agents = agents
            .into_iter()
            .map(|(name, turns)| (name.into(), AgentScript { turns }))
            .collect();
        Self {
            source: "<scripted>".to_string(),
            agents,
        }
    }

    /// The agent names the script has, sorted (including [`DEFAULT_AGENT`] if present).
    pub fn agent_names(&self) -> impl Iterator<Item = &str> {
        self.agents.keys().map(String::as_str)
    }

    /// The script that plays for `agent`: its own; for a delegated agent
    /// (`lead/test-gen#1`), else its definition's (`test-gen`); else the default one.
    pub fn script_for(&self, agent: &str) -> Option<&AgentScript> {
        self.agents
            .get(agent)
            .or_else(|| {
                let name = codex_actors::identity::AgentName::parse(agent);
                self.agents.get(name.definition())
            })
            .or_else(|| self.agents.get(DEFAULT_AGENT))
    }

    fn validate(&self) -> anyhow::Result<()> {
        for (agent, script) in &self.agents {
            anyhow::ensure!(
                !script.turns.is_empty(),
                "{}: agents.{agent}.turns: an agent's script needs at least one turn",
                self.source
            );
            for (i, turn) in script.turns.iter().enumerate() {
                turn.validate(&format!("{}: agents.{agent}.turns[{i}]", self.source))?;
            }
        }
        Ok(())
    }

    /// The turn that answers `request`, or the Fatal error explaining why there is none.
    fn turn_for(&self, request: &ModelRequest) -> Result<&Turn, ModelError> {
        let script = self.script_for(&request.agent).ok_or_else(|| {
            let names: Vec<&str> = self.agent_names().collect();
            ModelError::Fatal(format!(
                "replay script `{}` has no script for agent `{}` and no `{DEFAULT_AGENT}` one (it has: {})",
                self.source,
                request.agent,
                names.join(", ")
            ))
        })?;
        script.turns.get(request.turn as usize).ok_or_else(|| {
            ModelError::Fatal(format!(
                "replay script for agent `{}` has no turn {} (it has {}); add turns or check the agent's tool calls",
                request.agent,
                request.turn + 1,
                script.turns.len()
            ))
        })
    }
}

/// `file:line:column: field: problem` for a YAML error.
fn yaml_error(source: &str, error: &serde_yaml::Error) -> anyhow::Error {
    let message = error.to_string();
    let Some(at) = error.location() else {
        return anyhow::anyhow!("{source}: malformed replay script: {message}");
    };
    let (line, column) = (at.line(), at.column());
    let suffix = format!(" at line {line} column {column}");
    let message = message.strip_suffix(&suffix).unwrap_or(&message);
    anyhow::anyhow!("{source}:{line}:{column}: malformed replay script: {message}")
}

/// A [`Model`] that plays a [`ReplayScript`]. Deterministic: the same request always gets
/// the same events.
#[derive(Debug, Clone)]
pub struct ReplayModel {
    script: Arc<ReplayScript>,
}

impl ReplayModel {
    /// A model playing `script`.
    pub fn new(script: Arc<ReplayScript>) -> Self {
        Self { script }
    }
}

impl Model for ReplayModel {
    fn name(&self) -> String {
        "replay".to_string()
    }

    fn stream(&self, request: ModelRequest) -> BoxStream<'static, Result<ModelEvent, ModelError>> {
        if request.purpose == CallPurpose::Compaction {
            return stream::iter([Ok(ModelEvent::TextDelta(compaction_note(&request)))]).boxed();
        }
        match self.script.turn_for(&request) {
            Err(e) => stream::iter([Err(e)]).boxed(),
            Ok(turn) => play(turn.clone(), request),
        }
    }
}

/// A script's answer to a compaction call (which is not one of its turns): a note saying
/// what was compacted, with usage left to the engine's estimate.
fn compaction_note(request: &ModelRequest) -> String {
    format!(
        "(replay) handoff note for `{}`: earlier turns compacted before turn {}.",
        request.agent, request.turn
    )
}

/// The stream of one turn: the delay, then the fault or the events.
fn play(turn: Turn, request: ModelRequest) -> BoxStream<'static, Result<ModelEvent, ModelError>> {
    async move {
        if turn.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(turn.delay_ms)).await;
        }
        match turn.fault_on(request.attempt) {
            Some(fault) => vec![Err(fault_error(fault, &turn, &request))],
            None => events(&turn, &request).into_iter().map(Ok).collect(),
        }
    }
    .map(stream::iter)
    .flatten_stream()
    .boxed()
}

/// The error of `fault`; for [`Fault::Panic`], the scripted panic itself.
fn fault_error(fault: Fault, turn: &Turn, request: &ModelRequest) -> ModelError {
    let message = turn.fault_message.clone().unwrap_or_else(|| {
        format!(
            "scripted {} on turn {} of agent `{}` (attempt {})",
            FaultName(fault),
            request.turn + 1,
            request.agent,
            request.attempt
        )
    });
    match fault {
        Fault::Panic => panic!("{message}"),
        Fault::Error => ModelError::Transient(message),
        Fault::Fatal => ModelError::Fatal(message),
    }
}

struct FaultName(Fault);

impl fmt::Display for FaultName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Fault::Panic => "panic",
            Fault::Error => "error",
            Fault::Fatal => "fatal error",
        })
    }
}

/// The events of a turn that answers normally: text chunks, tool calls, usage.
fn events(turn: &Turn, request: &ModelRequest) -> Vec<ModelEvent> {
    let calls: Vec<ToolCall> = turn
        .tool_calls
        .iter()
        .enumerate()
        .map(|(i, c)| ToolCall {
            id: format!("call_{}_{i}", request.turn),
            name: c.name.clone(),
            arguments: c.arguments.clone(),
        })
        .collect();
    let usage = usage(turn, request, &calls);
    let mut events: Vec<ModelEvent> = text_chunks(&turn.text)
        .into_iter()
        .map(ModelEvent::TextDelta)
        .collect();
    events.extend(calls.into_iter().map(ModelEvent::ToolCall));
    events.push(ModelEvent::Usage(usage));
    events
}

/// Splits `text` into at most [`TEXT_CHUNKS`] non-empty pieces on char boundaries.
fn text_chunks(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(TEXT_CHUNKS).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// The usage a turn reports: scripted or estimated, output clamped unless it overruns.
fn usage(turn: &Turn, request: &ModelRequest, calls: &[ToolCall]) -> Usage {
    let scripted = turn.usage.unwrap_or_default();
    let input = scripted
        .input_tokens
        .unwrap_or_else(|| estimate_input(&request.messages, &request.tools));
    let output = scripted
        .output_tokens
        .unwrap_or_else(|| estimate_output(&turn.text, calls));
    let output = if turn.overrun {
        output
    } else {
        output.min(request.max_output_tokens)
    };
    Usage {
        input_tokens: input,
        output_tokens: output,
    }
}

/// ceil(prompt bytes / 4): message contents and tool calls, plus the tool specs as JSON.
fn estimate_input(messages: &[ChatMessage], tools: &[ToolSpec]) -> u64 {
    let messages: usize = messages
        .iter()
        .map(|m| m.content.len() + json_len(&m.tool_calls))
        .sum();
    ((messages + json_len(tools)) as u64).div_ceil(4)
}

/// max(1, ceil((text bytes + tool-call JSON bytes) / 4)).
fn estimate_output(text: &str, calls: &[ToolCall]) -> u64 {
    let bytes = text.len() + json_len(calls);
    (bytes as u64).div_ceil(4).max(1)
}

/// The length of `value` as compact JSON; nothing for an empty list.
fn json_len<T: serde::Serialize>(value: &[T]) -> usize {
    if value.is_empty() {
        return 0;
    }
    serde_json::to_string(value).map_or(0, |s| s.len())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use codex_actors::model::{collect_response, ModelResponse, Role};
    use futures::FutureExt;
    use serde_json::json;

    use super::*;

    fn model(turns: Vec<Turn>) -> ReplayModel {
        ReplayModel::new(Arc::new(ReplayScript::scripted([("agent", turns)])))
    }

    fn request(turn: u32, attempt: u32) -> ModelRequest {
        ModelRequest {
            agent: "agent".to_string(),
            attempt,
            turn,
            model: None,
            messages: vec![ChatMessage::text(Role::User, "x".repeat(40))],
            tools: Vec::new().into(),
            max_output_tokens: 1000,
            purpose: Default::default(),
        }
    }

    async fn play_turn(
        model: &ReplayModel,
        req: ModelRequest,
    ) -> Result<ModelResponse, ModelError> {
        collect_response(model.stream(req)).await
    }

    fn usage(input_tokens: u64, output_tokens: u64) -> Option<Usage> {
        Some(Usage {
            input_tokens,
            output_tokens,
        })
    }

    #[tokio::test]
    async fn plays_turns_in_order_by_request_turn() {
        let m = model(vec![Turn::say("first"), Turn::say("second")]);
        assert_eq!(play_turn(&m, request(1, 1)).await.unwrap().text, "second");
        assert_eq!(play_turn(&m, request(0, 1)).await.unwrap().text, "first");
        assert_eq!(play_turn(&m, request(0, 2)).await.unwrap().text, "first");
    }

    #[tokio::test]
    async fn text_is_streamed_in_several_chunks() {
        let events: Vec<_> = model(vec![Turn::say("hello streaming world")])
            .stream(request(0, 1))
            .collect()
            .await;
        let deltas = events
            .iter()
            .filter(|e| matches!(e, Ok(ModelEvent::TextDelta(_))))
            .count();
        assert!(deltas > 1, "{events:?}");
    }

    #[tokio::test]
    async fn tool_calls_have_ids_and_arguments() {
        let turn = Turn::say("")
            .with_call("read_file", json!({"path": "a.rs"}))
            .with_call("grep", json!({"pattern": "x"}));
        let m = model(vec![Turn::say("-"), turn]);
        let calls = play_turn(&m, request(1, 1)).await.unwrap().tool_calls;
        let expected = [
            ("call_1_0", "read_file", json!({"path": "a.rs"})),
            ("call_1_1", "grep", json!({"pattern": "x"})),
        ];
        assert_eq!(calls.len(), 2);
        for (call, (id, name, args)) in calls.iter().zip(expected) {
            assert_eq!((call.id.as_str(), call.name.as_str()), (id, name));
            assert_eq!(call.arguments, args);
        }
    }

    #[tokio::test]
    async fn scripted_usage_is_reported() {
        let m = model(vec![Turn::say("hi").with_usage(420, 60)]);
        let response = play_turn(&m, request(0, 1)).await.unwrap();
        assert_eq!(response.usage, usage(420, 60));
    }

    #[tokio::test]
    async fn usage_is_estimated_from_request_and_response() {
        // Prompt: 40 bytes -> 10 tokens. Output: 9 bytes of text -> 3 tokens.
        let m = model(vec![Turn::say("123456789")]);
        let response = play_turn(&m, request(0, 1)).await.unwrap();
        assert_eq!(response.usage, usage(10, 3));
    }

    #[tokio::test]
    async fn estimated_output_is_at_least_one_token() {
        let response = play_turn(&model(vec![Turn::say("")]), request(0, 1))
            .await
            .unwrap();
        assert_eq!(response.usage.unwrap().output_tokens, 1);
    }

    #[tokio::test]
    async fn output_is_clamped_to_max_output_tokens() {
        let m = model(vec![Turn::say("hi").with_usage(5, 500)]);
        let req = ModelRequest {
            max_output_tokens: 100,
            ..request(0, 1)
        };
        assert_eq!(play_turn(&m, req).await.unwrap().usage, usage(5, 100));
    }

    #[tokio::test]
    async fn overrun_reports_usage_unclamped() {
        let m = model(vec![Turn::say("hi").with_usage(5, 500).with_overrun()]);
        let req = ModelRequest {
            max_output_tokens: 100,
            ..request(0, 1)
        };
        assert_eq!(play_turn(&m, req).await.unwrap().usage, usage(5, 500));
    }

    #[tokio::test]
    async fn fault_applies_only_on_listed_attempts() {
        let turn = Turn::say("ok")
            .with_fault(Fault::Error, "flaky")
            .on_attempts([1]);
        let m = model(vec![turn]);
        assert!(play_turn(&m, request(0, 1)).await.is_err());
        assert_eq!(play_turn(&m, request(0, 2)).await.unwrap().text, "ok");
    }

    #[tokio::test]
    async fn error_fault_is_transient() {
        let m = model(vec![Turn::say("").with_fault(Fault::Error, "overloaded")]);
        let err = play_turn(&m, request(0, 1)).await.unwrap_err();
        assert_eq!(err, ModelError::Transient("overloaded".to_string()));
    }

    #[tokio::test]
    async fn fatal_fault_is_fatal() {
        let m = model(vec![Turn::say("").with_fault(Fault::Fatal, "bad key")]);
        let err = play_turn(&m, request(0, 1)).await.unwrap_err();
        assert_eq!(err, ModelError::Fatal("bad key".to_string()));
    }

    #[tokio::test]
    async fn panic_fault_panics_inside_the_stream() {
        let m = model(vec![Turn::say("").with_fault(Fault::Panic, "scripted boom")]);
        let stream = m.stream(request(0, 1)); // building the stream must not panic
        let outcome = std::panic::AssertUnwindSafe(collect_response(stream))
            .catch_unwind()
            .await;
        let payload = outcome.expect_err("the stream should panic");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains("scripted boom"), "{message}");
    }

    #[tokio::test(start_paused = true)]
    async fn delay_is_waited_before_answering() {
        let m = model(vec![Turn::say("late").with_delay(5_000)]);
        let start = tokio::time::Instant::now();
        play_turn(&m, request(0, 1)).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(5_000));
    }

    #[tokio::test(start_paused = true)]
    async fn delay_is_cancelled_by_dropping_the_stream() {
        let delay = Duration::from_millis(60_000);
        let m = model(vec![Turn::say("late").with_delay(delay.as_millis() as u64)]);
        let start = tokio::time::Instant::now();
        let mut stream = m.stream(request(0, 1));
        let first = tokio::time::timeout(delay / 100, stream.next()).await;
        drop(stream);
        assert!(first.is_err(), "nothing may arrive before the delay");
        assert!(
            start.elapsed() * 10 < delay,
            "dropping must not wait out the delay"
        );
    }

    #[tokio::test]
    async fn past_the_end_turn_is_fatal_with_message() {
        let m = model(vec![Turn::say("only")]);
        let err = play_turn(&m, request(1, 1)).await.unwrap_err();
        let expected = "replay script for agent `agent` has no turn 2 (it has 1); \
                        add turns or check the agent's tool calls";
        assert_eq!(err, ModelError::Fatal(expected.to_string()));
    }

    #[tokio::test]
    async fn unknown_agent_without_default_is_fatal_naming_the_agents() {
        let m = model(vec![Turn::say("only")]);
        let req = ModelRequest {
            agent: "stranger".to_string(),
            ..request(0, 1)
        };
        let Err(ModelError::Fatal(msg)) = play_turn(&m, req).await else {
            panic!("expected a fatal error");
        };
        assert!(msg.contains("<scripted>") && msg.contains("`stranger`") && msg.contains("agent"));
    }

    #[tokio::test]
    async fn unknown_agent_plays_the_default_script() {
        let script = ReplayScript::scripted([(DEFAULT_AGENT, vec![Turn::say("fallback")])]);
        let m = ReplayModel::new(Arc::new(script));
        assert_eq!(play_turn(&m, request(0, 1)).await.unwrap().text, "fallback");
    }

    fn load_text(text: &str) -> anyhow::Result<ReplayScript> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        ReplayScript::load(file.path())
    }

    #[test]
    fn malformed_yaml_names_line_and_field() {
        let text = "agents:\n  a:\n    turns:\n      - text: hi\n        delay_ms: soon\n";
        let err = format!("{:#}", load_text(text).unwrap_err());
        assert!(err.contains(":5:19: "), "{err}");
        assert!(!err.contains("at line"), "location given twice: {err}");
        assert!(err.contains("delay_ms"), "{err}");
    }

    #[test]
    fn unknown_field_in_a_turn_is_rejected() {
        let text = "agents:\n  a:\n    turns:\n      - text: hi\n        tool_cals: []\n";
        let err = format!("{:#}", load_text(text).unwrap_err());
        assert!(err.contains("unknown field `tool_cals`"), "{err}");
    }

    #[test]
    fn attempts_without_fault_is_rejected() {
        let text = "agents:\n  a:\n    turns:\n      - text: hi\n        attempts: [1]\n";
        let err = format!("{:#}", load_text(text).unwrap_err());
        assert!(err.contains("agents.a.turns[0]"), "{err}");
    }

    #[test]
    fn yaml_script_loads_faults_and_partial_usage() {
        let text = "agents:\n  a:\n    turns:\n      - fault: panic\n        attempts: [1]\n        usage: { output_tokens: 7 }\n";
        let script = load_text(text).unwrap();
        let turn = &script.script_for("a").unwrap().turns[0];
        assert_eq!(turn.fault_on(1), Some(Fault::Panic));
        assert_eq!(turn.fault_on(2), None);
        assert_eq!(turn.usage.unwrap().output_tokens, Some(7));
    }

    #[test]
    fn demo_script_loads_with_both_agents() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo/replay.yaml");
        let script = ReplayScript::load(&path).unwrap();
        for agent in ["code-reviewer", "test-gen", DEFAULT_AGENT] {
            assert!(script.agents.contains_key(agent), "missing {agent}");
        }
        let grep = &script.script_for("code-reviewer").unwrap().turns[1].tool_calls[1];
        assert_eq!(grep.arguments["pattern"], "unwrap\\(");
    }
}
