//! The PolicyActor: decides every access of every tool call.
//!
//! It holds each agent's compiled [`PolicyRules`], given at start, and answers
//! [`PolicyMsg::Decide`]. It keeps no other state, so a restart from the same arguments
//! loses nothing; while it is down, agents wait (see [`crate::services`]) and run no tool.
//! An agent it has no rules for is denied everything.

use std::collections::BTreeMap;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::rules::{Decision, PolicyRules};
use crate::services::reply;
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
}

/// Each agent's rules, by agent name. Shared read-only with the supervisor, which restarts
/// the actor from the same table.
pub type PolicyTable = Arc<BTreeMap<String, PolicyRules>>;

/// See the module docs.
pub struct PolicyActor;

impl Actor for PolicyActor {
    type Msg = PolicyMsg;
    type State = PolicyTable;
    type Arguments = PolicyTable;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        table: PolicyTable,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(table)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        table: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let PolicyMsg::Decide {
            agent,
            access,
            reply: port,
        } = msg;
        let decision = match table.get(&agent) {
            Some(rules) => rules.decide(&access),
            None => Decision {
                allowed: false,
                rule: format!("no policy for agent `{agent}`"),
            },
        };
        reply(port, decision);
        Ok(())
    }
}
