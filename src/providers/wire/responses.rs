//! The OpenAI Responses API (`POST {base_url}/responses`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The request body.
#[derive(Debug, Serialize)]
pub struct Request {
    /// The model name.
    pub model: String,
    /// The conversation as input items.
    pub input: Vec<InputItem>,
    /// Always `true`.
    pub stream: bool,
    /// The output cap.
    pub max_output_tokens: u64,
    /// `false`: the conversation is sent whole every turn, nothing is kept server-side.
    pub store: bool,
    /// The tools the model may call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
}

/// One input item.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputItem {
    /// A message with text.
    Message {
        /// `system`, `user` or `assistant`.
        role: &'static str,
        /// The text.
        content: String,
    },
    /// A tool call the model made earlier.
    FunctionCall {
        /// The call's id.
        call_id: String,
        /// The tool's name.
        name: String,
        /// The arguments as a JSON string.
        arguments: String,
    },
    /// The result of a call.
    FunctionCallOutput {
        /// The call it answers.
        call_id: String,
        /// The tool's output.
        output: String,
    },
}

/// A tool offered to the model (a function tool).
#[derive(Debug, Serialize)]
pub struct Tool {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The tool's name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// A JSON schema of its arguments.
    pub parameters: Value,
}

/// One streamed event; `type` says which fields are set.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Event {
    /// `response.output_text.delta`, `response.output_item.added`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Text or argument increment.
    pub delta: Option<String>,
    /// The output item's position (OpenAI sends it; llama.cpp's server does not).
    pub output_index: Option<u64>,
    /// The output item's id (argument deltas and `.done` events).
    pub item_id: Option<String>,
    /// The output item (`output_item.added` / `.done`).
    pub item: Option<Item>,
    /// The final arguments (`function_call_arguments.done`).
    pub arguments: Option<String>,
    /// The response (`response.completed`, `.incomplete`, `.failed`).
    pub response: Option<ResponseBody>,
    /// An `error` event's code (a string; some servers send a number).
    pub code: Option<Value>,
    /// An `error` event's message.
    pub message: Option<String>,
    /// An error object without a `type` around it (llama.cpp's server mid-stream).
    pub error: Option<Value>,
}

/// An output item; only function calls matter to us.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Item {
    /// `message`, `function_call`, `reasoning`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The item's id (`fc_...`), which argument deltas refer to.
    pub id: Option<String>,
    /// The call's id, which tool results refer to.
    pub call_id: Option<String>,
    /// The tool's name.
    pub name: Option<String>,
    /// The arguments so far (complete in `output_item.done`).
    pub arguments: Option<String>,
}

/// The response object of the final events.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResponseBody {
    /// Token usage.
    pub usage: Option<ResponseUsage>,
    /// Why a response failed.
    pub error: Option<ErrorBody>,
    /// `completed`, `incomplete`, `failed`.
    pub status: Option<String>,
    /// Why a response is incomplete (`max_output_tokens`, `content_filter`).
    pub incomplete_details: Option<IncompleteDetails>,
}

/// Why a response is incomplete.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IncompleteDetails {
    /// `max_output_tokens` or `content_filter`.
    pub reason: Option<String>,
}

/// An error object.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    /// A machine-readable code.
    pub code: Option<String>,
    /// A human-readable message.
    pub message: Option<String>,
}

/// Token usage as Responses reports it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResponseUsage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens (reasoning included).
    pub output_tokens: u64,
}
