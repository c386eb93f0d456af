//! Prompt estimates for OpenAI-family models with their real tokenizer (`tiktoken-rs`,
//! whose BPE tables are compiled into the crate: nothing is downloaded).
//!
//! Only with the cargo feature `openai-tokenizer` (off by default): the tables are 5.3 MB
//! of the binary, and they earn little, since the engine calibrates every agent's estimate
//! from the prompt tokens its provider reports (`PromptCalibration`), so only an agent's
//! first call goes by the estimate alone. Without the feature every model gets the
//! engine's default estimate (one token per three bytes: more than OpenAI's tokenizers
//! count for code and English, so the first reservation is larger, never short).
//!
//! The estimate only sizes the budget reservation (the provider's reported usage is what
//! is charged), so it must not fall short: on top of the tokens of every text it adds a
//! per-message and per-tool overhead larger than what the chat format costs (about 4 per
//! message, 3 for the reply's priming), and a 5 % margin. Models of other families keep
//! the engine's default estimate (one token per three bytes), which over-estimates them.
//!
//! Building a BPE table takes a noticeable time (its 200,000 ranks are parsed and its regex
//! compiled: seconds in a debug build), so nothing is built when a model is chosen: the
//! table is built once per process, on a background thread started then ([`Tokenizer::warm`]),
//! and the first estimate waits for it only if it is not ready yet.

use codex_actors::model::{ChatMessage, ToolSpec};
#[cfg(feature = "openai-tokenizer")]
use tiktoken_rs::CoreBPE;

/// Overhead counted per message and per tool.
const PER_ITEM: u64 = 8;

/// The BPE tables the OpenAI models use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    O200k,
    Cl100k,
}

/// A tokenizer for one model's family.
#[derive(Clone, Copy)]
pub struct Tokenizer {
    // Read only by the tables' code.
    #[cfg_attr(not(feature = "openai-tokenizer"), allow(dead_code))]
    family: Family,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokenizer")
    }
}

impl Tokenizer {
    /// The tokenizer of `model` if it is an OpenAI model (`gpt-4o`, `o3`, `openai/gpt-4.1`
    /// on OpenRouter, ...); `None` for other families, and for every model in a build
    /// without the `openai-tokenizer` feature.
    pub fn for_model(model: &str) -> Option<Self> {
        Self::family_of(model).filter(|_| cfg!(feature = "openai-tokenizer"))
    }

    fn family_of(model: &str) -> Option<Self> {
        let name = model
            .rsplit('/')
            .next()
            .unwrap_or(model)
            .to_ascii_lowercase();
        let o200k = [
            "gpt-4o",
            "gpt-4.1",
            "gpt-4.5",
            "gpt-5",
            "o1",
            "o3",
            "o4",
            "chatgpt-4o",
            "gpt-oss",
        ];
        let cl100k = ["gpt-4", "gpt-3.5"];
        let family = if o200k.iter().any(|p| name.starts_with(p)) {
            Family::O200k
        } else if cl100k.iter().any(|p| name.starts_with(p)) {
            Family::Cl100k
        } else {
            return None;
        };
        Some(Self { family })
    }

    /// Starts building the table on a background thread, so that the first estimate finds
    /// it ready (tiktoken-rs builds each table once per process).
    pub fn warm(self) {
        // One thread per table, not per agent: a run of 1,000 agents makes 1,000 models.
        #[cfg(feature = "openai-tokenizer")]
        {
            static STARTED: [std::sync::Once; 2] = [std::sync::Once::new(), std::sync::Once::new()];
            STARTED[self.family as usize].call_once(|| {
                std::thread::spawn(move || {
                    self.bpe();
                });
            });
        }
    }

    #[cfg(feature = "openai-tokenizer")]
    fn bpe(&self) -> &'static CoreBPE {
        match self.family {
            Family::O200k => tiktoken_rs::o200k_base_singleton(),
            Family::Cl100k => tiktoken_rs::cl100k_base_singleton(),
        }
    }

    #[cfg(feature = "openai-tokenizer")]
    fn count(&self, text: &str) -> u64 {
        self.bpe().encode_ordinary(text).len() as u64
    }

    /// Without the tables (no `Tokenizer` is handed out then; see [`Tokenizer::for_model`]):
    /// the engine's default, a token per three bytes.
    #[cfg(not(feature = "openai-tokenizer"))]
    fn count(&self, text: &str) -> u64 {
        (text.len() as u64).div_ceil(3)
    }

    /// A conservative count of what `messages` and `tools` cost as a prompt.
    pub fn estimate(&self, messages: &[ChatMessage], tools: &[ToolSpec]) -> u64 {
        let mut tokens = 0;
        for m in messages {
            tokens += self.count(&m.content);
            for c in &m.tool_calls {
                tokens += self.count(&c.name) + self.count(&c.arguments.to_string());
            }
        }
        for t in tools {
            tokens += self.count(&t.name)
                + self.count(&t.description)
                + self.count(&t.parameters.to_string());
        }
        let overhead = PER_ITEM * (messages.len() + tools.len()) as u64 + 3;
        (tokens + overhead) * 105 / 100 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_models_belong_to_a_family_and_others_do_not() {
        assert!(Tokenizer::family_of("gpt-4o-mini").is_some());
        assert!(Tokenizer::family_of("openai/gpt-4.1").is_some());
        assert!(Tokenizer::family_of("claude-sonnet-4-5").is_none());
    }

    #[cfg(not(feature = "openai-tokenizer"))]
    #[test]
    fn without_the_feature_no_model_gets_a_tokenizer() {
        assert!(Tokenizer::for_model("gpt-4o-mini").is_none());
    }

    #[cfg(feature = "openai-tokenizer")]
    #[test]
    fn openai_models_get_a_tokenizer_and_others_do_not() {
        assert!(Tokenizer::for_model("gpt-4o-mini").is_some());
        assert!(Tokenizer::for_model("openai/gpt-4.1").is_some());
        assert!(Tokenizer::for_model("gpt-3.5-turbo").is_some());
        assert!(Tokenizer::for_model("claude-sonnet-4-5").is_none());
        assert!(Tokenizer::for_model("qwen2.5-coder").is_none());
    }

    #[cfg(feature = "openai-tokenizer")]
    #[test]
    fn the_estimate_covers_the_tokens_and_the_overhead() {
        use codex_actors::model::Role;
        let t = Tokenizer::for_model("gpt-4o").unwrap();
        let messages = vec![ChatMessage::text(
            Role::User,
            "hello world, how are you today?",
        )];
        let exact = t.count("hello world, how are you today?");
        let estimate = t.estimate(&messages, &[]);
        assert!(estimate >= exact + PER_ITEM + 3, "{estimate} vs {exact}");
        // Tighter than the byte-based default on plain English.
        assert!(estimate <= codex_actors::model::estimate_prompt_tokens(&messages, &[]) + 12);
    }
}
