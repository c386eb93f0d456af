//! Choosing each agent's model: which provider, which model name, and building the
//! [`HttpModel`] for it. Everything that can be wrong (an unknown provider, a missing key,
//! no model named) is an error here, before any agent starts.
//!
//! Precedence, first found wins:
//! - provider: `--provider`, the agent definition's `provider`, the config file's
//!   `provider`;
//! - model: `--model`, the definition's `model`, the provider's `model` in the config file,
//!   the file's `model`;
//! - a provider's fields: its `[providers.<name>]` table (with `-c` overrides), then the
//!   preset's environment variable (`OPENAI_BASE_URL`, ...), then the preset.
//!
//! Providers are built once and shared by name (one HTTP client, one rate gate per
//! provider), models once per provider and name.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use codex_actors::Model;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};

use super::config::{Config, ProviderConfig, FILE_NAME};
use super::gate::{GateLimits, RateGate};
use super::http::{HttpSettings, Target};
use super::http_model::{HttpModel, HttpProvider};
use super::presets::{self, PRESETS};
use super::protocol::WireApi;

/// The version of the Anthropic API we speak.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Looks up an environment variable (the process environment, or a map in tests).
pub type Env = dyn Fn(&str) -> Option<String> + Send + Sync;

/// See the module docs.
pub struct Selector {
    config: Config,
    cli_provider: Option<String>,
    cli_model: Option<String>,
    env: Box<Env>,
    providers: HashMap<String, Arc<HttpProvider>>,
    models: HashMap<(String, String), Arc<dyn Model>>,
}

impl Selector {
    /// A selector over `config` and the `--provider` / `--model` flags, reading the
    /// process environment.
    pub fn new(config: Config, cli_provider: Option<String>, cli_model: Option<String>) -> Self {
        Self::with_env(
            config,
            cli_provider,
            cli_model,
            Box::new(|v| std::env::var(v).ok()),
        )
    }

    /// The same, with another environment.
    pub fn with_env(
        config: Config,
        cli_provider: Option<String>,
        cli_model: Option<String>,
        env: Box<Env>,
    ) -> Self {
        Self {
            config,
            cli_provider,
            cli_model,
            env,
            providers: HashMap::new(),
            models: HashMap::new(),
        }
    }

    /// The model for `agent`, whose definition names `provider` and `model` (or not).
    pub async fn model_for(
        &mut self,
        agent: &str,
        provider: Option<&str>,
        model: Option<&str>,
    ) -> Result<Arc<dyn Model>> {
        let name = self
            .cli_provider
            .as_deref()
            .or(provider)
            .or(self.config.provider.as_deref())
            .map(str::to_owned);
        let Some(name) = name else {
            bail!(
                "no model to run `{agent}` with: pass --provider NAME --model MODEL (presets: {}), \
                 set `provider` and `model` in $CODEX_HOME/{FILE_NAME}, or play a script with \
                 --replay FILE (see demo/replay.yaml)",
                preset_names()
            );
        };
        let entry = self
            .config
            .providers
            .get(&name)
            .cloned()
            .unwrap_or_default();
        let model = self
            .cli_model
            .as_deref()
            .or(model)
            .or(entry.model.as_deref())
            .or(self.config.model.as_deref())
            .map(str::to_owned);
        let Some(model) = model else {
            bail!(
                "no model named for `{agent}` on provider `{name}`: pass --model NAME, or set \
                 `model` in the agent definition or in $CODEX_HOME/{FILE_NAME}"
            );
        };
        let key = (name.clone(), model.clone());
        if let Some(m) = self.models.get(&key) {
            return Ok(Arc::clone(m));
        }
        let provider = self.provider(&name, &entry).await?;
        let built: Arc<dyn Model> = Arc::new(HttpModel::new(provider, model));
        self.models.insert(key, Arc::clone(&built));
        Ok(built)
    }

    async fn provider(&mut self, name: &str, entry: &ProviderConfig) -> Result<Arc<HttpProvider>> {
        if let Some(p) = self.providers.get(name) {
            return Ok(Arc::clone(p));
        }
        let built = Arc::new(build_provider(name, entry, &*self.env, self.known(name)).await?);
        self.providers.insert(name.to_owned(), Arc::clone(&built));
        Ok(built)
    }

    fn known(&self, name: &str) -> Result<()> {
        if presets::preset(name).is_some() || self.config.providers.contains_key(name) {
            return Ok(());
        }
        let configured: Vec<&str> = self.config.providers.keys().map(String::as_str).collect();
        bail!(
            "unknown provider `{name}`: the presets are {}{}; define others under \
             [providers.<name>] in $CODEX_HOME/{FILE_NAME}",
            preset_names(),
            if configured.is_empty() {
                String::new()
            } else {
                format!(", and the config file defines {}", configured.join(", "))
            }
        )
    }
}

fn preset_names() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

