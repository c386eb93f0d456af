//! Sending one model request: the POST, its retries, and what a failed status means.
//!
//! Retries (exponential backoff with jitter, `backon`, seeded per call from the process's
//! random source so agents and processes never retry in lockstep) cover what may pass:
//! transport errors, 408, 409, 429 and 5xx but 501 and 505. A connection refused (nothing
//! listens at the address) gets at most [`CONNECT_TRIES`] quick tries, then fails the
//! agent at once, naming the address. A server that accepts the request but does not
//! start answering within the first-byte timeout fails the attempt (not retried here: the
//! supervisor decides). They happen only here, before the response body is read: once
//! the first byte of a stream has been consumed, events may already have reached the
//! engine, and a retry would repeat them, so a failure mid-stream is the agent's
//! (`ModelError::Transient`: its supervisor restarts the attempt). A `Retry-After` header
//! (seconds or an HTTP date) replaces the computed delay, capped at [`MAX_RETRY_AFTER`];
//! a 429 also slows every agent of the provider through its [`RateGate`].
//!
//! What cannot pass is [`ModelError::Fatal`] at once, with what to do: 401/403 (the key),
//! 404/405/501 (the model or the base URL), other 4xx (the request, with a context-window
//! overflow named as such: [`CONTEXT_OVERFLOW`] lists what servers say). An HTML error page
//! is summarised (status line and title), never printed whole. Exhausted retries are
//! `Transient`.
//!
//! Keys never appear in errors: they travel only in headers marked sensitive, and any
//! error body a server echoes is scrubbed of the key before it becomes a message.

use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Tries of a request whose connection is refused, before the agent fails.
pub const CONNECT_TRIES: usize = 3;

/// The longest pause between tries of a refused connection.
const CONNECT_BACKOFF: Duration = Duration::from_millis(250);

