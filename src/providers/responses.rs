//! OpenAI Responses: mapping our conversation to input items, and folding the events.
//!
//! Our conversation maps item by item: system, user and assistant text become `message`
//! items; an assistant's tool calls become `function_call` items; tool results become
//! `function_call_output` items. `store: false`, so nothing is kept on the server and
//! every turn sends the whole conversation (as the other protocols do).
//!
//! A function call starts with `response.output_item.added` (its `call_id` and name),
//! grows with `response.function_call_arguments.delta`, and is final in
//! `response.output_item.done`. Events name their item by `output_index` and/or
//! `item_id` (llama.cpp's server sends no `output_index`): calls are told apart by
//! whichever the server sends ([`super::calls`]). Calls are emitted, in output order, at
//! `response.completed` (or `response.incomplete`, when the output cap was reached),
//! which also carries the usage and the status (`incomplete`: [`StopReason::MaxOutputTokens`])
//! and ends the response. `response.failed`, `error` events and a bare `{"error": ...}`
//! (llama.cpp) end it with the server's message; a stream that closes before any of them
//! was cut off.

use codex_actors::model::{ModelError, ModelEvent, ModelRequest, Role, StopReason, Usage};

use super::calls::{Calls, Key, Piece};
use super::protocol::{cut_off, mid_stream_error, parse_data, Decoder, Step};
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

/// See the module docs.
#[derive(Debug, Default)]
pub struct ResponsesDecoder {
    calls: Calls,
}

/// What identifies the item an event is about, whichever of them the server sends.
fn keys(event: &wire::Event) -> Vec<Key> {
    let mut keys = Vec::new();
    if let Some(i) = event.output_index {
        keys.push(Key::OutputIndex(i));
    }
    if let Some(id) = &event.item_id {
        keys.push(Key::ItemId(id.clone()));
    }
    if let Some(item) = &event.item {
        if let Some(id) = &item.id {
            keys.push(Key::ItemId(id.clone()));
        }
        if let Some(id) = &item.call_id {
            keys.push(Key::CallId(id.clone()));
        }
    }
    keys
}

impl ResponsesDecoder {
    fn item(&mut self, event: &wire::Event) {
        let Some(item) = event.item.as_ref().filter(|i| i.kind == "function_call") else {
            return;
        };
        let piece = Piece {
            id: item.call_id.clone(),
            name: item.name.clone(),
            delta: None,
            arguments: item.arguments.clone(),
        };
        self.calls.add(&keys(event), piece);
    }

    /// Argument text (`.delta`) or the whole arguments (`.done`) of a call already begun;
    /// a server that sends them for an item it never announced starts one.
    fn arguments(&mut self, event: &wire::Event, done: bool) {
        let piece = if done {
            Piece {
                arguments: event.arguments.clone(),
                ..Piece::default()
            }
        } else {
            Piece {
                delta: event.delta.clone(),
                ..Piece::default()
            }
        };
        self.calls.add(&keys(event), piece);
    }

    fn finish(&mut self, event: wire::Event) -> Step {
        let mut events: Vec<ModelEvent> = self
            .calls
            .take("call_")
            .into_iter()
            .map(ModelEvent::ToolCall)
            .collect();
        let calls = !events.is_empty();
        let response = event.response.unwrap_or_default();
        if let Some(u) = response.usage {
            events.push(ModelEvent::Usage(Usage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
            }));
        }
        let reason = response.incomplete_details.and_then(|d| d.reason);
        let stop = match (response.status.as_deref(), reason.as_deref()) {
            (_, Some("content_filter")) => StopReason::ContentFilter,
            (Some("incomplete"), _) | (_, Some("max_output_tokens")) => StopReason::MaxOutputTokens,
            _ if event.kind == "response.incomplete" => StopReason::MaxOutputTokens,
            _ if calls => StopReason::ToolUse,
            _ => StopReason::EndTurn,
        };
        events.push(ModelEvent::Stop(stop));
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
        if data.trim() == "[DONE]" {
            // LiteLLM ends its Responses streams like Chat Completions; the response
            // itself ended at `response.completed`.
            return Ok(Step::none());
        }
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
                self.arguments(&event, false);
                Ok(Step::none())
            }
            "response.function_call_arguments.done" => {
                self.arguments(&event, true);
                Ok(Step::none())
            }
            "response.completed" | "response.incomplete" => Ok(self.finish(event)),
            "response.failed" => {
                let error = event.response.and_then(|r| r.error).unwrap_or_default();
                Err(failure(error.code.as_deref(), error.message.as_deref()))
            }
            "error" => {
                let code = event.code.as_ref().map(|c| match c {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                Err(failure(code.as_deref(), event.message.as_deref()))
            }
            "" => match &event.error {
                // An error object without an event type: llama.cpp's server mid-stream.
                Some(error) => Err(mid_stream_error("Responses", error)),
                None => Ok(Step::none()),
            },
            _ => Ok(Step::none()),
        }
    }

    fn close(&mut self) -> Result<Step, ModelError> {
        Err(cut_off("Responses", "response.completed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn feed(decoder: &mut ResponsesDecoder, event: serde_json::Value) -> Step {
        decoder
            .event("", &event.to_string())
            .expect("a valid event")
    }

    proptest! {
        /// llama.cpp's server: function calls named only by `item_id` (no `output_index`),
        /// their argument deltas interleaved in any order: each call keeps its own id, name
        /// and arguments, and none is merged into another.
        #[test]
        fn calls_without_output_index_stay_apart_however_deltas_interleave(
            paths in proptest::collection::vec("[a-z]{1,8}", 1..6),
            picks in proptest::collection::vec(0usize..100, 0..120),
        ) {
            let mut d = ResponsesDecoder::default();
            for (n, _) in paths.iter().enumerate() {
                feed(&mut d, json!({"type":"response.output_item.added","item":{"id":format!("fc_{n}"),"call_id":format!("call_{n}"),"name":"read_file","type":"function_call","arguments":""}}));
            }
            let texts: Vec<String> = paths.iter().map(|p| json!({"path": p}).to_string()).collect();
            let mut sent = vec![0usize; texts.len()];
            let mut picks = picks.into_iter().chain(0..);
            while sent.iter().zip(&texts).any(|(s, t)| s < &t.len()) {
                let open: Vec<usize> = (0..texts.len()).filter(|&i| sent[i] < texts[i].len()).collect();
                let n = open[picks.next().unwrap() % open.len()];
                let end = (sent[n] + 3).min(texts[n].len());
                let delta = &texts[n][sent[n]..end];
                feed(&mut d, json!({"type":"response.function_call_arguments.delta","item_id":format!("fc_{n}"),"delta":delta}));
                sent[n] = end;
            }
            let step = feed(&mut d, json!({"type":"response.completed","response":{"status":"completed","usage":{"input_tokens":5,"output_tokens":7}}}));
            let calls: Vec<ToolCallView> = step.events.iter().filter_map(|e| match e {
                ModelEvent::ToolCall(c) => Some((c.id.clone(), c.name.clone(), c.arguments.clone())),
                _ => None,
            }).collect();
            prop_assert_eq!(calls.len(), paths.len());
            for (n, (id, name, args)) in calls.iter().enumerate() {
                prop_assert_eq!(id, &format!("call_{n}"));
                prop_assert_eq!(name, "read_file");
                prop_assert_eq!(args, &json!({"path": paths[n]}));
            }
            prop_assert!(step.events.contains(&ModelEvent::Stop(StopReason::ToolUse)));
        }
    }

    type ToolCallView = (String, String, serde_json::Value);
}
