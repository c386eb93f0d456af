//! Chat Completions (`POST {base_url}/chat/completions`), the protocol OpenAI-compatible
//! servers speak (Ollama, vLLM, llama.cpp, LM Studio, OpenRouter).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The request body. It borrows the conversation and the tools' schemas: built and
/// serialized once per call, it copies nothing.
#[derive(Debug, Serialize)]
pub struct Request<'a> {
    /// The model name.
    pub model: &'a str,
    /// The conversation.
    pub messages: Vec<Message<'a>>,
    /// Always `true`: we read the answer as server-sent events.
    pub stream: bool,
    /// Asks for a final chunk with the usage.
    pub stream_options: StreamOptions,
    /// The output cap, under its classic name (what compatible servers understand).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// The output cap, under the name api.openai.com requires for its newer models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    /// The tools the model may call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool<'a>>,
}

/// `stream_options`.
#[derive(Debug, Serialize)]
pub struct StreamOptions {
    /// Whether the last chunk carries the usage.
    pub include_usage: bool,
}

/// One message of the conversation.
#[derive(Debug, Serialize)]
pub struct Message<'a> {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: &'static str,
    /// The text; `null` for an assistant message that only calls tools.
    pub content: Option<&'a str>,
    /// The calls an assistant message made.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<OutCall<'a>>,
    /// For a `tool` message: the call it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<&'a str>,
}

/// A tool call of an earlier assistant message.
#[derive(Debug, Serialize)]
pub struct OutCall<'a> {
    /// The call's id.
    pub id: &'a str,
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What was called.
    pub function: OutFunction<'a>,
}

/// The function of an [`OutCall`].
#[derive(Debug, Serialize)]
pub struct OutFunction<'a> {
    /// The tool's name.
    pub name: &'a str,
    /// The arguments as a JSON string.
    pub arguments: String,
}

/// A tool offered to the model.
#[derive(Debug, Serialize)]
pub struct Tool<'a> {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Its description.
    pub function: FunctionDef<'a>,
}

/// The function of a [`Tool`].
#[derive(Debug, Serialize)]
pub struct FunctionDef<'a> {
    /// The tool's name.
    pub name: &'a str,
    /// What it does.
    pub description: &'a str,
    /// A JSON schema of its arguments.
    pub parameters: &'a Value,
}

/// One streamed chunk (`data: {...}`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Chunk {
    /// Usually one choice; empty in the final usage chunk.
    pub choices: Vec<Choice>,
    /// Only in the final chunk (with `include_usage`), `null` elsewhere.
    pub usage: Option<ChunkUsage>,
    /// Some servers (OpenRouter, vLLM) report a failure inside the stream.
    pub error: Option<Value>,
}

/// One choice of a [`Chunk`].
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Choice {
    /// What this chunk adds.
    pub delta: Delta,
    /// Set (non-empty) on the choice's last chunk.
    pub finish_reason: Option<String>,
}

/// The increment of a [`Choice`].
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Delta {
    /// More text.
    pub content: Option<String>,
    /// Pieces of tool calls, keyed by `index`.
    pub tool_calls: Vec<CallDelta>,
}

/// A piece of one tool call: the first piece has the id and name, later ones append to the
/// arguments.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CallDelta {
    /// Which call of the message this piece belongs to.
    pub index: u64,
    /// The call's id (first piece).
    pub id: Option<String>,
    /// Name and argument text.
    pub function: Option<FunctionDelta>,
}

/// The function part of a [`CallDelta`].
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FunctionDelta {
    /// The tool's name (first piece).
    pub name: Option<String>,
    /// More argument text.
    pub arguments: Option<String>,
}

/// Token usage as Chat Completions reports it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChunkUsage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Generated tokens.
    pub completion_tokens: u64,
}