/// Timeouts and retries of one provider.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Retries after the first try (so at most `max_retries + 1` requests).
    pub max_retries: usize,
    /// The longest a whole request may take, streaming included.
    pub request_timeout: Duration,
    /// The longest a stream may go without an event.
    pub idle_timeout: Duration,
    /// The longest the server may take to answer a request (its status line), distinct
    /// from the idle timeout of a stream under way.
    pub first_byte_timeout: Duration,
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
            first_byte_timeout: Duration::from_secs(60),
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
    /// The connection was refused or could not be made.
    connect: bool,
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
    // With backon's `std` feature, each builder seeds its jitter from the process's random
    // source: agents and processes do not retry in lockstep.
    let backoff = ExponentialBuilder::default()
        .with_min_delay(settings.min_backoff)
        .with_max_delay(settings.max_backoff)
        .with_max_times(settings.max_retries)
        .with_jitter();
    // Refused connections so far (a counter local to this call; atomic only to be Send).
    let refused = AtomicUsize::new(0);
    let once = || async {
        let permit = match gate {
            Some(g) => Some(g.acquire().await),
            None => None,
        };
        let sent = send_once(
            client,
            target,
            model,
            body.clone(),
            settings.first_byte_timeout,
        );
        let failure = match sent.await {
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
        .when(|f: &Failure| {
            if f.connect {
                return refused.fetch_add(1, Ordering::Relaxed) + 1 < CONNECT_TRIES;
            }
            f.retry
        })
        .adjust(|f: &Failure, delay| {
            delay.map(|d| match (f.retry_after, f.connect) {
                (Some(after), _) => after,
                (None, true) => d.min(CONNECT_BACKOFF),
                (None, false) => d,
            })
        })
        .notify(|f: &Failure, delay| {
            tracing::warn!(provider = %target.provider, "retrying in {delay:?}: {}", f.error)
        })
        .await
        .map_err(|f| match f.error {
            ModelError::Transient(m) if f.connect => ModelError::Fatal(format!(
                "{m}; nothing answers at that address after {} tries: is the server running, \
                 and is the base URL right?",
                refused.load(Ordering::Relaxed)
            )),
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
    first_byte: Duration,
) -> Result<Response, Failure> {
    let send = client
        .post(&target.url)
        .headers(target.headers.clone())
        .body(body)
        .send();
    let Ok(sent) = tokio::time::timeout(first_byte, send).await else {
        return Err(Failure {
            error: ModelError::Transient(format!(
                "{} ({}) accepted the request but sent no answer within {} s \
                 (first_byte_timeout_secs; raise it for a slow server): is it overloaded \
                 or hung?",
                target.provider,
                target.url,
                first_byte.as_secs_f64()
            )),
            retry: false,
            retry_after: None,
            connect: false,
        });
    };
    let response = sent.map_err(|e| Failure {
        error: ModelError::Transient(transport_message(target, &e)),
        retry: true,
        retry_after: None,
        connect: e.is_connect(),
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
    let detail = scrub(&server_message(status, &body), target.key.as_deref());
    let retry = is_retried(status);
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
        connect: false,
    }
}

/// Whether a failed status may pass on another try: 408, 409, 429, and server errors but
/// 501 (Not Implemented: the path is wrong) and 505.
pub fn is_retried(status: StatusCode) -> bool {
    match status.as_u16() {
        408 | 409 | 429 => true,
        501 | 505 => false,
        s => (500..600).contains(&s),
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
        404 if mentions_model(detail, model) => format!(
            "{p} answered HTTP 404 for {} ({detail}): the model `{model}` may not exist there \
             (see --model)",
            target.url
        ),
        404 | 405 | 501 => format!(
            "{p} answered HTTP {status} for {} ({detail}): is this the right base URL? \
             (the protocol adds its path to it; the model asked for was `{model}`)",
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

/// Whether a 404's message is about the model rather than the path.
fn mentions_model(detail: &str, model: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("model") || (!model.is_empty() && detail.contains(model))
}

/// What servers say when a prompt does not fit the context window (lowercase), each with
/// the server it is from. Real wordings, tested one by one.
pub const CONTEXT_OVERFLOW: &[(&str, &str)] = &[
    ("openai", "context_length_exceeded"),
    ("openai, vllm", "maximum context length is"),
    ("openai responses", "exceeds the context window"),
    ("anthropic", "prompt is too long"),
    ("anthropic", "exceed context limit"),
    ("llama.cpp", "exceeds the available context size"),
    ("llama.cpp", "exceed_context_size_error"),
    ("ollama", "input length exceeds the context length"),
    ("vllm", "reduce the length of the messages"),
    ("others", "context length exceeded"),
    ("others", "too many tokens"),
];

/// Whether a server's message says the prompt is over the context window.
pub fn is_context_overflow(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    CONTEXT_OVERFLOW.iter().any(|(_, m)| d.contains(m))
}

/// The server's own message (`error.message`, `message`, `detail` in JSON); an HTML page
/// as its status and title; else the body's start.
fn server_message(status: StatusCode, body: &str) -> String {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let message = json.as_ref().and_then(|j| {
        j.pointer("/error/message")
            .or_else(|| j.pointer("/message"))
            .or_else(|| j.pointer("/error"))
            .or_else(|| j.pointer("/detail"))
            .and_then(|m| m.as_str())
            .map(str::to_owned)
    });
    let trimmed = body.trim();
    match message {
        Some(m) => excerpt(&m),
        None if trimmed.is_empty() => "no details".to_owned(),
        None if looks_like_html(trimmed) => html_summary(status, trimmed),
        None => excerpt(trimmed),
    }
}

fn looks_like_html(body: &str) -> bool {
    let start: String = body
        .chars()
        .take(256)
        .collect::<String>()
        .to_ascii_lowercase();
    start.starts_with("<!doctype html")
        || start.starts_with("<html")
        || start.contains("<head")
        || start.contains("<body")
        || start.contains("<title")
}

/// An HTML error page in one line: the status line and the page's title.
fn html_summary(status: StatusCode, body: &str) -> String {
    let lower = body.to_ascii_lowercase();
    let title = lower.find("<title").and_then(|open| {
        let start = open + lower[open..].find('>')? + 1;
        let end = start + lower[start..].find("</title")?;
        let text = body.get(start..end)?;
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        (!text.is_empty()).then_some(text)
    });
    match title {
        Some(t) => format!("an HTML page (HTTP {status}, title \"{}\")", excerpt(&t)),
        None => format!("an HTML page (HTTP {status}), not an API answer"),
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

    const OK: StatusCode = StatusCode::BAD_REQUEST;

    #[test]
    fn server_messages_are_read_from_json_and_scrubbed() {
        let body = r#"{"error":{"message":"Incorrect API key provided: sk-secret-123"}}"#;
        let m = scrub(&server_message(OK, body), Some("sk-secret-123"));
        assert_eq!(m, "Incorrect API key provided: [redacted]");
        assert_eq!(server_message(OK, ""), "no details");
        assert_eq!(server_message(OK, "plain"), "plain");
        assert_eq!(server_message(OK, r#"{"detail":"Not Found"}"#), "Not Found");
    }

    #[test]
    fn an_html_error_page_is_summarised_by_its_status_and_title() {
        // What Python's http.server answers a POST with.
        let page = "<!DOCTYPE HTML>\n<html lang=\"en\">\n    <head>\n        <meta charset=\"utf-8\">\n        <title>Error response</title>\n    </head>\n    <body>\n        <h1>Error response</h1>\n        <p>Error code: 501</p>\n        <p>Message: Unsupported method ('POST').</p>\n    </body>\n</html>\n";
        let m = server_message(StatusCode::NOT_IMPLEMENTED, page);
        assert_eq!(
            m,
            "an HTML page (HTTP 501 Not Implemented, title \"Error response\")"
        );
        let nginx = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
        let m = server_message(StatusCode::NOT_FOUND, nginx);
        assert_eq!(
            m,
            "an HTML page (HTTP 404 Not Found, title \"404 Not Found\")"
        );
        assert!(!m.contains("<"));
    }

    #[test]
    fn only_statuses_that_may_pass_are_retried() {
        for s in [408, 409, 429, 500, 502, 503, 504] {
            assert!(is_retried(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 413, 422, 501, 505] {
            assert!(!is_retried(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    /// What real servers answer for a prompt over the context window, word for word.
    const OVERFLOW_WORDINGS: &[(&str, &str)] = &[
        ("openai chat", "This model's maximum context length is 8192 tokens. However, your messages resulted in 9013 tokens. Please reduce the length of the messages."),
        ("openai responses", "Your input exceeds the context window of this model. Please adjust your input and try again."),
        ("anthropic", "prompt is too long: 215000 tokens > 200000 maximum"),
        ("anthropic", "input length and `max_tokens` exceed context limit: 197202 + 8192 > 200000, decrease input length or `max_tokens` and try again"),
        ("llama.cpp (current)", "request (4476 tokens) exceeds the available context size (4096 tokens), try increasing it"),
        ("llama.cpp (older)", "the request exceeds the available context size, try increasing it"),
        ("vllm", "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion."),
        ("vllm (newer)", "This model's maximum context length is 2048 tokens. However, your request has 3000 input tokens. Please reduce the length of the input messages."),
        ("ollama", "the input length exceeds the context length"),
        ("ollama", "input length exceeds the context length"),
    ];

    #[test]
    fn every_servers_context_overflow_wording_is_recognised() {
        for (server, wording) in OVERFLOW_WORDINGS {
            assert!(is_context_overflow(wording), "{server}: {wording}");
        }
        for other in [
            "unknown parameter: max_completion_tokens",
            "Invalid model name passed in model=no-such-model",
            "No connected db.",
            "model 'x' not found",
        ] {
            assert!(!is_context_overflow(other), "{other}");
        }
    }
}
