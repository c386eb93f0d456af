//! Permissions: the pure matcher ([`rules`]) and the actor that serves decisions.

pub mod actor;
pub mod rules;

pub use rules::{Decision, PolicyRules, RuleError};
