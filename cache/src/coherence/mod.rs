//! Cache coherence across the cluster: directory-based MESI with leases (contract 2.1).
//!
//! (Protocol overview: see below; the details of each side are in `requester.rs` and
//! `home.rs`.)

mod event;
mod home;
mod message;
mod node;
mod requester;
mod types;

#[cfg(test)]
mod check;
#[cfg(test)]
mod tests;

pub use event::{Action, Event, Reply};
pub use home::DirView;
pub use message::{Envelope, Msg, RevokeTo, Want};
pub use node::Node;
#[cfg(test)]
pub(crate) use types::Bug;
pub use types::{ClientId, Config, Epoch, Held, NodeId, Ring, Stamp, Stats, Time};
