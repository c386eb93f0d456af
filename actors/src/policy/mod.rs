//! Permissions: the pure matcher ([`rules`]), the paths no agent may write or (by default)
//! read ([`protected`]), and the actor that serves decisions.

pub mod actor;
pub mod protected;
pub mod rules;

pub use rules::{Decision, PolicyRules, RuleError};

/// Each agent's rules, by agent name: the PolicyActor's state. The supervisor keeps a copy
/// to restart the actor from.
pub type PolicyTable = std::collections::BTreeMap<String, PolicyRules>;
