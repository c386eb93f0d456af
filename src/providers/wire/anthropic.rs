//! Anthropic Messages (`POST {base_url}/v1/messages`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The request body.
#[derive(Debug, Serialize)]
pub struct Request {
    /// The model name.
    pub model: String,
    /// The output cap (required by this API).
    pub max_tokens: u64,
    /// The system prompt, apart from the messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Alternating user and assistant messages.
    pub messages: Vec<Message>,
    /// Always `true`.
    pub stream: bool,
    /// The tools the model may call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
}

/// One message: a role and content blocks.
#[derive(Debug, Serialize)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: &'static str,
    /// Its blocks.
    pub content: Vec<Block>,
}

/// A content block we send.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Text.
    Text {
        /// The text (never empty: the API refuses empty text blocks).
        text: String,
    },
    /// A tool call the model made earlier.
    ToolUse {
        /// The call's id.
        id: String,
        /// The tool's name.
        name: String,
        /// The arguments (an object).
        input: Value,
    },
    /// The result of a call, in a user message.
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// The tool's output.
        content: String,
    },
}

/// A tool offered to the model.
#[derive(Debug, Serialize)]
pub struct Tool {
    /// The tool's name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// A JSON schema of its arguments.
    pub input_schema: Value,
}

/// One streamed event; `type` says which fields are set.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Event {
    /// `message_start`, `content_block_start`, `content_block_delta`, `message_delta`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `message_start`: the message, with the input usage.
    pub message: Option<MessageStart>,
    /// The content block's position.
    pub index: Option<u64>,
    /// `content_block_start`: the block.
    pub content_block: Option<BlockStart>,
    /// `content_block_delta`: a [`Delta`]; `message_delta`: the stop reason (ignored).
    pub delta: Option<Value>,
    /// `message_delta`: the output usage so far.
    pub usage: Option<EventUsage>,
    /// `error`: what went wrong.
    pub error: Option<ErrorBody>,
}

/// The message of `message_start`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MessageStart {
    /// Input (and initial output) usage.
    pub usage: Option<EventUsage>,
}

/// The block of `content_block_start`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BlockStart {
    /// `text`, `tool_use`, `thinking`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// A tool call's id.
    pub id: Option<String>,
    /// A tool call's name.
    pub name: Option<String>,
    /// Initial text of a text block.
    pub text: Option<String>,
}

/// The delta of `content_block_delta`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Delta {
    /// `text_delta`, `input_json_delta`, `thinking_delta`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// More text.
    pub text: Option<String>,
    /// More of a tool call's input, as JSON text.
    pub partial_json: Option<String>,
}

/// Usage as Anthropic reports it (all fields optional in deltas).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EventUsage {
    /// Uncached prompt tokens.
    pub input_tokens: Option<u64>,
    /// Prompt tokens written to the cache.
    pub cache_creation_input_tokens: Option<u64>,
    /// Prompt tokens read from the cache.
    pub cache_read_input_tokens: Option<u64>,
    /// Generated tokens (cumulative in `message_delta`).
    pub output_tokens: Option<u64>,
}

/// An error object.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    /// `overloaded_error`, `invalid_request_error`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// A human-readable message.
    pub message: String,
}
