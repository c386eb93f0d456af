//! [`HttpModel`]: the engine's [`Model`] over one of the three wire protocols.
//!
//! One [`HttpProvider`] per configured provider holds what every call shares (the HTTP
//! client, the URL, headers with the key, timeouts, the rate gate); an [`HttpModel`] is a
//! provider plus a model name, so agents on different models of one provider share its
//! connections and its gate.
//!
//! A call is a small state machine driven by the stream the engine polls: post (with
//! retries, `http.rs`), then read events (`sse.rs`) and feed them to the protocol's
//! [`Decoder`] until its end event. Nothing runs outside that stream: dropping it drops the
//! response, which closes the connection and cancels the request, and releases the gate's
//! permit.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use codex_actors::model::{
    ChatMessage, Model, ModelError, ModelEvent, ModelRequest, StopReason, ToolSpec, Usage,
};
use futures::stream::{self, BoxStream, StreamExt};
use reqwest::Client;

use super::gate::{Permit, RateGate};
use super::http::{self, HttpSettings, Target};
use super::protocol::{BodyOptions, Decoder, WireApi};
use super::sse::Events;
use super::tokens::Tokenizer;

/// A configured provider: everything its calls share.
#[derive(Debug)]
pub struct HttpProvider {
    /// The protocol it speaks.
    pub wire: WireApi,
    /// Where and how to post.
    pub target: Target,
    /// Timeouts and retries.
    pub settings: HttpSettings,
    /// Body choices that depend on the server.
    pub options: BodyOptions,
    /// The shared limits of its agents, if any.
    pub gate: Option<RateGate>,
    /// Its models' context window, when configured (`context_window`).
    pub context_window: Option<u64>,
    client: Client,
}

impl HttpProvider {
    /// A provider posting to `target` in `wire`'s protocol.
    pub fn new(
        wire: WireApi,
        target: Target,
        settings: HttpSettings,
        gate: Option<RateGate>,
    ) -> anyhow::Result<Self> {
        let options = BodyOptions {
            max_completion_tokens: wire == WireApi::Chat
                && target.url.starts_with("https://api.openai.com/"),
        };
        Ok(Self {
            client: http::client(&settings)?,
            wire,
            target,
            settings,
            options,
            gate,
            context_window: None,
        })
    }
}

/// A provider and a model name: see the module docs.
#[derive(Debug, Clone)]
pub struct HttpModel {
    provider: Arc<HttpProvider>,
    model: String,
    tokenizer: Option<Tokenizer>,
}

impl HttpModel {
    /// `model` on `provider`.
    pub fn new(provider: Arc<HttpProvider>, model: impl Into<String>) -> Self {
        let model = model.into();
        let tokenizer = Tokenizer::for_model(&model);
        if let Some(t) = tokenizer {
            t.warm();
        }
        Self {
            tokenizer,
            provider,
            model,
        }
    }
}

impl Model for HttpModel {
    fn name(&self) -> String {
        self.model.clone()
    }

    fn stream(&self, request: ModelRequest) -> BoxStream<'static, Result<ModelEvent, ModelError>> {
        let model = request.model.clone().unwrap_or_else(|| self.model.clone());
        let p = &self.provider;
        let body = Bytes::from(p.wire.body(&model, &request, p.options));
        let call = Call {
            provider: Arc::clone(p),
            model,
            body,
            cap: request.max_output_tokens,
        };
        stream::unfold(Phase::Start(call), Phase::advance).boxed()
    }

    fn estimate_prompt_tokens(&self, messages: &[ChatMessage], tools: &[ToolSpec]) -> u64 {
        match &self.tokenizer {
            Some(t) => t.estimate(messages, tools),
            None => codex_actors::model::estimate_prompt_tokens(messages, tools),
        }
    }

    fn context_window(&self) -> Option<u64> {
        self.provider
            .context_window
            .or_else(|| super::presets::known_context_window(&self.model))
    }
}

/// A call not yet posted.
struct Call {
    provider: Arc<HttpProvider>,
    model: String,
    body: Bytes,
    /// The output cap sent.
    cap: u64,
}

/// A call whose response is being read.
struct Reading {
    events: Events,
    decoder: Box<dyn Decoder>,
    queue: VecDeque<ModelEvent>,
    done: bool,
    /// The error that ends the call, once the events before it are handed on.
    failed: Option<ModelError>,
    cap: u64,
    /// The last usage the server reported.
    usage: Option<Usage>,
    _permit: Option<Permit>,
}

/// Where a call is.
enum Phase {
    Start(Call),
    Reading(Box<Reading>),
    Over,
}

impl Phase {
    /// The next item of the call's stream, and where the call is then.
    async fn advance(self) -> Option<(Result<ModelEvent, ModelError>, Phase)> {
        let mut reading = match self {
            Phase::Start(call) => match call.open().await {
                Ok(r) => Box::new(r),
                Err(e) => return Some((Err(e), Phase::Over)),
            },
            Phase::Reading(r) => r,
            Phase::Over => return None,
        };
        loop {
            if let Some(event) = reading.queue.pop_front() {
                return Some((Ok(event), Phase::Reading(reading)));
            }
            if let Some(e) = reading.failed.take() {
                return Some((Err(e), Phase::Over));
            }
            if reading.done {
                return None;
            }
            reading.read().await;
        }
    }
}

impl Call {
    async fn open(self) -> Result<Reading, ModelError> {
        let p = &self.provider;
        let (response, permit) = http::post(
            &p.client,
            &p.target,
            &self.model,
            self.body,
            &p.settings,
            p.gate.as_ref(),
        )
        .await?;
        Ok(Reading {
            events: Events::new(response, p.settings.idle_timeout, p.target.clone()),
            decoder: p.wire.decoder(),
            // From here on the provider may bill for the call (see ModelEvent::Accepted).
            queue: VecDeque::from([ModelEvent::Accepted]),
            done: false,
            failed: None,
            cap: self.cap,
            usage: None,
            _permit: permit,
        })
    }
}

impl Reading {
    /// Reads one event and queues what it yields. A failure queues the usage the server
    /// reported before it (so it can be charged), then the error.
    async fn read(&mut self) {
        let step = match self.events.next().await {
            Ok(Some(event)) => self.decoder.event(&event.event, &event.data),
            Ok(None) => self.decoder.close(),
            Err(e) => Err(e),
        };
        match step {
            Ok(step) => {
                let mut events = step.events;
                for e in &events {
                    if let ModelEvent::Usage(u) = e {
                        self.usage = Some(*u);
                    }
                }
                if step.done {
                    capped_stop(&mut events, self.usage, self.cap);
                }
                self.queue.extend(events);
                self.done |= step.done;
            }
            Err(e) => {
                self.queue
                    .extend(self.decoder.usage().map(ModelEvent::Usage));
                self.failed = Some(e);
            }
        }
    }
}

/// A response whose output filled the cap was cut by it, whatever the server says: some
/// (llama.cpp's Responses) report `completed` for an answer stopped at the cap. Makes the
/// final events' stop reason [`StopReason::MaxOutputTokens`] then.
pub fn capped_stop(events: &mut Vec<ModelEvent>, usage: Option<Usage>, cap: u64) {
    let filled = usage.is_some_and(|u| cap > 0 && u.output_tokens >= cap);
    if !filled {
        return;
    }
    events.retain(|e| !matches!(e, ModelEvent::Stop(_)));
    events.push(ModelEvent::Stop(StopReason::MaxOutputTokens));
}
