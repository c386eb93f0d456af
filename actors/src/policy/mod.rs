//! Permissions: the pure matcher ([`rules`]), the paths no agent may write or (by default)
//! read ([`protected`]), and the actor that serves decisions.

pub mod actor;
pub mod protected;
pub mod rules;

pub use rules::{Decision, PolicyRules, RuleError};
