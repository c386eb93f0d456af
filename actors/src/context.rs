//! Keeping an agent's conversation under its context cap, as pure code.
//!
//! A long task grows the conversation every turn, and a provider refuses a prompt over its
//! model's context window. Before each call the agent asks [`plan`] whether the request it
//! is about to send (prompt plus the output it reserves) fits [`ContextPolicy::max_tokens`].
//! If not, two steps, cheapest first:
//!
//! 1. **Elide old tool outputs** ([`elide_tool_outputs`]): oldest first, a tool result from
//!    an earlier turn is replaced by a stub naming the tool, the call and its arguments, so
//!    the model knows how to get it again. The last turn's results are never elided.
//! 2. **Compact**: the conversation after its head (system prompt and goal) and before a
//!    recent suffix is dropped ([`Compaction::keep_from`]); what survives depends on
//!    [`Retention`]. With `job` (the default) one model call, budgeted and audited like any
//!    other, summarises the dropped part into a handoff note ([`compaction_request`]),
//!    which is inserted after the head ([`handoff_note`]).
//!
//! The recent suffix always starts at an assistant message, so a tool result never loses
//! the call it answers (providers refuse such a conversation). If the head and the latest
//! turn alone do not fit, the latest turn's tool outputs are cut ([`cut_to_fit`]); a head
//! that does not fit by itself is an error the agent reports.

use serde::{Deserialize, Serialize};

use crate::model::{ChatMessage, Role};

/// What a compaction keeps of the conversation before the recent turns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retention {
    /// A handoff note summarising everything dropped, written by the model (one call).
    #[default]
    Job,
    /// The recent turns only: what is dropped is forgotten, and no call is made.
    Turn,
    /// Only the goal and the latest turn: every compaction forgets all the rest.
    None,
}

/// How much context an agent keeps; see the module docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextPolicy {
    /// The most tokens one request may take, prompt and output together. `None`: no cap.
    pub max_tokens: Option<u64>,
    /// What survives a compaction.
    #[serde(default)]
    pub retention: Retention,
}

impl ContextPolicy {
    /// This policy, with `window` (the model's context window) as the cap when it sets none.
    pub fn or_window(self, window: Option<u64>) -> Self {
        Self {
            max_tokens: self.max_tokens.or(window),
            ..self
        }
    }

    /// The most prompt tokens a request may take, leaving room for `max_output` (at most a
    /// quarter of the cap, so a prompt always has three quarters of it).
    pub fn prompt_cap(&self, max_output: u64) -> Option<u64> {
        self.max_tokens.map(|cap| cap - max_output.min(cap / 4))
    }

    /// The output cap of a call whose prompt is `prompt` tokens: what the cap leaves.
    pub fn output_cap(&self, prompt: u64, wanted: u64) -> u64 {
        match self.max_tokens {
            Some(cap) => wanted.min(cap.saturating_sub(prompt)),
            None => wanted,
        }
    }
}

/// The messages that open every conversation and survive every compaction: the system
/// prompt (if any) and the task.
pub fn head_len(messages: &[ChatMessage]) -> usize {
    let system = usize::from(messages.first().is_some_and(|m| m.role == Role::System));
    (system + 1).min(messages.len())
}

/// A compaction to make: drop `messages[head..keep_from]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    /// Where the kept head ends.
    pub head: usize,
    /// Where the kept recent turns begin.
    pub keep_from: usize,
}

/// What to do before the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextStep {
    /// The request fits as it is (possibly after eliding tool outputs).
    Fits,
    /// The request fits only after this compaction.
    Compact(Compaction),
}

/// Elides tool outputs from turns before the latest, oldest first, until `fits` says the
/// conversation fits; returns how many were elided.
pub fn elide_tool_outputs(
    messages: &mut [ChatMessage],
    fits: impl Fn(&[ChatMessage]) -> bool,
) -> usize {
    let latest = latest_turn_start(messages);
    let mut elided = 0;
    for i in head_len(messages)..latest {
        if fits(messages) {
            break;
        }
        if messages[i].role != Role::Tool || is_elided(&messages[i]) {
            continue;
        }
        messages[i].content = elision_stub(messages, i);
        elided += 1;
    }
    elided
}

const ELIDED_MARK: &str = "[output elided to save context:";

fn is_elided(m: &ChatMessage) -> bool {
    m.content.starts_with(ELIDED_MARK)
}

