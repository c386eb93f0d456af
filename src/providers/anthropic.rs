//! Anthropic Messages: mapping our conversation to alternating user / assistant
//! messages of content blocks, and folding the events.
//!
//! System messages are joined into the separate `system` field. Tool results become
//! `tool_result` blocks of a user message, and consecutive messages of one role are
//! merged, because the API requires user and assistant to alternate (several tool results
//! of one turn, then the engine's wrap-up note, are one user message). Empty text blocks
//! are left out: the API refuses them.
//!
//! Usage: `message_start` carries the input tokens (cache reads and writes are added, as
//! they count against the context), `message_delta` the cumulative output tokens. A
//! `tool_use` block starts with its id and name; its input grows as `input_json_delta`
//! pieces and is final at `content_block_stop`; calls are emitted at `message_stop`,
//! which ends the response, with the usage and `message_delta`'s `stop_reason`
//! (`max_tokens`: the output cap cut it). An `error` event ends it with the server's
//! message, in Anthropic's shape or llama.cpp's flat one; the usage reported before it
//! ([`Decoder::usage`]) is still charged.

use codex_actors::model::{
    ChatMessage, ModelError, ModelEvent, ModelRequest, Role, StopReason, Usage,
};

use super::calls::{Calls, Key, Piece};
use super::protocol::{cut_off, mid_stream_error, parse_data, Decoder, Step};
use super::wire::anthropic as wire;

/// The request body.
pub fn request(model: &str, request: &ModelRequest) -> wire::Request {
    let system: Vec<&str> = request
        .messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.as_str())
        .collect();
    wire::Request {
        model: model.to_owned(),
        max_tokens: request.max_output_tokens,
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages: messages(&request.messages),
        stream: true,
        tools: request
            .tools
            .iter()
            .map(|t| wire::Tool {
                name: t.name.clone(),
                description: t.description.clone(),
                input_schema: t.parameters.clone(),
            })
            .collect(),
    }
}

/// Our non-system messages as alternating Anthropic messages.
fn messages(conversation: &[ChatMessage]) -> Vec<wire::Message> {
    let mut out: Vec<wire::Message> = Vec::new();
    for m in conversation.iter().filter(|m| m.role != Role::System) {
        let role = if m.role == Role::Assistant {
            "assistant"
        } else {
            "user"
        };
        let blocks = blocks(m);
        match out.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => out.push(wire::Message {
                role,
                content: blocks,
            }),
        }
    }
    for m in &mut out {
        if m.content.is_empty() {
            m.content.push(wire::Block::Text {
                text: "(empty)".to_owned(),
            });
        }
    }
    out
}