async fn build_provider(
    name: &str,
    entry: &ProviderConfig,
    env: &Env,
    known: Result<()>,
) -> Result<HttpProvider> {
    known?;
    let preset = presets::preset(name);
    let wire = entry
        .wire_api
        .or(preset.map(|p| p.wire))
        .unwrap_or(WireApi::Chat);
    let base_url = match (&entry.base_url, preset) {
        (Some(url), _) => url.clone(),
        (None, Some(p)) => p.base_url(env),
        (None, None) => bail!(
            "provider `{name}` in $CODEX_HOME/{FILE_NAME} has no base_url; add one, for \
             example base_url = \"http://127.0.0.1:8080/v1\""
        ),
    };
    check_url(name, &base_url)?;
    let key_env = entry
        .api_key_env
        .clone()
        .or(preset.and_then(|p| p.key_env.map(str::to_owned)));
    let key = match &key_env {
        Some(var) => Some(env(var).filter(|k| !k.trim().is_empty()).with_context(|| {
            format!(
                "provider `{name}` needs an API key: set the environment variable {var} \
                 (or point `api_key_env` of [providers.{name}] in $CODEX_HOME/{FILE_NAME} at another)"
            )
        })?),
        None => None,
    };
    let headers = headers(name, wire, key.as_deref(), &entry.headers)?;
    let settings = settings(entry);
    let gate = RateGate::spawn(GateLimits {
        max_concurrency: entry.max_concurrency,
        requests_per_minute: entry.requests_per_minute,
    })
    .await?;
    let target = Target {
        provider: name.to_owned(),
        url: wire.url(&base_url),
        headers,
        key,
        key_env,
    };
    let mut provider = HttpProvider::new(wire, target, settings, Some(gate))?;
    provider.context_window = entry.context_window;
    Ok(provider)
}

fn check_url(name: &str, base_url: &str) -> Result<()> {
    let url = url::Url::parse(base_url)
        .with_context(|| format!("provider `{name}`: base_url `{base_url}` is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("provider `{name}`: base_url `{base_url}` must start with http:// or https://");
    }
    Ok(())
}

fn settings(entry: &ProviderConfig) -> HttpSettings {
    let mut s = HttpSettings::default();
    if let Some(n) = entry.max_retries {
        s.max_retries = n;
    }
    if let Some(secs) = entry.request_timeout_secs {
        s.request_timeout = Duration::from_secs(secs.max(1));
    }
    if let Some(secs) = entry.stream_idle_timeout_secs {
        s.idle_timeout = Duration::from_secs(secs.max(1));
    }
    if let Some(secs) = entry.first_byte_timeout_secs {
        s.first_byte_timeout = Duration::from_secs(secs.max(1));
    }
    s
}

/// Every header of a provider's requests; the key's header is marked sensitive (never
/// printed by `Debug`).
pub fn headers(
    name: &str,
    wire: WireApi,
    key: Option<&str>,
    extra: &std::collections::BTreeMap<String, String>,
) -> Result<HeaderMap> {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    if wire == WireApi::Anthropic {
        h.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
    }
    if let Some(key) = key {
        let (header, value) = match wire {
            WireApi::Anthropic => (HeaderName::from_static("x-api-key"), key.to_owned()),
            _ => (AUTHORIZATION, format!("Bearer {key}")),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            anyhow::anyhow!(
                "provider `{name}`: the API key contains characters not allowed in a header"
            )
        })?;
        value.set_sensitive(true);
        h.insert(header, value);
    }
    for (k, v) in extra {
        let header = HeaderName::from_bytes(k.as_bytes())
            .with_context(|| format!("provider `{name}`: `{k}` is not a valid header name"))?;
        let value = HeaderValue::from_str(v).with_context(|| {
            format!("provider `{name}`: the value of header `{k}` is not valid")
        })?;
        h.insert(header, value);
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(vars: &'static [(&'static str, &'static str)]) -> Box<Env> {
        Box::new(move |v| {
            vars.iter()
                .find(|(k, _)| *k == v)
                .map(|(_, x)| x.to_string())
        })
    }

    #[tokio::test]
    async fn a_missing_key_names_the_variable_to_set() {
        let mut s = Selector::with_env(
            Config::default(),
            Some("openai".into()),
            Some("gpt-4.1".into()),
            env_with(&[]),
        );
        let e = s.model_for("a", None, None).await.err().unwrap();
        assert!(e.to_string().contains("OPENAI_API_KEY"), "{e}");
    }

    #[tokio::test]
    async fn nothing_chosen_and_unknown_providers_are_explained() {
        let mut s = Selector::with_env(Config::default(), None, None, env_with(&[]));
        let e = s.model_for("a", None, None).await.err().unwrap();
        assert!(e.to_string().contains("--provider"), "{e}");
        let e = s
            .model_for("a", Some("nope"), Some("m"))
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("unknown provider `nope`"), "{e}");
        let e = s.model_for("a", Some("ollama"), None).await.err().unwrap();
        assert!(e.to_string().contains("--model"), "{e}");
    }

    #[tokio::test]
    async fn keyless_presets_and_definition_choices_build_shared_models() {
        let mut s = Selector::with_env(Config::default(), None, None, env_with(&[]));
        let a = s
            .model_for("a", Some("ollama"), Some("qwen"))
            .await
            .unwrap();
        let b = s
            .model_for("b", Some("ollama"), Some("qwen"))
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.name(), "qwen");
    }

    #[test]
    fn the_key_header_is_sensitive_and_per_protocol() {
        let h = headers("a", WireApi::Anthropic, Some("k-123"), &Default::default()).unwrap();
        assert!(h["x-api-key"].is_sensitive());
        assert_eq!(h["anthropic-version"], ANTHROPIC_VERSION);
        assert!(!format!("{h:?}").contains("k-123"));
        let h = headers("o", WireApi::Chat, Some("k-123"), &Default::default()).unwrap();
        assert!(h[AUTHORIZATION].is_sensitive());
    }
}
