//! Derived lookup structures over the lock table, never serialized (rebuilt from the
//! resources after a snapshot is loaded): deadlines in time order for expiry, and which
//! resources each owner holds or waits on, for deadlock detection.

use std::collections::{BTreeMap, BTreeSet};

use super::resource::Resource;
use super::Name;

/// Secondary indexes kept in step with the resources.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Index {
    /// `(earliest deadline, resource)` for every resource with a deadline.
    deadlines: BTreeSet<(u64, Name)>,
    /// Each resource's entry in `deadlines`.
    resource_deadline: BTreeMap<Name, u64>,
    /// Owner → resources where it has a queued request.
    waits: BTreeMap<Name, BTreeSet<Name>>,
    /// Owner → resources it holds.
    holds: BTreeMap<Name, BTreeSet<Name>>,
}

fn add(map: &mut BTreeMap<Name, BTreeSet<Name>>, owner: &[u8], resource: &[u8]) {
    match map.get_mut(owner) {
        Some(set) => {
            if !set.contains(resource) {
                set.insert(resource.to_vec());
            }
        }
        None => {
            map.insert(owner.to_vec(), BTreeSet::from([resource.to_vec()]));
        }
    }
}

fn remove(map: &mut BTreeMap<Name, BTreeSet<Name>>, owner: &[u8], resource: &[u8]) {
    if let Some(set) = map.get_mut(owner) {
        set.remove(resource);
        if set.is_empty() {
            map.remove(owner);
        }
    }
}

impl Index {
    /// Builds the indexes of `resources` from scratch.
    pub fn build(resources: &BTreeMap<Name, Resource>) -> Self {
        let mut index = Index::default();
        for (name, res) in resources {
            index.set_deadline(name, res.min_deadline());
            for owner in res.holders.keys() {
                index.add_hold(owner, name);
            }
            for waiter in &res.queue {
                index.add_wait(&waiter.owner, name);
            }
        }
        index
    }

    /// Records `resource`'s earliest deadline (`None`: it has none, or is gone).
    pub fn set_deadline(&mut self, resource: &[u8], deadline: Option<u64>) {
        let old = self.resource_deadline.get(resource).copied();
        if old == deadline {
            return;
        }
        if let Some(old) = old {
            self.deadlines.remove(&(old, resource.to_vec()));
            self.resource_deadline.remove(resource);
        }
        if let Some(new) = deadline {
            self.deadlines.insert((new, resource.to_vec()));
            self.resource_deadline.insert(resource.to_vec(), new);
        }
    }

    /// The earliest deadline of all.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.first().map(|(deadline, _)| *deadline)
    }

    /// Resources with a deadline `<= now_ms`, in name order.
    pub fn due(&self, now_ms: u64) -> Vec<Name> {
        let names: BTreeSet<&Name> = self
            .deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= now_ms)
            .map(|(_, name)| name)
            .collect();
        names.into_iter().cloned().collect()
    }

    /// Notes that `owner` queued a request on `resource`.
    pub fn add_wait(&mut self, owner: &[u8], resource: &[u8]) {
        add(&mut self.waits, owner, resource);
    }

    /// Notes that `owner` no longer waits on `resource`.
    pub fn remove_wait(&mut self, owner: &[u8], resource: &[u8]) {
        remove(&mut self.waits, owner, resource);
    }

    /// Notes that `owner` holds `resource`.
    pub fn add_hold(&mut self, owner: &[u8], resource: &[u8]) {
        add(&mut self.holds, owner, resource);
    }

    /// Notes that `owner` no longer holds `resource`.
    pub fn remove_hold(&mut self, owner: &[u8], resource: &[u8]) {
        remove(&mut self.holds, owner, resource);
    }

    /// Resources where `owner` waits.
    pub fn waits_of(&self, owner: &[u8]) -> impl Iterator<Item = &Name> {
        self.waits.get(owner).into_iter().flatten()
    }

    /// Whether `owner` has a queued request on `resource`.
    pub fn is_waiting(&self, owner: &[u8], resource: &[u8]) -> bool {
        self.waits
            .get(owner)
            .is_some_and(|set| set.contains(resource))
    }

    /// Resources `owner` holds.
    pub fn holds_of(&self, owner: &[u8]) -> impl Iterator<Item = &Name> {
        self.holds.get(owner).into_iter().flatten()
    }
}
