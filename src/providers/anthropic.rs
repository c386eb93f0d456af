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
//! pieces and is final at `content_block_stop`. `message_stop` ends the response; an
//! `error` event ends it with an error.

use std::collections::BTreeMap;

use codex_actors::model::{
    ChatMessage, ModelError, ModelEvent, ModelRequest, Role, ToolCall, Usage,
};

use super::protocol::{cut_off, parse_arguments, parse_data, Decoder, Step};
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

/// A tool_use block being assembled.
#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    input: String,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct AnthropicDecoder {
    calls: BTreeMap<usize, PartialCall>,
    usage: Usage,
}

impl AnthropicDecoder {
    fn block_start(&mut self, event: wire::Event) -> Step {
        let index = event.index.unwrap_or(0);
        match event.content_block {
            Some(b) if b.kind == "tool_use" => {
                self.calls.insert(
                    index,
                    PartialCall {
                        id: b.id.unwrap_or_default(),
                        name: b.name.unwrap_or_default(),
                        input: String::new(),
                    },
                );
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
                let index = event.index.unwrap_or(0);
                let call = self.calls.entry(index).or_default();
                call.input
                    .push_str(delta.partial_json.as_deref().unwrap_or(""));
                Ok(Step::none())
            }
            _ => Ok(Step::none()),
        }
    }

    fn block_stop(&mut self, index: usize) -> Step {
        match self.calls.remove(&index) {
            Some(c) => Step::one(ModelEvent::ToolCall(ToolCall {
                id: if c.id.is_empty() {
                    format!("toolu_{index}")
                } else {
                    c.id
                },
                name: c.name,
                arguments: parse_arguments(&c.input),
            })),
            None => Step::none(),
        }
    }

    fn add_usage(&mut self, u: Option<wire::EventUsage>) {
        let Some(u) = u else { return };
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
}

impl Decoder for AnthropicDecoder {
    fn event(&mut self, _name: &str, data: &str) -> Result<Step, ModelError> {
        let event: wire::Event = parse_data("Anthropic Messages", data)?;
        match event.kind.as_str() {
            "message_start" => {
                self.add_usage(event.message.and_then(|m| m.usage));
                Ok(Step::none())
            }
            "content_block_start" => Ok(self.block_start(event)),
            "content_block_delta" => self.block_delta(event),
            "content_block_stop" => Ok(self.block_stop(event.index.unwrap_or(0))),
            "message_delta" => {
                self.add_usage(event.usage);
                Ok(Step::none())
            }
            "message_stop" => {
                // Blocks a server never closed are complete by now.
                let open: Vec<usize> = self.calls.keys().copied().collect();
                let mut events: Vec<ModelEvent> = open
                    .into_iter()
                    .flat_map(|i| self.block_stop(i).events)
                    .collect();
                events.push(ModelEvent::Usage(self.usage));
                Ok(Step { events, done: true })
            }
            "error" => {
                let e = event.error.unwrap_or_default();
                let text = format!("Anthropic reported an error ({}): {}", e.kind, e.message);
                Err(if e.kind == "invalid_request_error" {
                    ModelError::Fatal(text)
                } else {
                    ModelError::Transient(text)
                })
            }
            _ => Ok(Step::none()),
        }
    }

    fn close(&mut self) -> Result<Step, ModelError> {
        Err(cut_off("Anthropic Messages", "message_stop"))
    }
}
