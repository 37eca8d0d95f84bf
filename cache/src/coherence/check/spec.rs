//! The reference object the checker compares every history against: a small map of
//! registers (one per key) that may also *forget* a key.
//!
//! `Write` sets one or several keys at once (a single-key `SET`, or `MSET` / `DEL k1 k2`,
//! which must be atomic), `Read` returns one key, `Incr` adds one to a key and returns the
//! result (a read-modify-write such as `INCR`: two on different nodes must not lose one),
//! `Forget` sets a key to nil. A history is
//! correct when some order of its operations that respects real time (an operation that
//! returned before another started comes first) replays on this object with the same
//! results: linearizability (Herlihy and Wing), per key and for multi-key writes alike.
//!
//! `Forget` operations are not issued by clients: the checker invokes one, and never
//! completes it, each time the protocol reports [`Action::Forgot`](super::super::Action)
//! for a key or a key's home crashes. An operation left in flight may take effect at any
//! point after its invocation, or never. A key whose home a committed ring moves is
//! forgotten too (the new home starts without its value): that forget is invoked at the
//! commit and completed when the new home's fence ends, so it takes effect before the
//! new home grants the key. So a read may answer nil once a forget has been
//! invoked — "a cache may forget" — but it may never answer a value older than the last
//! completed write, nor bring back a value after answering nil: "it never lies".

use stateright::semantics::SequentialSpec;

/// A key of the model (an index).
pub(crate) type Key = u8;
/// A value of the model.
pub(crate) type Value = u8;

/// An operation on the registers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    /// Read one key.
    Read(Key),
    /// Set (or, with `None`, delete) one or several keys atomically.
    Write(Vec<(Key, Option<Value>)>),
    /// Add one to a key (nil counts as 0) and return the new value.
    Incr(Key),
    /// The key's value is lost (nil).
    Forget(Key),
}

/// The result of an operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Ret {
    /// What a read returned.
    Value(Option<Value>),
    /// A write or forget took effect.
    Done,
}

/// One register per key, all nil at first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Registers {
    values: Vec<Option<Value>>,
}

impl Registers {
    pub(crate) fn new(keys: usize) -> Self {
        Registers {
            values: vec![None; keys],
        }
    }
}

impl SequentialSpec for Registers {
    type Op = Op;
    type Ret = Ret;

    fn invoke(&mut self, op: &Op) -> Ret {
        match op {
            Op::Read(key) => Ret::Value(self.values[usize::from(*key)]),
            Op::Write(writes) => {
                for (key, value) in writes {
                    self.values[usize::from(*key)] = *value;
                }
                Ret::Done
            }
            Op::Incr(key) => {
                let new = self.values[usize::from(*key)].unwrap_or(0).wrapping_add(1);
                self.values[usize::from(*key)] = Some(new);
                Ret::Value(Some(new))
            }
            Op::Forget(key) => {
                self.values[usize::from(*key)] = None;
                Ret::Done
            }
        }
    }
}
