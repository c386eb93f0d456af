//! Chat Completions: mapping our conversation to `messages`, and folding the chunks.
//!
//! Tool calls arrive as pieces keyed by `index` (the first piece has the id and name,
//! the following ones append argument text; several calls may interleave). They are
//! collected per index ([`super::calls`]) and emitted, in index order, when the stream
//! ends, followed by the `finish_reason` as a [`StopReason`] (`length`: the output cap cut
//! the answer). An `error` object in a chunk (llama.cpp, vLLM, OpenRouter) ends the
//! response with the server's message.
//!
//! The end of a response is `data: [DONE]`. Some servers omit it; a stream that closes
//! after a choice reported a `finish_reason` is therefore accepted as complete, one that
//! closes before is cut off. Usage comes in a last chunk without choices
//! (`stream_options.include_usage`); servers that ignore the option report none, and the
//! engine then charges its own estimate.

use codex_actors::model::{ModelError, ModelEvent, ModelRequest, Role, StopReason, Usage};

use super::calls::{Calls, Key, Piece};
use super::protocol::{cut_off, mid_stream_error, parse_data, BodyOptions, Decoder, Step};
use super::wire::chat as wire;

/// The request body.
pub fn request<'a>(
    model: &'a str,
    request: &'a ModelRequest,
    options: BodyOptions,
) -> wire::Request<'a> {
    let cap = request.max_output_tokens;
    wire::Request {
        model,
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
                    name: &t.name,
                    description: &t.description,
                    parameters: &t.parameters,
                },
            })
            .collect(),
    }
}

fn message(m: &codex_actors::model::ChatMessage) -> wire::Message<'_> {
    let role = match m.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let only_calls = m.role == Role::Assistant && m.content.is_empty() && !m.tool_calls.is_empty();
    wire::Message {
        role,
        content: (!only_calls).then_some(m.content.as_str()),
        tool_calls: m
            .tool_calls
            .iter()
            .map(|c| wire::OutCall {
                id: &c.id,
                kind: "function",
                function: wire::OutFunction {
                    name: &c.name,
                    arguments: c.arguments.to_string(),
                },
            })
            .collect(),
        tool_call_id: m.tool_call_id.as_deref(),
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct ChatDecoder {
    calls: Calls,
    stop: Option<StopReason>,
    usage: Option<Usage>,
}

/// A `finish_reason` as a [`StopReason`] (`None`: one we do not know, taken as the end).
fn stop_reason(finish: &str) -> Option<StopReason> {
    match finish {
        "stop" | "eos" | "end_turn" => Some(StopReason::EndTurn),
        "tool_calls" | "function_call" => Some(StopReason::ToolUse),
        "length" | "max_tokens" => Some(StopReason::MaxOutputTokens),
        "content_filter" => Some(StopReason::ContentFilter),
        _ => None,
    }
}

impl ChatDecoder {
    fn chunk(&mut self, chunk: wire::Chunk) -> Result<Step, ModelError> {
        if let Some(error) = chunk.error {
            return Err(mid_stream_error("Chat Completions", &error));
        }
        let mut step = Step::none();
        for choice in chunk.choices {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                step.events.push(ModelEvent::TextDelta(text));
            }
            for piece in choice.delta.tool_calls {
                self.add_piece(piece);
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                self.stop = Some(stop_reason(&reason).unwrap_or(StopReason::EndTurn));
            }
        }
        if let Some(u) = chunk.usage {
            let usage = Usage {
                input_tokens: u.prompt_tokens,
                output_tokens: u.completion_tokens,
            };
            self.usage = Some(usage);
            step.events.push(ModelEvent::Usage(usage));
        }
        Ok(step)
    }

    fn add_piece(&mut self, piece: wire::CallDelta) {
        let keys = [Key::Index(piece.index)];
        let (name, delta) = match piece.function {
            Some(f) => (f.name, f.arguments),
            None => (None, None),
        };
        let piece = Piece {
            id: piece.id,
            name,
            delta,
            arguments: None,
        };
        self.calls.add(&keys, piece);
    }

    /// The end: the collected calls, then why the model stopped.
    fn finish(&mut self) -> Step {
        let mut events: Vec<ModelEvent> = self
            .calls
            .take("call_")
            .into_iter()
            .map(ModelEvent::ToolCall)
            .collect();
        events.extend(self.stop.map(ModelEvent::Stop));
        Step { events, done: true }
    }
}

impl Decoder for ChatDecoder {
    fn event(&mut self, _name: &str, data: &str) -> Result<Step, ModelError> {
        if data.trim() == "[DONE]" {
            return Ok(self.finish());
        }
        self.chunk(parse_data("Chat Completions", data)?)
    }

    fn close(&mut self) -> Result<Step, ModelError> {
        if self.stop.is_none() {
            return Err(cut_off("Chat Completions", "[DONE]"));
        }
        Ok(self.finish())
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}
