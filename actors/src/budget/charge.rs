//! What a model call is charged, and how the next call's prompt is estimated.
//!
//! Both are about the same fact: the provider bills what it served, not what codex read.
//!
//! - **A call that fails** ([`failed_call_charge`]) is charged the usage the provider
//!   reported before or with its error when there is one; otherwise, if the provider had
//!   accepted the call, its whole reservation (it may have served up to that, and its bill
//!   will say so); and nothing only when the provider refused the call before serving it
//!   (connection refused, an error status). A call abandoned in flight (cancellation, a
//!   deadline, a crash) is charged in full by the ledger itself
//!   ([`crate::budget::BudgetLedger::end_attempts`]).
//! - **The prompt estimate is calibrated** ([`PromptCalibration`]): after each call whose
//!   usage was reported, the next estimate starts from the provider's own count of the
//!   conversation so far (its prompt tokens plus the answer's output tokens) and adds a
//!   conservative estimate of only what was appended since. A tokenizer's error then applies
//!   to one turn's additions, never to the whole conversation, so it cannot accumulate over
//!   hundreds of turns.

use crate::model::{ChatMessage, ToolSpec, Usage};

/// Why a failed call is charged what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedCallBasis {
    /// The provider reported usage before or with its error.
    Reported,
    /// The provider accepted the call and reported nothing: the whole reservation.
    WholeReservation,
    /// The provider refused the call before serving it.
    Refused,
}

impl FailedCallBasis {
    /// Why, in a sentence for the audit log.
    pub fn explain(self) -> &'static str {
        match self {
            Self::Reported => "charged the usage the provider reported before failing",
            Self::WholeReservation => {
                "charged its whole reservation: the provider accepted the call and reported no usage"
            }
            Self::Refused => "charged nothing: the provider refused the call before serving it",
        }
    }
}

/// The usage to charge for a failed call, and why. `granted` is the call's reservation,
/// `prompt_estimate` the prompt tokens it was estimated at (the input side of a whole-grant
/// charge; the rest is counted as output).
pub fn failed_call_charge(
    prompt_estimate: u64,
    granted: u64,
    accepted: bool,
    reported: Option<Usage>,
) -> (Usage, FailedCallBasis) {
    match (reported, accepted) {
        (Some(usage), _) => (usage, FailedCallBasis::Reported),
        (None, true) => {
            let input = prompt_estimate.min(granted);
            let usage = Usage {
                input_tokens: input,
                output_tokens: granted - input,
            };
            (usage, FailedCallBasis::WholeReservation)
        }
        (None, false) => (Usage::default(), FailedCallBasis::Refused),
    }
}

/// Tokens added per message appended since the provider's last count, on top of the
/// content's estimate: role markers and framing the estimate of a message body does not see.
const APPENDED_MESSAGE_SLACK: u64 = 8;

/// Prompt estimates anchored on the provider's own counts; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromptCalibration {
    anchor: Option<Anchor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Anchor {
    /// How many messages of the conversation the provider's count covers: those sent plus
    /// the assistant's answer.
    messages: usize,
    /// The provider's count of them: the prompt's tokens plus the answer's.
    tokens: u64,
}

impl PromptCalibration {
    /// A call was made with `messages_sent` messages and the provider reported `usage`; the
    /// answer is appended to the conversation as one message.
    pub fn observe(&mut self, messages_sent: usize, usage: Usage) {
        self.anchor = Some(Anchor {
            messages: messages_sent + 1,
            tokens: usage.input_tokens + usage.output_tokens,
        });
    }

    /// Forgets the anchor (the conversation was rewritten, e.g. compacted).
    pub fn reset(&mut self) {
        self.anchor = None;
    }

