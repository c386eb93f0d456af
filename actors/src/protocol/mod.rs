//! The protocol: what the engine's actors say to each other. It imports only the
//! vocabulary (data and pure logic), never an actor, so an actor can talk to another
//! without knowing it.
//!
//! - [`run`]: the run supervisor's mailbox ([`RunMsg`]);
//! - [`agent`]: an agent attempt's mailbox and how an attempt ends ([`AgentOutcome`]);
//! - [`budget`], [`audit`], [`policy`]: the service actors' mailboxes, with named replies;
//! - [`port`]: narrow handles over the supervisor's mailbox: an attempt's
//!   [`SupervisorPort`] (done, artifact, checkpoint), the BudgetActor's [`JournalPort`],
//!   and the [`DelegatePort`] behind the `delegate` tool's [`crate::delegate::Delegate`];
//! - [`services`]: the client agents use to reach the services by registry name, with
//!   timeouts and retries, or through a [`ServiceLink`] from another process;
//! - [`remote`]: what an attempt running on a worker and its run say to each other.
//!
//! Messages are plain data. The requests an agent attempt makes of the services (reserve,
//! commit, record, decide) and their replies are serde-serializable, so they can cross a
//! process boundary later; reply ports and actor references are the local transport.

pub mod agent;
pub mod audit;
pub mod budget;
pub mod policy;
pub mod port;
pub mod remote;
pub mod run;
pub mod services;

pub use agent::{AgentMsg, AgentOutcome};
pub use audit::AuditMsg;
pub use budget::{BudgetMsg, Carved, Closed, EndedAttempts};
pub use policy::PolicyMsg;
pub use port::{AttemptLink, DelegatePort, JournalPort, SupervisorPort};
pub use remote::{
    AttemptAnswer, AttemptOrder, AttemptSays, Inbound, Placed, RemoteHost, ServiceReply,
    ServiceRequest,
};
pub use run::{ReadyChild, RunMsg};
pub use services::{ServiceError, ServiceLink, Services};

/// Replies on `port`, ignoring a caller that stopped waiting (it will retry).
pub fn reply<T: Send + 'static>(port: ractor::RpcReplyPort<T>, value: T) {
    let _ = port.send(value);
}
