//! The PolicyActor: decides every access of every tool call.
//!
//! It holds each agent's compiled [`super::PolicyRules`], given at start, and answers
//! [`PolicyMsg::Decide`]. Delegated agents' rules arrive while the run goes on
//! ([`PolicyMsg::Register`]); the supervisor keeps the same table, so a restart from it
//! loses nothing. While the actor is down, agents wait (see [`crate::services`]) and run no
//! tool. An agent it has no rules for is denied everything.

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::rules::Decision;
pub use super::PolicyTable;
pub use crate::protocol::policy::PolicyMsg;
use crate::protocol::reply;

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
        let (agent, access, port) = match msg {
            PolicyMsg::Decide {
                agent,
                access,
                reply,
            } => (agent, access, reply),
            PolicyMsg::Register(agent, rules) => {
                table.insert(agent, *rules);
                return Ok(());
            }
        };
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
