//! Sending one model request: the POST, its retries, and what a failed status means.
//!
//! Retries (exponential backoff with jitter, `backon`) cover what may pass: transport
//! errors, 408, 429 and 5xx. They happen only here, before the response body is read: once
//! the first byte of a stream has been consumed, events may already have reached the
//! engine, and a retry would repeat them, so a failure mid-stream is the agent's
//! (`ModelError::Transient`: its supervisor restarts the attempt). A `Retry-After` header
//! (seconds or an HTTP date) replaces the computed delay, capped at [`MAX_RETRY_AFTER`];
//! a 429 also slows every agent of the provider through its [`RateGate`].
//!
//! What cannot pass is [`ModelError::Fatal`] at once, with what to do: 401/403 (the key),
//! 404 (the model or the base URL), 400/413/422 (the request, with a context-length
//! overflow named as such). Exhausted retries are `Transient`.
//!
//! Keys never appear in errors: they travel only in headers marked sensitive, and any
//! error body a server echoes is scrubbed of the key before it becomes a message.

use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use codex_actors::model::ModelError;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Client, Response, StatusCode};

use super::gate::{Permit, RateGate};
use super::protocol::excerpt;

/// The longest `Retry-After` honoured; a server asking for more gets this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Timeouts and retries of one provider.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Retries after the first try (so at most `max_retries + 1` requests).
    pub max_retries: usize,
    /// The longest a whole request may take, streaming included.
    pub request_timeout: Duration,
    /// The longest a stream may go without an event.
    pub idle_timeout: Duration,
    /// The first retry's delay (doubling, with jitter, up to `max_backoff`).
    pub min_backoff: Duration,
    /// The longest delay between retries (unless `Retry-After` asks for more).
    pub max_backoff: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_retries: 4,
            request_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(120),
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
        }
    }
}

/// Who is being called, for requests and for messages.
#[derive(Debug, Clone)]
pub struct Target {
    /// The provider's name (`openai`, `ollama`, or a config entry).
    pub provider: String,
    /// The URL posted to.
    pub url: String,
    /// Every header: authentication (marked sensitive), protocol headers, extra headers.
    pub headers: HeaderMap,
    /// The key, only to scrub it from error bodies.
    pub key: Option<String>,
    /// The environment variable the key came from, to name in messages.
    pub key_env: Option<String>,
}

/// Builds the HTTP client of a provider: rustls, the total request timeout, and a connect
/// timeout.
pub fn client(settings: &HttpSettings) -> anyhow::Result<Client> {
    Ok(Client::builder()
        .timeout(settings.request_timeout)
        .connect_timeout(Duration::from_secs(15).min(settings.request_timeout))
        .build()?)
}

/// Why one try failed.
#[derive(Debug)]
struct Failure {
    error: ModelError,
    retry: bool,
    retry_after: Option<Duration>,
}

/// Posts `body` to `target`, retrying as the module docs say, and returns the response
/// once its status is a success (its body not read yet), with the gate's permit, to hold
/// until the stream ends. Every try waits for the gate first.
pub async fn post(
    client: &Client,
    target: &Target,
    model: &str,
    body: Bytes,
    settings: &HttpSettings,
    gate: Option<&RateGate>,
) -> Result<(Response, Option<Permit>), ModelError> {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(settings.min_backoff)
        .with_max_delay(settings.max_backoff)
        .with_max_times(settings.max_retries)
        .with_jitter();
    let once = || async {
        let permit = match gate {
            Some(g) => Some(g.acquire().await),
            None => None,
        };
        let failure = match send_once(client, target, model, body.clone()).await {
            Ok(r) => return Ok((r, permit)),
            Err(f) => f,
        };
        if let (Some(gate), Some(pause)) = (gate, failure.retry_after) {
            gate.backoff(pause);
        }
        Err(failure)
    };
    once.retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|f: &Failure| f.retry)
        .adjust(|f: &Failure, delay| delay.map(|d| f.retry_after.unwrap_or(d)))
        .notify(|f: &Failure, delay| {
            tracing::warn!(provider = %target.provider, "retrying in {delay:?}: {}", f.error)
        })
        .await
        .map_err(|f| match f.error {
            ModelError::Transient(m) if f.retry => ModelError::Transient(format!(
                "{m} (gave up after {} retries)",
                settings.max_retries
            )),
            e => e,
        })
}

