use proptest::prelude::*;

use super::*;
use crate::model::{estimate_prompt_tokens, ToolCall};

fn est(m: &[ChatMessage]) -> u64 {
    estimate_prompt_tokens(m, &[])
}

fn head() -> Vec<ChatMessage> {
    vec![
        ChatMessage::text(Role::System, "You are a careful agent."),
        ChatMessage::text(Role::User, "Goal: do the work"),
    ]
}

/// One turn: an assistant call of `read_file` and its result of `bytes` bytes.
fn turn(n: usize, bytes: usize) -> Vec<ChatMessage> {
    let id = format!("call_{n}");
    vec![
        ChatMessage {
            role: Role::Assistant,
            content: format!("turn {n}"),
            tool_calls: vec![ToolCall {
                id: id.clone(),
                name: "read_file".into(),
                arguments: serde_json::json!({"path": format!("src/{n}.rs")}),
            }],
            tool_call_id: None,
        },
        ChatMessage::tool_result(id, "x".repeat(bytes)),
    ]
}

fn conversation(turns: &[usize]) -> Vec<ChatMessage> {
    let mut m = head();
    for (n, bytes) in turns.iter().enumerate() {
        m.extend(turn(n, *bytes));
    }
    m
}

/// Every tool result answers a call of the assistant message before it.
fn well_formed(messages: &[ChatMessage]) -> bool {
    messages.iter().enumerate().all(|(i, m)| {
        m.role != Role::Tool
            || messages[..i]
                .iter()
                .rev()
                .find(|p| p.role != Role::Tool)
                .is_some_and(|p| {
                    p.tool_calls
                        .iter()
                        .any(|c| Some(&c.id) == m.tool_call_id.as_ref())
                })
    })
}

const JOB: ContextPolicy = ContextPolicy {
    max_tokens: Some(4_000),
    retention: Retention::Job,
};

#[test]
fn a_conversation_under_the_cap_fits() {
    let m = conversation(&[100, 100]);
    assert_eq!(plan(&m, &JOB, 3_000, est), ContextStep::Fits);
}

#[test]
fn the_prompt_cap_leaves_room_for_the_output_but_at_most_a_quarter() {
    assert_eq!(JOB.prompt_cap(200), Some(3_800));
    assert_eq!(JOB.prompt_cap(4_096), Some(3_000));
    assert_eq!(ContextPolicy::default().prompt_cap(200), None);
}

#[test]
fn old_tool_outputs_are_elided_oldest_first_and_the_latest_turn_never() {
    let mut m = conversation(&[3_000, 3_000, 3_000]);
    let cap = est(&m) - 500;
    let elided = elide_tool_outputs(&mut m, |m| est(m) <= cap);
    assert_eq!(elided, 1);
    assert!(m[3].content.starts_with(ELIDED_MARK), "{}", m[3].content);
    assert!(m[3].content.contains("read_file"));
    assert!(m[3].content.contains("src/0.rs"));
    assert!(m[3].content.contains("call_0"));
    assert_eq!(m[5].content.len(), 3_000);

    let elided = elide_tool_outputs(&mut m, |_| false);
    assert_eq!(elided, 1, "only the middle turn was left to elide");
    assert_eq!(
        m[7].content.len(),
        3_000,
        "the latest turn's output is kept"
    );
}

#[test]
fn a_compaction_keeps_the_head_and_recent_turns_starting_at_an_assistant_message() {
    let m = conversation(&[900; 20]);
    let ContextStep::Compact(c) = plan(&m, &JOB, 3_000, est) else {
        panic!("20 turns of 900 bytes do not fit 3,000 tokens");
    };
    assert_eq!(c.head, 2);
    assert_eq!(m[c.keep_from].role, Role::Assistant);
    assert!(c.keep_from < m.len() - 2, "more than the latest turn fits");
    assert!(est(&m[..2]) + est(&m[c.keep_from..]) <= 1_500);
}

#[test]
fn retention_none_keeps_only_the_latest_turn() {
    let m = conversation(&[900; 20]);
    let none = ContextPolicy {
        retention: Retention::None,
        ..JOB
    };
    let ContextStep::Compact(c) = plan(&m, &none, 3_000, est) else {
        panic!("over the cap");
    };
    assert_eq!(c.keep_from, m.len() - 2);
}

#[test]
fn applying_a_compaction_puts_the_note_after_the_head() {
    let mut m = conversation(&[900; 10]);
    let c = Compaction {
        head: 2,
        keep_from: 18,
    };
    apply(&mut m, c, Some(handoff_note("did things")));
    assert_eq!(m.len(), 2 + 1 + 4);
    assert!(m[2].content.contains("did things"));
    assert!(well_formed(&m));
}

#[test]
fn the_compaction_request_fits_its_cap_and_keeps_the_newest_part() {
    let dropped = conversation(&[5_000; 10]);
    let request = compaction_request(&dropped, 2_000, est);
    assert!(est(&request) <= 2_000);
    assert!(request[1].content.contains("turn 9"));
    assert!(!request[1].content.contains("turn 0"));
}

#[test]
fn cutting_the_latest_outputs_makes_a_huge_last_turn_fit() {
    let mut m = conversation(&[60_000]);
    assert!(cut_to_fit(&mut m, 3_000, est));
    assert!(est(&m) <= 3_000);
    assert!(m[3]
        .content
        .ends_with("[output cut to fit the context window]"));
}

#[test]
fn a_head_over_the_cap_cannot_be_made_to_fit() {
    let mut m = vec![
        ChatMessage::text(Role::System, "s".repeat(30_000)),
        ChatMessage::text(Role::User, "Goal"),
    ];
    assert!(!cut_to_fit(&mut m, 3_000, est));
}

proptest! {
    /// Whatever the turns' sizes and the cap, eliding, compacting with a note of bounded
    /// size, and cutting as a last resort leave a well-formed conversation under the cap.
    #[test]
    fn every_conversation_is_brought_under_the_cap(
        turns in proptest::collection::vec(0usize..20_000, 1..60),
        cap in 1_000u64..20_000,
        retention in prop_oneof![Just(Retention::Job), Just(Retention::Turn), Just(Retention::None)],
        note_bytes in 0usize..2_000,
    ) {
        let policy = ContextPolicy { max_tokens: Some(cap), retention };
        let prompt_cap = policy.prompt_cap(200).unwrap();
        let mut m = conversation(&turns);
        elide_tool_outputs(&mut m, |m| est(m) <= prompt_cap);
        if let ContextStep::Compact(c) = plan(&m, &policy, prompt_cap, est) {
            let note = (retention == Retention::Job).then(|| {
                // The note's size is the compaction call's output cap: a quarter of the cap.
                let bytes = note_bytes.min(prompt_cap as usize / 4 * 3 / 2);
                handoff_note(&"n".repeat(bytes))
            });
            apply(&mut m, c, note);
        }
        prop_assert!(cut_to_fit(&mut m, prompt_cap, est));
        prop_assert!(est(&m) <= prompt_cap, "{} > {prompt_cap}", est(&m));
        prop_assert!(well_formed(&m));
        prop_assert_eq!(&m[..2], &head()[..]);
    }
}