fn blocks(m: &ChatMessage) -> Vec<wire::Block> {
    if m.role == Role::Tool {
        return vec![wire::Block::ToolResult {
            tool_use_id: m.tool_call_id.clone().unwrap_or_default(),
            content: m.content.clone(),
        }];
    }
    let mut out = Vec::new();
    if !m.content.trim().is_empty() {
        out.push(wire::Block::Text {
            text: m.content.clone(),
        });
    }
    out.extend(m.tool_calls.iter().map(|c| wire::Block::ToolUse {
        id: c.id.clone(),
        name: c.name.clone(),
        input: if c.arguments.is_object() {
            c.arguments.clone()
        } else {
            serde_json::json!({})
        },
    }));
    out
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct AnthropicDecoder {
    calls: Calls,
    usage: Usage,
    usage_seen: bool,
    stop: Option<StopReason>,
}

/// A `stop_reason` as a [`StopReason`].
fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "tool_use" => StopReason::ToolUse,
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxOutputTokens,
        "refusal" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

impl AnthropicDecoder {
    fn block_start(&mut self, event: wire::Event) -> Step {
        let index = event.index.unwrap_or(0);
        match event.content_block {
            Some(b) if b.kind == "tool_use" => {
                let piece = Piece {
                    id: b.id,
                    name: b.name,
                    ..Piece::default()
                };
                self.calls.add(&[Key::Index(index)], piece);
                Step::none()
            }
            Some(b) => match b.text.filter(|t| !t.is_empty()) {
                Some(t) => Step::one(ModelEvent::TextDelta(t)),
                None => Step::none(),
            },
            None => Step::none(),
        }
    }

    fn block_delta(&mut self, event: wire::Event) -> Result<Step, ModelError> {
        let Some(delta) = event.delta else {
            return Ok(Step::none());
        };
        let delta: wire::Delta = serde_json::from_value(delta).unwrap_or_default();
        match delta.kind.as_str() {
            "text_delta" => Ok(match delta.text.filter(|t| !t.is_empty()) {
                Some(t) => Step::one(ModelEvent::TextDelta(t)),
                None => Step::none(),
            }),
            "input_json_delta" => {
                let piece = Piece {
                    delta: delta.partial_json,
                    ..Piece::default()
                };
                self.calls
                    .add(&[Key::Index(event.index.unwrap_or(0))], piece);
                Ok(Step::none())
            }
            _ => Ok(Step::none()),
        }
    }

    fn add_usage(&mut self, u: Option<wire::EventUsage>) {
        let Some(u) = u else { return };
        self.usage_seen = true;
        let input = u.input_tokens.unwrap_or(0)
            + u.cache_creation_input_tokens.unwrap_or(0)
            + u.cache_read_input_tokens.unwrap_or(0);
        if input > 0 {
            self.usage.input_tokens = input;
        }
        if let Some(out) = u.output_tokens {
            self.usage.output_tokens = out;
        }
    }

    /// `message_stop`: every call (in block order), the usage and why the model stopped.
    fn finish(&mut self) -> Step {
        let mut events: Vec<ModelEvent> = self
            .calls
            .take("toolu_")
            .into_iter()
            .map(ModelEvent::ToolCall)
            .collect();
        let stop = self.stop.unwrap_or(if events.is_empty() {
            StopReason::EndTurn
        } else {
            StopReason::ToolUse
        });
        events.push(ModelEvent::Usage(self.usage));
        events.push(ModelEvent::Stop(stop));
        Step { events, done: true }
    }
}

/// An `error` event: Anthropic's `{"type":"error","error":{"type":...,"message":...}}`, or
/// the flat `{"code":500,"message":...,"type":"server_error"}` llama.cpp's server sends.
fn error_event(data: &str) -> ModelError {
    let value: serde_json::Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(_) => serde_json::Value::String(data.to_owned()),
    };
    mid_stream_error("Anthropic Messages", &value)
}

impl Decoder for AnthropicDecoder {
    fn event(&mut self, name: &str, data: &str) -> Result<Step, ModelError> {
        if name == "error" {
            return Err(error_event(data));
        }
        let event: wire::Event = parse_data("Anthropic Messages", data)?;
        match event.kind.as_str() {
            "message_start" => {
                self.add_usage(event.message.and_then(|m| m.usage));
                Ok(Step::none())
            }
            "content_block_start" => Ok(self.block_start(event)),
            "content_block_delta" => self.block_delta(event),
            "message_delta" => {
                self.add_usage(event.usage);
                let reason = event
                    .delta
                    .as_ref()
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(|r| r.as_str());
                if let Some(r) = reason {
                    self.stop = Some(stop_reason(r));
                }
                Ok(Step::none())
            }
            // Calls are complete at `content_block_stop`, emitted together at the end.
            "message_stop" => Ok(self.finish()),
            "error" => Err(error_event(data)),
            _ => Ok(Step::none()),
        }
    }

    fn close(&mut self) -> Result<Step, ModelError> {
        Err(cut_off("Anthropic Messages", "message_stop"))
    }

    fn usage(&self) -> Option<Usage> {
        self.usage_seen.then_some(self.usage)
    }
}
