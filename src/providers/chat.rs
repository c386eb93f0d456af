//! Chat Completions: mapping our conversation to `messages`, and folding the chunks.
//!
//! Tool calls arrive as pieces keyed by `index` (the first piece has the id and name,
//! the following ones append argument text; several calls may interleave). They are
//! collected per index and emitted, in index order, when the stream ends.
//!
//! The end of a response is `data: [DONE]`. Some servers omit it; a stream that closes
//! after a choice reported a `finish_reason` is therefore accepted as complete, one that
//! closes before is cut off. Usage comes in a last chunk without choices
//! (`stream_options.include_usage`); servers that ignore the option report none, and the
//! engine then charges its own estimate.

use std::collections::BTreeMap;

use codex_actors::model::{ModelError, ModelEvent, ModelRequest, Role, ToolCall, Usage};

use super::protocol::{cut_off, excerpt, parse_arguments, parse_data, BodyOptions, Decoder, Step};
use super::wire::chat as wire;

/// The request body.
pub fn request(model: &str, request: &ModelRequest, options: BodyOptions) -> wire::Request {
    let cap = request.max_output_tokens;
    wire::Request {
        model: model.to_owned(),
        messages: request.messages.iter().map(message).collect(),
        stream: true,
        stream_options: wire::StreamOptions {
            include_usage: true,
        },
        max_tokens: (!options.max_completion_tokens).then_some(cap),
        max_completion_tokens: options.max_completion_tokens.then_some(cap),
        tools: request
            .tools
            .iter()
            .map(|t| wire::Tool {
                kind: "function",
                function: wire::FunctionDef {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    parameters: t.parameters.clone(),
                },
            })
            .collect(),
    }
}

fn message(m: &codex_actors::model::ChatMessage) -> wire::Message {
    let role = match m.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let only_calls = m.role == Role::Assistant && m.content.is_empty() && !m.tool_calls.is_empty();
    wire::Message {
        role,
        content: (!only_calls).then(|| m.content.clone()),
        tool_calls: m
            .tool_calls
            .iter()
            .map(|c| wire::OutCall {
                id: c.id.clone(),
                kind: "function",
                function: wire::OutFunction {
                    name: c.name.clone(),
                    arguments: c.arguments.to_string(),
                },
            })
            .collect(),
        tool_call_id: m.tool_call_id.clone(),
    }
}

/// A tool call being assembled.
#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct ChatDecoder {
    calls: BTreeMap<usize, PartialCall>,
    finished: bool,
}

impl ChatDecoder {
    fn chunk(&mut self, chunk: wire::Chunk) -> Result<Step, ModelError> {
        if let Some(error) = chunk.error {
            return Err(ModelError::Transient(format!(
                "the server reported an error mid-stream: {}",
                excerpt(&error.to_string())
            )));
        }
        let mut step = Step::none();
        for choice in chunk.choices {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                step.events.push(ModelEvent::TextDelta(text));
            }
            for piece in choice.delta.tool_calls {
                self.add_piece(piece);
            }
            if choice.finish_reason.is_some_and(|r| !r.is_empty()) {
                self.finished = true;
            }
        }
        if let Some(u) = chunk.usage {
            step.events.push(ModelEvent::Usage(Usage {
                input_tokens: u.prompt_tokens,
                output_tokens: u.completion_tokens,
            }));
        }
        Ok(step)
    }

    fn add_piece(&mut self, piece: wire::CallDelta) {
        let call = self.calls.entry(piece.index).or_default();
        if let Some(id) = piece.id.filter(|i| !i.is_empty()) {
            call.id = id;
        }
        if let Some(f) = piece.function {
            if let Some(name) = f.name.filter(|n| !n.is_empty()) {
                call.name = name;
            }
            call.arguments.push_str(&f.arguments.unwrap_or_default());
        }
    }

    /// The collected calls, in index order (ids made up for servers that send none).
    fn take_calls(&mut self) -> Vec<ModelEvent> {
        std::mem::take(&mut self.calls)
            .into_iter()
            .map(|(index, c)| {
                ModelEvent::ToolCall(ToolCall {
                    id: if c.id.is_empty() {
                        format!("call_{index}")
                    } else {
                        c.id
                    },
                    name: c.name,
                    arguments: parse_arguments(&c.arguments),
                })
            })
            .collect()
    }
}

impl Decoder for ChatDecoder {
    fn event(&mut self, _name: &str, data: &str) -> Result<Step, ModelError> {
        if data.trim() == "[DONE]" {
            return Ok(Step {
                events: self.take_calls(),
                done: true,
            });
        }
        self.chunk(parse_data("Chat Completions", data)?)
    }

    fn close(&mut self) -> Result<Step, ModelError> {
        if !self.finished {
            return Err(cut_off("Chat Completions", "[DONE]"));
        }
        Ok(Step {
            events: self.take_calls(),
            done: true,
        })
    }
}
