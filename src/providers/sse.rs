//! Reading a response body as server-sent events, with the stream idle timeout.
//!
//! `eventsource-stream` does the SSE framing (lines, `event:` / `data:` fields, multi-line
//! data, comments such as `: keep-alive`). This module turns its errors into
//! [`ModelError`]s and bounds the wait for each event: a server that stops sending without
//! closing the connection fails the call after the idle timeout instead of holding the
//! agent forever. The total request timeout is the HTTP client's.

use std::time::Duration;

use codex_actors::model::ModelError;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::stream::{BoxStream, StreamExt};
use reqwest::Response;

use super::http::{transport_message, Target};

/// A response's events.
pub struct Events {
    inner: BoxStream<'static, Result<Event, EventStreamError<reqwest::Error>>>,
    idle: Duration,
    target: Target,
}

impl Events {
    /// Reads `response`'s body as events; waiting more than `idle` for one is an error.
    pub fn new(response: Response, idle: Duration, target: Target) -> Self {
        Self {
            inner: response.bytes_stream().eventsource().boxed(),
            idle,
            target,
        }
    }

    /// The next event; `Ok(None)` when the connection closed.
    pub async fn next(&mut self) -> Result<Option<Event>, ModelError> {
        let next = tokio::time::timeout(self.idle, self.inner.next()).await;
        match next {
            Err(_) => Err(ModelError::Transient(format!(
                "{} ({}) sent nothing for {} s (stream idle timeout); \
                 raise `stream_idle_timeout_secs` for slow models",
                self.target.provider,
                self.target.url,
                self.idle.as_secs_f64()
            ))),
            Ok(None) => Ok(None),
            Ok(Some(Ok(event))) => Ok(Some(event)),
            Ok(Some(Err(EventStreamError::Transport(e)))) => Err(ModelError::Transient(format!(
                "the stream broke off: {}",
                transport_message(&self.target, &e)
            ))),
            Ok(Some(Err(e))) => Err(ModelError::Transient(format!(
                "malformed event stream from {}: {e}",
                self.target.provider
            ))),
        }
    }
}