async fn send_once(
    client: &Client,
    target: &Target,
    model: &str,
    body: Bytes,
) -> Result<Response, Failure> {
    let sent = client
        .post(&target.url)
        .headers(target.headers.clone())
        .body(body)
        .send()
        .await;
    let response = sent.map_err(|e| Failure {
        error: ModelError::Transient(transport_message(target, &e)),
        retry: true,
        retry_after: None,
    })?;
    if response.status().is_success() {
        return Ok(response);
    }
    Err(status_failure(target, model, response).await)
}

/// A transport error as a message: what failed, never the key (it is not in the URL).
pub fn transport_message(target: &Target, e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    format!(
        "request to {} ({}) {what}: {}",
        target.provider,
        target.url,
        if detail.is_empty() {
            e.to_string()
        } else {
            detail
        }
    )
}

async fn status_failure(target: &Target, model: &str, response: Response) -> Failure {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = response.text().await.unwrap_or_default();
    let detail = scrub(&server_message(&body), target.key.as_deref());
    let retry = status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error();
    let error = if retry {
        ModelError::Transient(format!(
            "{} answered HTTP {status}: {detail}",
            target.provider
        ))
    } else {
        ModelError::Fatal(fatal_message(target, model, status, &detail))
    };
    Failure {
        error,
        retry,
        retry_after: if status == StatusCode::TOO_MANY_REQUESTS {
            retry_after.or(Some(Duration::from_secs(1)))
        } else {
            retry_after
        },
    }
}

fn fatal_message(target: &Target, model: &str, status: StatusCode, detail: &str) -> String {
    let p = &target.provider;
    match status.as_u16() {
        401 | 403 => {
            let fix = match &target.key_env {
                Some(var) => format!("check the key in {var}"),
                None => "this provider is configured without a key; set `api_key_env` for it in $CODEX_HOME/codex-actors.toml".to_owned(),
            };
            format!("{p} refused the credentials (HTTP {status}: {detail}): {fix}")
        }
        404 => format!(
            "{p} answered HTTP 404 for {} ({detail}): the model `{model}` may not exist there \
             (see --model), or the base URL is wrong",
            target.url
        ),
        _ if is_context_overflow(detail) => format!(
            "the prompt is longer than the context window of `{model}` on {p} (HTTP {status}: \
             {detail}): use a model with a larger context, or give the agent a narrower goal"
        ),
        _ => format!(
            "{p} rejected the request as invalid (HTTP {status}: {detail}); retrying cannot help"
        ),
    }
}

fn is_context_overflow(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    [
        "context_length_exceeded",
        "context length",
        "context window",
        "prompt is too long",
        "too many tokens",
    ]
    .iter()
    .any(|m| d.contains(m))
}

/// The server's own message (`error.message` or `message` in JSON), else the body.
fn server_message(body: &str) -> String {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let message = json.as_ref().and_then(|j| {
        j.pointer("/error/message")
            .or_else(|| j.pointer("/message"))
            .or_else(|| j.pointer("/error"))
            .and_then(|m| m.as_str())
            .map(str::to_owned)
    });
    match message {
        Some(m) => excerpt(&m),
        None if body.trim().is_empty() => "no details".to_owned(),
        None => excerpt(body.trim()),
    }
}

/// `text` with every occurrence of `key` masked.
pub fn scrub(text: &str, key: Option<&str>) -> String {
    match key {
        Some(k) if k.len() >= 4 => text.replace(k, "[redacted]"),
        _ => text.to_owned(),
    }
}

/// The `Retry-After` header: delta-seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match value.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        Ok(_) => return None,
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or_default(),
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        assert_eq!(retry_after(&headers("2")), Some(Duration::from_secs(2)));
        assert_eq!(
            retry_after(&headers("0.5")),
            Some(Duration::from_millis(500))
        );
        assert_eq!(retry_after(&headers("86400")), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn server_messages_are_read_from_json_and_scrubbed() {
        let body = r#"{"error":{"message":"Incorrect API key provided: sk-secret-123"}}"#;
        let m = scrub(&server_message(body), Some("sk-secret-123"));
        assert_eq!(m, "Incorrect API key provided: [redacted]");
        assert_eq!(server_message(""), "no details");
        assert_eq!(server_message("plain"), "plain");
    }

    #[test]
    fn context_overflow_is_recognised() {
        assert!(is_context_overflow(
            "This model's maximum context length is 8192 tokens"
        ));
        assert!(is_context_overflow("prompt is too long: 210000 tokens"));
        assert!(!is_context_overflow("unknown parameter"));
    }
}
