//! The model interface: what an agent sends to a language model and what it gets back.
//!
//! A provider implements [`Model::stream`], returning a stream of [`ModelEvent`]s. Providers
//! that do not stream emit everything at once; streaming providers (SSE over HTTP) emit text
//! deltas as they arrive and a [`ModelEvent::ToolCall`] once a call's arguments are complete.
//! The engine folds the stream into a [`ModelResponse`] with [`collect_response`], so a turn
//! only has to deal with one shape, while a streaming provider still fits without buffering
//! on its own side.
//!
//! The trait is object-safe (`Arc<dyn Model>`): the stream is boxed and `'static`, so the
//! provider clones what it needs out of `&self` before the stream starts.

use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt};
use serde::{Deserialize, Serialize};

/// The most bytes of one model response (text plus tool calls' names and arguments):
/// [`collect_response`] and [`collect_call`] stop reading beyond it (see
/// [`crate::limits`]).
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// Who said a [`ChatMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions that frame the whole conversation.
    System,
    /// The task, and the engine's own notes (such as "budget nearly spent").
    User,
    /// The model's turns.
    Assistant,
    /// The result of one tool call, answering [`ChatMessage::tool_call_id`].
    Tool,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// The text. For a tool result, the tool's output (or its error).
    pub content: String,
    /// The tool calls an assistant message asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a [`Role::Tool`] message: the id of the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A message with only text.
    pub fn text(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// The result of tool call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.into()),
        }
    }
}

/// A request from the model to run a tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call; tool results refer to it.
    pub id: String,
    /// The tool's name, as in its [`ToolSpec`].
    pub name: String,
    /// The arguments, as the model wrote them. Not validated: tools check their own input.
    pub arguments: serde_json::Value,
}

/// How a tool is presented to the model: its name, what it does, and a JSON schema of its
/// arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Unique within an agent's toolset.
    pub name: String,
    /// One or two sentences the model reads to decide when to call it.
    pub description: String,
    /// A JSON schema (an object schema) of the arguments.
    pub parameters: serde_json::Value,
}

/// Token usage of one model call, as the provider reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

impl Usage {
    /// Input plus output: what a budget is charged.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// Everything a model call needs.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    /// The agent making the call (for providers that route or script per agent).
    pub agent: String,
    /// Which attempt of the agent this is, from 1; a restart starts a new attempt.
    pub attempt: u32,
    /// The turn within this attempt, from 0.
    pub turn: u32,
    /// The model name to ask for, if the agent names one.
    pub model: Option<String>,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Tools the model may call. Empty for the wrap-up turn. Shared: an agent's specs
    /// (with their JSON schemas) are built once per attempt, not copied into every turn.
    pub tools: Arc<[ToolSpec]>,
    /// The most tokens the model may generate: already clamped to the budget grant.
    pub max_output_tokens: u64,
    /// Why the call is made: an agent's turn, or the compaction of its conversation.
    pub purpose: CallPurpose,
}

/// Why a model call is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallPurpose {
    /// One of the agent's turns.
    #[default]
    Turn,
    /// Summarising the agent's earlier turns into a handoff note (see [`crate::context`]);
    /// not a turn: it does not count against `max_turns`, and scripts do not play it.
    Compaction,
}

/// One piece of a streamed model response.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelEvent {
    /// More assistant text.
    TextDelta(String),
    /// A complete tool call (providers accumulate argument deltas themselves).
    ToolCall(ToolCall),
    /// Usage for the call. If sent more than once, the last one counts.
    Usage(Usage),
    /// The provider accepted the call (over HTTP: a success status, the body begins). From
    /// here on it may bill for the call, whether or not the call completes, so a call that
    /// fails later without a usage report is charged its whole reservation.
    Accepted,
    /// Why the model stopped, when the provider says (or can tell): sent once, at the end.
    Stop(StopReason),
}

/// Why a model stopped generating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its answer.
    EndTurn,
    /// It stopped to have tools called.
    ToolUse,
    /// The output cap cut it off: the text or the last tool call may be incomplete.
    MaxOutputTokens,
    /// The provider's content filter stopped it.
    ContentFilter,
}

/// A whole model response, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelResponse {
    /// The assistant's text.
    pub text: String,
    /// Tool calls, in the order the model made them.
    pub tool_calls: Vec<ToolCall>,
    /// Reported usage; `None` if the provider reported none.
    pub usage: Option<Usage>,
    /// Why the model stopped; `None` if the provider did not say.
    pub stop: Option<StopReason>,
}

impl ModelResponse {
    /// Whether the output cap cut the response off.
    pub fn truncated(&self) -> bool {
        self.stop == Some(StopReason::MaxOutputTokens)
    }
}

