//! The PolicyActor's mailbox.

use ractor::RpcReplyPort;

use crate::policy::{Decision, PolicyRules};
use crate::tool::Access;

/// Messages of the PolicyActor.
#[derive(Debug)]
pub enum PolicyMsg {
    /// Allow or deny one access of one agent.
    Decide {
        /// The agent.
        agent: String,
        /// What it wants to do.
        access: Access,
        /// Where the decision goes.
        reply: RpcReplyPort<Decision>,
    },
    /// Add a delegated agent's rules (sent by the supervisor before the agent starts).
    Register(String, Box<PolicyRules>),
}
