//! Bounds on what one model turn can make the engine do, whatever the model sends: at
//! most [`MAX_TOOL_CALLS_PER_TURN`] tool calls are run per turn (the rest get an error
//! result, so the conversation stays well-formed), and a call whose arguments exceed
//! [`MAX_TOOL_ARGUMENT_BYTES`] is refused before its tool plans anything, and a model
//! response is read only up to [`MAX_RESPONSE_BYTES`] ([`crate::model::collect_response`]
//! stops reading, which cancels the call, as soon as the events it got pass the cap; a
//! provider still assembles one tool call's argument deltas before it hands the call on).
//! Pure; the agent asks [`refusal`] before it runs a call.

use crate::model::ToolCall;

/// Tool calls run per model turn; the rest get an error result.
pub const MAX_TOOL_CALLS_PER_TURN: usize = 32;

/// The largest JSON arguments of one tool call, in bytes (a `write_file` of 1 MiB, escaped,
/// fits).
pub const MAX_TOOL_ARGUMENT_BYTES: usize = 4 << 20;

/// The most bytes of one model response (text plus tool calls' names and arguments);
/// defined with the model interface, which enforces it.
pub use crate::model::MAX_RESPONSE_BYTES;

/// `call` as the conversation keeps it: arguments over [`MAX_TOOL_ARGUMENT_BYTES`] (the
/// call was refused) are replaced by a note of their size, so a refused flood is not sent
/// back to the model, and charged, on every later turn.
pub fn for_history(call: &ToolCall) -> ToolCall {
    let size = call.arguments.to_string().len();
    if size <= MAX_TOOL_ARGUMENT_BYTES {
        return call.clone();
    }
    ToolCall {
        id: call.id.clone(),
        name: call.name.clone(),
        arguments: serde_json::json!({ "omitted": format!("{size} bytes, over the limit; not run") }),
    }
}

/// Why the call at `index` (0-based, in the turn) of `call` is not run, if it is not.
pub fn refusal(index: usize, call: &ToolCall) -> Option<String> {
    if index >= MAX_TOOL_CALLS_PER_TURN {
        return Some(format!(
            "not run: at most {MAX_TOOL_CALLS_PER_TURN} tool calls are run per turn; make the rest in a later turn"
        ));
    }
    let size = call.arguments.to_string().len();
    if size > MAX_TOOL_ARGUMENT_BYTES {
        return Some(format!(
            "not run: the arguments are {size} bytes, more than the {MAX_TOOL_ARGUMENT_BYTES} a tool call may carry"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(args: serde_json::Value) -> ToolCall {
        ToolCall {
            id: "c".into(),
            name: "write_file".into(),
            arguments: args,
        }
    }

    #[test]
    fn calls_past_the_per_turn_cap_are_refused() {
        let c = call(json!({}));
        assert_eq!(refusal(MAX_TOOL_CALLS_PER_TURN - 1, &c), None);
        assert!(refusal(MAX_TOOL_CALLS_PER_TURN, &c)
            .unwrap()
            .contains("per turn"));
    }

    #[test]
    fn an_endless_response_is_cut_while_it_streams() {
        use crate::model::{collect_response_within, ModelError, ModelEvent};
        use futures::StreamExt;
        // Never ends on its own: only a cap checked per event can stop reading it.
        let endless =
            futures::stream::repeat_with(|| Ok(ModelEvent::TextDelta("x".repeat(1024)))).boxed();
        let got = futures::executor::block_on(collect_response_within(endless, 1 << 20));
        match got {
            Err(ModelError::Fatal(why)) => assert!(why.contains("1048576 bytes"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oversized_arguments_are_not_kept_in_the_conversation() {
        let big = call(json!({ "content": "x".repeat(MAX_TOOL_ARGUMENT_BYTES) }));
        let kept = for_history(&big);
        assert_eq!(kept.id, big.id);
        assert!(kept.arguments.to_string().len() < 100);
        let small = call(json!({"content": "small"}));
        assert_eq!(for_history(&small), small);
    }

    #[test]
    fn oversized_arguments_are_refused() {
        let big = "x".repeat(MAX_TOOL_ARGUMENT_BYTES);
        assert!(refusal(0, &call(json!({ "content": big })))
            .unwrap()
            .contains("bytes"));
        assert_eq!(refusal(0, &call(json!({"content": "small"}))), None);
    }
}
