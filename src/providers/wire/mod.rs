//! The JSON shapes of the three wire protocols, as serde types and nothing else: what we
//! send and what we read. Behaviour (mapping our messages, folding a stream) lives in the
//! protocol modules one level up.
//!
//! Inbound types are lenient on purpose, because real servers differ: unknown fields are
//! ignored, every field that some server leaves out has a default, and `finish_reason` /
//! usage may be missing or `null`. Outbound types skip what is empty, since some
//! OpenAI-compatible servers reject `"tools": []`.

pub mod anthropic;
pub mod chat;
pub mod responses;