/// The stub that replaces the tool result at `i`: which call it answered and how to get
/// its content again.
fn elision_stub(messages: &[ChatMessage], i: usize) -> String {
    let id = messages[i].tool_call_id.as_deref().unwrap_or("");
    let call = messages[..i]
        .iter()
        .rev()
        .flat_map(|m| m.tool_calls.iter())
        .find(|c| c.id == id);
    let what = match call {
        Some(c) => {
            let args = c.arguments.to_string();
            let args: String = args.chars().take(300).collect();
            format!("`{}` called with {args}", c.name)
        }
        None => "a tool call".to_owned(),
    };
    format!("{ELIDED_MARK} {what} (call {id}); call the tool again if you need its output]")
}

/// Where the latest turn begins: the last assistant message (its tool results follow it).
fn latest_turn_start(messages: &[ChatMessage]) -> usize {
    messages
        .iter()
        .rposition(|m| m.role == Role::Assistant)
        .unwrap_or(messages.len())
        .max(head_len(messages))
}

/// Plans the compaction that makes the conversation fit: the longest recent suffix,
/// starting at an assistant message, that fits in half of `prompt_cap` with the head (the
/// other half is room for the note and the turns to come); at least the latest turn.
pub fn plan(
    messages: &[ChatMessage],
    policy: &ContextPolicy,
    prompt_cap: u64,
    estimate: impl Fn(&[ChatMessage]) -> u64,
) -> ContextStep {
    if estimate(messages) <= prompt_cap {
        return ContextStep::Fits;
    }
    let head = head_len(messages);
    let latest = latest_turn_start(messages);
    let mut keep_from = latest;
    if policy.retention != Retention::None {
        let head_cost = estimate(&messages[..head]);
        for i in (head..latest).rev() {
            if messages[i].role != Role::Assistant {
                continue;
            }
            if head_cost + estimate(&messages[i..]) > prompt_cap / 2 {
                break;
            }
            keep_from = i;
        }
    }
    ContextStep::Compact(Compaction { head, keep_from })
}

/// The system prompt of a compaction call.
pub const COMPACTION_INSTRUCTIONS: &str = "You are compacting the working memory of a coding \
agent whose conversation has grown too long. Write a handoff note for the agent to continue \
from: the goal's state, what it has done and found (files, facts, decisions, results of tools), \
what failed, and what remains to do. Be specific and brief; do not call tools.";

/// The messages of the compaction call for `dropped`: its transcript, cut from the front
/// (the oldest part) to fit `prompt_cap`.
pub fn compaction_request(
    dropped: &[ChatMessage],
    prompt_cap: u64,
    estimate: impl Fn(&[ChatMessage]) -> u64,
) -> Vec<ChatMessage> {
    let mut transcript = String::new();
    for m in dropped {
        let role = match m.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool result",
        };
        transcript.push_str(&format!("[{role}] {}\n", m.content));
        for c in &m.tool_calls {
            transcript.push_str(&format!("[tool call] {} {}\n", c.name, c.arguments));
        }
    }
    let build = |t: &str| {
        vec![
            ChatMessage::text(Role::System, COMPACTION_INSTRUCTIONS),
            ChatMessage::text(Role::User, format!("The conversation so far:\n\n{t}")),
        ]
    };
    let mut messages = build(&transcript);
    while estimate(&messages) > prompt_cap && !transcript.is_empty() {
        let cut = floor_boundary(&transcript, transcript.len() / 4).max(1);
        let cut = ceil_boundary(&transcript, cut);
        transcript.replace_range(..cut, "…");
        if transcript == "…" {
            transcript.clear();
        }
        messages = build(&transcript);
    }
    messages
}

/// The message that carries a compaction's note into the conversation.
pub fn handoff_note(note: &str) -> ChatMessage {
    ChatMessage::text(
        Role::User,
        format!(
            "[Earlier turns of this task were compacted to save context. Handoff note:]\n{note}"
        ),
    )
}

/// Applies `compaction`: drops `messages[head..keep_from]` and, if given, inserts `note`
/// after the head.
pub fn apply(messages: &mut Vec<ChatMessage>, compaction: Compaction, note: Option<ChatMessage>) {
    messages.splice(compaction.head..compaction.keep_from, note);
}

/// Cuts the latest turn's largest tool outputs until the conversation fits: the last
/// resort when even the head and the latest turn are over the cap. Returns whether it fits.
pub fn cut_to_fit(
    messages: &mut [ChatMessage],
    prompt_cap: u64,
    estimate: impl Fn(&[ChatMessage]) -> u64,
) -> bool {
    while estimate(messages) > prompt_cap {
        let largest = (0..messages.len())
            .filter(|&i| messages[i].role == Role::Tool && messages[i].content.len() > 64)
            .max_by_key(|&i| messages[i].content.len());
        let Some(i) = largest else { return false };
        let content = &mut messages[i].content;
        let keep = floor_boundary(content, content.len() / 2);
        content.truncate(keep);
        content.push_str("\n[output cut to fit the context window]");
    }
    true
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests;