    /// The prompt tokens `messages` and `tools` will cost. `estimate` is the model's own
    /// conservative estimate, used for the whole prompt before the first report and for
    /// what was appended since the last one.
    pub fn estimate(
        &self,
        messages: &[ChatMessage],
        tools: &[ToolSpec],
        estimate: impl Fn(&[ChatMessage], &[ToolSpec]) -> u64,
    ) -> u64 {
        match self.anchor {
            Some(a) if a.messages <= messages.len() => {
                let appended = &messages[a.messages..];
                // The tools were counted in the anchor's prompt; a turn may drop them (the
                // wrap-up turn), never add new ones.
                a.tokens + estimate(appended, &[]) + APPENDED_MESSAGE_SLACK * appended.len() as u64
            }
            _ => estimate(messages, tools),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{estimate_prompt_tokens, Role};
    use proptest::prelude::*;

    fn usage(input: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
        }
    }

    #[test]
    fn a_failed_call_with_reported_usage_is_charged_that_usage() {
        let (u, basis) = failed_call_charge(100, 1_000, true, Some(usage(120, 40)));
        assert_eq!((u, basis), (usage(120, 40), FailedCallBasis::Reported));
    }

    #[test]
    fn an_accepted_call_without_usage_is_charged_its_whole_reservation() {
        let (u, basis) = failed_call_charge(300, 1_000, true, None);
        assert_eq!(u.total(), 1_000);
        assert_eq!(u.input_tokens, 300);
        assert_eq!(basis, FailedCallBasis::WholeReservation);
    }

    #[test]
    fn a_refused_call_is_charged_nothing() {
        let (u, basis) = failed_call_charge(300, 1_000, false, None);
        assert_eq!((u.total(), basis), (0, FailedCallBasis::Refused));
    }

    #[test]
    fn the_first_estimate_is_the_models_own() {
        let c = PromptCalibration::default();
        let messages = vec![ChatMessage::text(Role::User, "x".repeat(300))];
        assert_eq!(
            c.estimate(&messages, &[], estimate_prompt_tokens),
            estimate_prompt_tokens(&messages, &[])
        );
    }

    #[test]
    fn after_a_report_only_the_appended_messages_are_estimated() {
        let mut c = PromptCalibration::default();
        let mut messages = vec![ChatMessage::text(Role::User, "x".repeat(3_000))];
        c.observe(1, usage(5_000, 50));
        messages.push(ChatMessage::text(Role::Assistant, "ok"));
        messages.push(ChatMessage::text(Role::User, "y".repeat(30)));
        let appended = estimate_prompt_tokens(&messages[2..], &[]);
        assert_eq!(
            c.estimate(&messages, &[], estimate_prompt_tokens),
            5_050 + appended + APPENDED_MESSAGE_SLACK
        );
    }

    #[test]
    fn a_conversation_shorter_than_the_anchor_is_estimated_whole() {
        let mut c = PromptCalibration::default();
        c.observe(10, usage(5_000, 50));
        let messages = vec![ChatMessage::text(Role::User, "short")];
        assert_eq!(
            c.estimate(&messages, &[], estimate_prompt_tokens),
            estimate_prompt_tokens(&messages, &[])
        );
    }

    proptest! {
        /// However a provider's count of each turn's additions differs from the estimate
        /// (here: it counts up to twice as many tokens), the calibrated estimate's error is
        /// bounded by the last turn's additions, never by the conversation's length.
        #[test]
        fn calibrated_error_never_accumulates(
            turns in proptest::collection::vec((1usize..2_000, 1u64..500), 1..300),
            ratio_pct in 100u64..200,
        ) {
            let mut c = PromptCalibration::default();
            let mut messages = vec![ChatMessage::text(Role::System, "system")];
            let mut truth = 10u64; // the provider's count of the conversation so far
            for (bytes, output) in turns {
                let added = ChatMessage::text(Role::User, "z".repeat(bytes));
                let added_truth = (bytes as u64).div_ceil(3) * ratio_pct / 100 + 8;
                messages.push(added);
                truth += added_truth;
                let estimated = c.estimate(&messages, &[], estimate_prompt_tokens);
                // An under-estimate is at most this turn's additions, whatever came before.
                prop_assert!(
                    truth.saturating_sub(estimated) <= added_truth,
                    "estimated {estimated}, provider counted {truth}"
                );
                c.observe(messages.len(), usage(truth, output));
                messages.push(ChatMessage::text(Role::Assistant, "a"));
                truth += output;
            }
        }
    }
}
