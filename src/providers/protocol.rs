//! What the three wire protocols have in common: which one a provider speaks
//! ([`WireApi`]), and the [`Decoder`] each provides to fold its server-sent events into
//! [`ModelEvent`]s.
//!
//! A decoder is a plain state machine over `(event name, data)` pairs: no I/O, no clock,
//! so each protocol is unit-tested on literal event sequences. The transport
//! (`http.rs`, `sse.rs`) feeds it and enforces the timeouts.
//!
//! Tool calls are emitted when complete (the engine's [`ModelEvent::ToolCall`] carries a
//! whole call); argument text that is not valid JSON is passed on as a JSON string, so
//! the tool rejects it and the model reads why, instead of the whole turn failing.

use codex_actors::model::{ModelError, ModelEvent, ModelRequest, Usage};
use serde::Deserialize;

/// The protocol a provider speaks (`wire_api` in the config file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WireApi {
    /// OpenAI Responses: `POST {base_url}/responses`.
    Responses,
    /// Chat Completions: `POST {base_url}/chat/completions`.
    Chat,
    /// Anthropic Messages: `POST {base_url}/v1/messages`.
    Anthropic,
}

/// What one server-sent event did to the response.
#[derive(Debug, Default, PartialEq)]
pub struct Step {
    /// Events to hand to the engine, in order.
    pub events: Vec<ModelEvent>,
    /// The protocol's end event was seen: stop reading.
    pub done: bool,
}

impl Step {
    /// Nothing to emit, not done.
    pub fn none() -> Self {
        Self::default()
    }

    /// One event.
    pub fn one(event: ModelEvent) -> Self {
        Self {
            events: vec![event],
            done: false,
        }
    }
}

/// Folds one response's events. See the module docs.
pub trait Decoder: Send {
    /// One event: its `event:` name (may be empty) and its `data:`.
    fn event(&mut self, name: &str, data: &str) -> Result<Step, ModelError>;

    /// The connection closed before the end event: what remains, or an error saying the
    /// stream was cut off.
    fn close(&mut self) -> Result<Step, ModelError>;

    /// The usage the server reported so far, to charge when the stream fails after it
    /// (a server may report the prompt's tokens before an error).
    fn usage(&self) -> Option<Usage> {
        None
    }
}

impl WireApi {
    /// The URL to post to, from the provider's base URL.
    pub fn url(self, base_url: &str) -> String {
        let base = base_url.trim_end_matches('/');
        match self {
            WireApi::Responses => format!("{base}/responses"),
            WireApi::Chat => format!("{base}/chat/completions"),
            WireApi::Anthropic => format!("{base}/v1/messages"),
        }
    }

    /// The request body for `request`, asking for `model`.
    pub fn body(self, model: &str, request: &ModelRequest, options: BodyOptions) -> Vec<u8> {
        let json = match self {
            WireApi::Responses => serde_json::to_vec(&super::responses::request(model, request)),
            WireApi::Chat => serde_json::to_vec(&super::chat::request(model, request, options)),
            WireApi::Anthropic => serde_json::to_vec(&super::anthropic::request(model, request)),
        };
        let mut json = json.expect("request types always serialize");
        // The buffer grew by doubling; the body lives as long as its request (retries
        // included), a thousand at once with as many agents: give back the unused half.
        json.shrink_to_fit();
        json
    }

    /// A fresh decoder for one response.
    pub fn decoder(self) -> Box<dyn Decoder> {
        match self {
            WireApi::Responses => Box::<super::responses::ResponsesDecoder>::default(),
            WireApi::Chat => Box::<super::chat::ChatDecoder>::default(),
            WireApi::Anthropic => Box::<super::anthropic::AnthropicDecoder>::default(),
        }
    }
}

/// Choices about the body that depend on the server rather than the protocol.
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyOptions {
    /// Chat Completions: name the output cap `max_completion_tokens` (api.openai.com, whose
    /// newer models refuse `max_tokens`) instead of `max_tokens` (what compatible servers
    /// understand).
    pub max_completion_tokens: bool,
}

/// Parses a tool call's argument text: empty means `{}`; text that is not JSON is kept as
/// a JSON string (see the module docs).
pub fn parse_arguments(text: &str) -> serde_json::Value {
    if text.trim().is_empty() {
        return serde_json::json!({});
    }
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}

/// Parses one event's JSON, or says the stream is malformed.
pub fn parse_data<'a, T: Deserialize<'a>>(protocol: &str, data: &'a str) -> Result<T, ModelError> {
    serde_json::from_str(data).map_err(|e| {
        ModelError::Transient(format!(
            "malformed {protocol} stream: an event is not the expected JSON ({e}): {}",
            excerpt(data)
        ))
    })
}

/// The first 200 characters of `text`, for error messages.
pub fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(200).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// The error for a server's error reported inside a stream, with the server's own message:
/// `{"message": ..., "type"/"code": ...}` or such an object under `error`. Transient (the
/// server got as far as streaming; another attempt may pass) unless its code says the
/// request itself is at fault.
pub fn mid_stream_error(protocol: &str, error: &serde_json::Value) -> ModelError {
    let error = match error.get("error") {
        Some(inner) if inner.is_object() => inner,
        _ => error,
    };
    let text = |k: &str| match error.get(k) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let message = match (&text("message"), error) {
        (Some(m), _) => m.clone(),
        (None, serde_json::Value::String(s)) => s.clone(),
        (None, other) => other.to_string(),
    };
    let kind = text("type").or_else(|| text("code"));
    let what = match &kind {
        Some(k) => format!(
            "the server reported an error mid-stream ({k}): {}",
            excerpt(&message)
        ),
        None => format!(
            "the server reported an error mid-stream: {}",
            excerpt(&message)
        ),
    };
    let text = format!("{protocol}: {what}");
    match kind.as_deref() {
        Some("invalid_request_error" | "context_length_exceeded" | "invalid_prompt") => {
            ModelError::Fatal(text)
        }
        _ if super::http::is_context_overflow(&message) => ModelError::Fatal(text),
        _ => ModelError::Transient(text),
    }
}

/// The error for a stream that closed before the protocol's end event.
pub fn cut_off(protocol: &str, end: &str) -> ModelError {
    ModelError::Transient(format!(
        "the {protocol} stream was cut off: the connection closed before `{end}`"
    ))
}