/// Why a model call failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    /// Worth trying again later (transport failure, overload). An agent that meets one fails
    /// its attempt and is restarted by its supervisor within its restart limits.
    #[error("model call failed (transient): {0}")]
    Transient(String),
    /// Trying again cannot help (bad key, unknown model, invalid request, script exhausted).
    /// The agent ends `Failed` at once, without restarts.
    #[error("model call failed: {0}")]
    Fatal(String),
}

/// A language model, or anything that answers like one.
pub trait Model: Send + Sync + 'static {
    /// The model's name for the audit log (for example `replay` or `gpt-4.1`).
    fn name(&self) -> String;

    /// Starts a call. The stream ends when the response is complete; an `Err` item ends it
    /// early. Dropping the stream cancels the call.
    fn stream(&self, request: ModelRequest) -> BoxStream<'static, Result<ModelEvent, ModelError>>;

    /// A conservative estimate of the prompt tokens `messages` and `tools` will cost; the
    /// budget reservation uses it. The default counts one token per three bytes plus a small
    /// overhead per message, which over-estimates most tokenizers on English and code.
    fn estimate_prompt_tokens(&self, messages: &[ChatMessage], tools: &[ToolSpec]) -> u64 {
        estimate_prompt_tokens(messages, tools)
    }

    /// The most tokens one request may take (prompt and output), if known: an agent whose
    /// definition sets no context cap keeps its conversation under this (see
    /// [`crate::context`]). Default: unknown, no cap.
    fn context_window(&self) -> Option<u64> {
        None
    }
}

/// The default conservative token estimate: see [`Model::estimate_prompt_tokens`].
pub fn estimate_prompt_tokens(messages: &[ChatMessage], tools: &[ToolSpec]) -> u64 {
    let per_message = 8u64;
    let mut bytes = 0usize;
    for m in messages {
        bytes += m.content.len();
        for c in &m.tool_calls {
            bytes += c.name.len() + c.arguments.to_string().len();
        }
    }
    for t in tools {
        bytes += t.name.len() + t.description.len() + t.parameters.to_string().len();
    }
    (bytes as u64).div_ceil(3) + per_message * (messages.len() + tools.len()) as u64
}

/// Folds a model's event stream into one [`ModelResponse`].
pub async fn collect_response(
    stream: BoxStream<'static, Result<ModelEvent, ModelError>>,
) -> Result<ModelResponse, ModelError> {
    collect_response_within(stream, MAX_RESPONSE_BYTES).await
}

/// [`collect_response`], reading at most `cap` bytes: see [`collect_call_within`].
pub async fn collect_response_within(
    stream: BoxStream<'static, Result<ModelEvent, ModelError>>,
    cap: usize,
) -> Result<ModelResponse, ModelError> {
    collect_call_within(stream, cap).await.map_err(|f| f.error)
}

/// A model call that failed, with what was known of it when it did.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedCall {
    /// Why it failed.
    pub error: ModelError,
    /// Whether the provider had accepted it ([`ModelEvent::Accepted`]) or sent anything.
    pub accepted: bool,
    /// Usage the provider reported before (or with) its error, if any.
    pub usage: Option<Usage>,
}

/// Like [`collect_response`], but a failure keeps what the stream had said by then: whether
/// the provider accepted the call, and any usage it reported.
pub async fn collect_call(
    stream: BoxStream<'static, Result<ModelEvent, ModelError>>,
) -> Result<ModelResponse, FailedCall> {
    collect_call_within(stream, MAX_RESPONSE_BYTES).await
}

/// [`collect_call`], reading at most `cap` bytes (text plus tool calls): past it the stream
/// is dropped (the call cancelled) and the call fails with a fatal error, since the same
/// request would bring the same flood.
pub async fn collect_call_within(
    mut stream: BoxStream<'static, Result<ModelEvent, ModelError>>,
    cap: usize,
) -> Result<ModelResponse, FailedCall> {
    let mut response = ModelResponse::default();
    let mut accepted = false;
    let mut size = 0usize;
    let failed = |error, accepted, usage| FailedCall {
        error,
        accepted,
        usage,
    };
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(error) => return Err(failed(error, accepted, response.usage)),
        };
        accepted = true;
        match event {
            ModelEvent::TextDelta(t) => {
                size += t.len();
                response.text.push_str(&t);
            }
            ModelEvent::ToolCall(c) => {
                size += c.name.len() + c.arguments.to_string().len();
                response.tool_calls.push(c);
            }
            ModelEvent::Usage(u) => response.usage = Some(u),
            ModelEvent::Stop(s) => response.stop = Some(s),
            ModelEvent::Accepted => {}
        }
        if size > cap {
            let error = ModelError::Fatal(format!(
                "the response passed {cap} bytes; stopped reading it (a model response is at most that long)"
            ));
            return Err(failed(error, accepted, response.usage));
        }
    }
    Ok(response)
}
