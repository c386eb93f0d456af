//! OpenAI Responses: mapping our conversation to input items, and folding the events.
//!
//! Our conversation maps item by item: system, user and assistant text become `message`
//! items; an assistant's tool calls become `function_call` items; tool results become
//! `function_call_output` items. `store: false`, so nothing is kept on the server and
//! every turn sends the whole conversation (as the other protocols do).
//!
//! A function call starts with `response.output_item.added` (its `call_id` and name),
//! grows with `response.function_call_arguments.delta`, and is final in
//! `response.output_item.done`. Calls are emitted, in output order, at
//! `response.completed` (or `response.incomplete`, when the output cap was reached),
//! which also carries the usage and ends the response. `response.failed` and `error`
//! events end it with an error; a stream that closes before any of them was cut off.

use std::collections::BTreeMap;

use codex_actors::model::{ModelError, ModelEvent, ModelRequest, Role, ToolCall, Usage};

use super::protocol::{cut_off, parse_arguments, parse_data, Decoder, Step};
use super::wire::responses as wire;

/// The request body.
pub fn request(model: &str, request: &ModelRequest) -> wire::Request {
    wire::Request {
        model: model.to_owned(),
        input: request.messages.iter().flat_map(items).collect(),
        stream: true,
        max_output_tokens: request.max_output_tokens,
        store: false,
        tools: request
            .tools
            .iter()
            .map(|t| wire::Tool {
                kind: "function",
                name: t.name.clone(),
                description: t.description.clone(),
                parameters: t.parameters.clone(),
            })
            .collect(),
    }
}

fn items(m: &codex_actors::model::ChatMessage) -> Vec<wire::InputItem> {
    let role = match m.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => {
            return vec![wire::InputItem::FunctionCallOutput {
                call_id: m.tool_call_id.clone().unwrap_or_default(),
                output: m.content.clone(),
            }]
        }
    };
    let mut out = Vec::new();
    if !m.content.is_empty() || m.tool_calls.is_empty() {
        out.push(wire::InputItem::Message {
            role,
            content: m.content.clone(),
        });
    }
    out.extend(m.tool_calls.iter().map(|c| wire::InputItem::FunctionCall {
        call_id: c.id.clone(),
        name: c.name.clone(),
        arguments: c.arguments.to_string(),
    }));
    out
}

/// A function call being assembled.
#[derive(Debug, Default)]
struct PartialCall {
    call_id: String,
    name: String,
    arguments: String,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct ResponsesDecoder {
    calls: BTreeMap<usize, PartialCall>,
}

impl ResponsesDecoder {
    fn item(&mut self, event: &wire::Event) {
        let Some(item) = event.item.as_ref().filter(|i| i.kind == "function_call") else {
            return;
        };
        let call = self
            .calls
            .entry(event.output_index.unwrap_or(0))
            .or_default();
        if let Some(id) = &item.call_id {
            call.call_id = id.clone();
        }
        if let Some(name) = &item.name {
            call.name = name.clone();
        }
        if let Some(args) = item.arguments.as_ref().filter(|a| !a.is_empty()) {
            call.arguments = args.clone();
        }
    }

    fn finish(&mut self, event: wire::Event) -> Step {
        let mut events: Vec<ModelEvent> = std::mem::take(&mut self.calls)
            .into_iter()
            .map(|(index, c)| {
                ModelEvent::ToolCall(ToolCall {
                    id: if c.call_id.is_empty() {
                        format!("call_{index}")
                    } else {
                        c.call_id
                    },
                    name: c.name,
                    arguments: parse_arguments(&c.arguments),
                })
            })
            .collect();
        if let Some(u) = event.response.and_then(|r| r.usage) {
            events.push(ModelEvent::Usage(Usage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
            }));
        }
        Step { events, done: true }
    }
}

/// The error a failed response or an `error` event stands for.
fn failure(code: Option<&str>, message: Option<&str>) -> ModelError {
    let code = code.unwrap_or("unknown");
    let text = format!(
        "the Responses API reported an error ({code}): {}",
        message.unwrap_or("no message")
    );
    match code {
        "context_length_exceeded" | "invalid_prompt" | "invalid_request_error" => {
            ModelError::Fatal(text)
        }
        _ => ModelError::Transient(text),
    }
}

impl Decoder for ResponsesDecoder {
    fn event(&mut self, _name: &str, data: &str) -> Result<Step, ModelError> {
        let event: wire::Event = parse_data("Responses", data)?;
        match event.kind.as_str() {
            "response.output_text.delta" => Ok(match event.delta {
                Some(t) if !t.is_empty() => Step::one(ModelEvent::TextDelta(t)),
                _ => Step::none(),
            }),
            "response.output_item.added" | "response.output_item.done" => {
                self.item(&event);
                Ok(Step::none())
            }
            "response.function_call_arguments.delta" => {
                let index = event.output_index.unwrap_or(0);
                let call = self.calls.entry(index).or_default();
                call.arguments
                    .push_str(event.delta.as_deref().unwrap_or(""));
                Ok(Step::none())
            }
            "response.completed" | "response.incomplete" => Ok(self.finish(event)),
            "response.failed" => {
                let error = event.response.and_then(|r| r.error).unwrap_or_default();
                Err(failure(error.code.as_deref(), error.message.as_deref()))
            }
            "error" => Err(failure(event.code.as_deref(), event.message.as_deref())),
            _ => Ok(Step::none()),
        }
    }

    fn close(&mut self) -> Result<Step, ModelError> {
        Err(cut_off("Responses", "response.completed"))
    }
}
