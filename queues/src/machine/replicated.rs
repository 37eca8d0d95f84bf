//! [`QueueState`] as a Raft group's state machine: raft-store's [`StateMachine`]
//! applies each [`Stamped`] operation of a log entry with the leader's clock.

use conclave_raft_store::{Stamped, StateMachine};

use super::{QueueApplied, QueueOp, QueueState};

impl StateMachine for QueueState {
    type Op = QueueOp;
    type Applied = QueueApplied;

    fn apply(&mut self, _index: u64, req: &Stamped<QueueOp>) -> QueueApplied {
        self.apply_op(req.now_ms, &req.op)
    }
}
