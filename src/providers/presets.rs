//! The built-in providers, usable by name without any configuration.
//!
//! | name | protocol | base URL (environment override) | key |
//! |---|---|---|---|
//! | `openai` | Responses | `https://api.openai.com/v1` (`OPENAI_BASE_URL`) | `OPENAI_API_KEY` |
//! | `openai-chat` | Chat Completions | same | `OPENAI_API_KEY` |
//! | `anthropic` | Anthropic Messages | `https://api.anthropic.com` (`ANTHROPIC_BASE_URL`) | `ANTHROPIC_API_KEY` |
//! | `ollama` | Chat Completions | `http://localhost:11434/v1` (`OLLAMA_HOST`) | none |
//! | `lmstudio` | Chat Completions | `http://localhost:1234/v1` | none |
//! | `openrouter` | Chat Completions | `https://openrouter.ai/api/v1` | `OPENROUTER_API_KEY` |
//!
//! A `[providers.<name>]` table in the config file overrides a preset field by field.

use super::protocol::WireApi;

/// One built-in provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// Its name.
    pub name: &'static str,
    /// The protocol.
    pub wire: WireApi,
    /// The default base URL.
    pub base_url: &'static str,
    /// The variable that overrides the base URL.
    pub base_url_env: Option<&'static str>,
    /// The variable holding the key; `None`: no key.
    pub key_env: Option<&'static str>,
}

/// Every preset.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "openai",
        wire: WireApi::Responses,
        base_url: "https://api.openai.com/v1",
        base_url_env: Some("OPENAI_BASE_URL"),
        key_env: Some("OPENAI_API_KEY"),
    },
    Preset {
        name: "openai-chat",
        wire: WireApi::Chat,
        base_url: "https://api.openai.com/v1",
        base_url_env: Some("OPENAI_BASE_URL"),
        key_env: Some("OPENAI_API_KEY"),
    },
    Preset {
        name: "anthropic",
        wire: WireApi::Anthropic,
        base_url: "https://api.anthropic.com",
        base_url_env: Some("ANTHROPIC_BASE_URL"),
        key_env: Some("ANTHROPIC_API_KEY"),
    },
    Preset {
        name: "ollama",
        wire: WireApi::Chat,
        base_url: "http://localhost:11434/v1",
        base_url_env: Some("OLLAMA_HOST"),
        key_env: None,
    },
    Preset {
        name: "lmstudio",
        wire: WireApi::Chat,
        base_url: "http://localhost:1234/v1",
        base_url_env: None,
        key_env: None,
    },
    Preset {
        name: "openrouter",
        wire: WireApi::Chat,
        base_url: "https://openrouter.ai/api/v1",
        base_url_env: None,
        key_env: Some("OPENROUTER_API_KEY"),
    },
];

/// Context windows (prompt and output tokens) of well-known model families, by the
/// longest matching prefix of the model's name; a provider's `context_window` setting wins.
/// Models served locally (Ollama, llama.cpp, LM Studio) depend on how they were started:
/// set `context_window` for them.
const CONTEXT_WINDOWS: &[(&str, u64)] = &[
    ("gpt-4.1", 1_047_576),
    ("gpt-4o", 128_000),
    ("gpt-5", 400_000),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4-mini", 200_000),
    ("claude-", 200_000),
    ("anthropic/claude-", 200_000),
    ("openai/gpt-4.1", 1_047_576),
    ("openai/gpt-4o", 128_000),
];

/// The context window of `model`, if it is a well-known one.
pub fn known_context_window(model: &str) -> Option<u64> {
    CONTEXT_WINDOWS
        .iter()
        .filter(|(prefix, _)| model.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|&(_, window)| window)
}

#[cfg(test)]
mod window_tests {
    use super::known_context_window;

    #[test]
    fn well_known_models_have_their_window_and_others_none() {
        assert_eq!(known_context_window("gpt-4.1-mini"), Some(1_047_576));
        assert_eq!(known_context_window("gpt-4o"), Some(128_000));
        assert_eq!(known_context_window("claude-sonnet-4-5"), Some(200_000));
        assert_eq!(known_context_window("qwen2.5-coder:7b"), None);
    }
}

/// The preset called `name`.
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

impl Preset {
    /// The base URL, from its environment variable when set (`env` looks variables up).
    pub fn base_url(&self, env: &dyn Fn(&str) -> Option<String>) -> String {
        let from_env = self
            .base_url_env
            .and_then(env)
            .filter(|v| !v.trim().is_empty());
        match from_env {
            Some(v) if self.name == "ollama" => ollama_url(&v),
            Some(v) => v,
            None => self.base_url.to_owned(),
        }
    }
}

/// `OLLAMA_HOST` is `host:port` or a URL without the API path: made into `.../v1`.
fn ollama_url(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    let url = if host.contains("://") {
        host.to_owned()
    } else {
        format!("http://{host}")
    };
    if url.ends_with("/v1") {
        url
    } else {
        format!("{url}/v1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_come_from_the_environment_when_set() {
        let none = |_: &str| None;
        let openai = preset("openai").unwrap();
        assert_eq!(openai.base_url(&none), "https://api.openai.com/v1");
        let set = |v: &str| (v == "OPENAI_BASE_URL").then(|| "http://127.0.0.1:9/v1".to_owned());
        assert_eq!(openai.base_url(&set), "http://127.0.0.1:9/v1");
        let ollama = preset("ollama").unwrap();
        let host = |_: &str| Some("0.0.0.0:11434".to_owned());
        assert_eq!(ollama.base_url(&host), "http://0.0.0.0:11434/v1");
        let url = |_: &str| Some("https://box:1/".to_owned());
        assert_eq!(ollama.base_url(&url), "https://box:1/v1");
    }
}
