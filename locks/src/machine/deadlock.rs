//! Deadlock detection over the wait-for graph between owners.
//!
//! A queued request of owner `W` on resource `R` waits for every current holder of `R`
//! whose hold conflicts with the requested mode, and for every request queued ahead of
//! it on `R` that conflicts with it (FIFO: it cannot be served before them). Shared
//! requests do not wait for shared holds or shared requests ahead of them: those are
//! granted together, and whatever really blocks them (an exclusive request or hold) is
//! reached through its own edges. The graph is kept acyclic: a wait request that
//! would close a cycle is refused, and grants only turn "queued behind" edges into the
//! equivalent "held by" edges.

use std::collections::{BTreeMap, VecDeque};

use super::index::Index;
use super::resource::{conflicts, Resource};
use super::{LockMode, Name};

/// One wait-for edge: `from` waits on `resource` for `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Edge {
    pub from: Name,
    pub resource: Name,
    pub to: Name,
    /// `to` holds `resource` (otherwise it is queued ahead of `from`).
    pub held: bool,
}

/// What one search has already collected from one resource, so that no queue is
/// scanned twice: every node reached through a resource's holders or queue prefix is
/// visited once, whatever number of its waiters are expanded.
#[derive(Default)]
struct Scan<'a> {
    /// Queue position of each waiter (built on first use).
    positions: Option<BTreeMap<&'a [u8], usize>>,
    /// Every waiter before this position has been reached.
    all_upto: usize,
    /// Every exclusive-mode waiter before this position has been reached.
    exclusive_upto: usize,
    /// Every holder has been reached.
    holders_all: bool,
    /// Every exclusive holder has been reached.
    holders_exclusive: bool,
}

impl<'a> Scan<'a> {
    /// Where `owner` waits in `res`.
    fn position(&mut self, res: &'a Resource, owner: &[u8]) -> Option<usize> {
        let positions = self.positions.get_or_insert_with(|| {
            res.queue
                .iter()
                .enumerate()
                .map(|(pos, w)| (w.owner.as_slice(), pos))
                .collect()
        });
        positions.get(owner).copied()
    }

    /// The owners a request of `owner` in `mode` at queue position `pos` of `res`
    /// waits for (holders first, then the queue in order) that this scan has not
    /// produced before. Earlier products were all visited by the search (the one
    /// holder left out, the expanded node itself, too), so skipping them changes
    /// nothing but the cost.
    fn targets(
        &mut self,
        res: &'a Resource,
        owner: &[u8],
        mode: LockMode,
        pos: usize,
        out: &mut Vec<(&'a [u8], bool)>,
    ) {
        out.clear();
        let exclusive = mode == LockMode::Exclusive;
        if !(self.holders_all || (!exclusive && self.holders_exclusive)) {
            for (holder, hold) in &res.holders {
                if holder.as_slice() != owner && conflicts(mode, hold.mode) {
                    out.push((holder.as_slice(), true));
                }
            }
            if exclusive {
                self.holders_all = true;
            } else {
                self.holders_exclusive = true;
            }
        }
        let from = if exclusive {
            self.all_upto
        } else {
            self.all_upto.max(self.exclusive_upto)
        };
        let ahead = res.queue.iter().take(pos).skip(from);
        for waiter in ahead {
            if waiter.owner.as_slice() != owner && conflicts(mode, waiter.mode) {
                out.push((waiter.owner.as_slice(), false));
            }
        }
        if exclusive {
            self.all_upto = self.all_upto.max(pos);
        } else {
            self.exclusive_upto = self.exclusive_upto.max(pos);
        }
    }
}

/// Cheap filter: whether anyone could wait for `owner` at all. Only requests queued
/// on a resource it holds, or queued behind it, can; the common case of a waiter
/// that holds nothing anyone waits for skips the search entirely.
fn may_be_waited_for(resources: &BTreeMap<Name, Resource>, index: &Index, owner: &[u8]) -> bool {
    let held = index
        .holds_of(owner)
        .any(|name| resources.get(name).is_some_and(|res| !res.queue.is_empty()));
    held || index.waits_of(owner).any(|name| {
        resources
            .get(name)
            .and_then(|res| res.queue.back())
            .is_some_and(|last| last.owner != owner)
    })
}

/// The search tree: node -> (the node it was reached from, that edge's resource,
/// whether the edge is "held by").
type Parents<'a> = BTreeMap<&'a [u8], (&'a [u8], &'a [u8], bool)>;

/// Looks for a cycle that `start` would close by queueing on `resource` in `mode` at
/// position `pos`, assuming the existing graph is acyclic (so any new cycle runs
/// through the new request). Breadth-first: the cycle returned is a shortest one,
/// the search order is deterministic, and the cost is linear in the holders and
/// queues it reaches.
pub(crate) fn find_cycle<'a>(
    resources: &'a BTreeMap<Name, Resource>,
    index: &'a Index,
    start: &'a [u8],
    resource: &'a [u8],
    mode: LockMode,
    pos: usize,
) -> Option<Vec<Edge>> {
    if !may_be_waited_for(resources, index, start) {
        return None;
    }
    let res = resources.get(resource)?;
    let mut scans: BTreeMap<&[u8], Scan> = BTreeMap::new();
    let mut parent: Parents = BTreeMap::new();
    let mut frontier = VecDeque::new();
    let mut targets = Vec::new();
    // A scan of its own: `start` excludes itself from the holders it waits for, and
    // other nodes reaching it through those holders is exactly a cycle, so what it
    // collected must not be marked as reached.
    Scan::default().targets(res, start, mode, pos, &mut targets);
    for &(to, held) in &targets {
        if to != start && !parent.contains_key(to) {
            parent.insert(to, (start, resource, held));
            frontier.push_back(to);
        }
    }
    while let Some(node) = frontier.pop_front() {
        for name in index.waits_of(node) {
            let Some(res) = resources.get(name) else {
                continue;
            };
            let scan = scans.entry(name.as_slice()).or_default();
            let Some(pos) = scan.position(res, node) else {
                continue;
            };
            let Some(mode) = res.queue.get(pos).map(|w| w.mode) else {
                continue;
            };
            scan.targets(res, node, mode, pos, &mut targets);
            for &(to, held) in &targets {
                if to == start {
                    return Some(path(&parent, start, node, name, held));
                }
                if !parent.contains_key(to) {
                    parent.insert(to, (node, name.as_slice(), held));
                    frontier.push_back(to);
                }
            }
        }
    }
    None
}

/// Rebuilds the cycle `start -> ... -> last -> start` from the search tree.
fn path(parent: &Parents, start: &[u8], last: &[u8], resource: &[u8], held: bool) -> Vec<Edge> {
    let mut edges = vec![Edge {
        from: last.to_vec(),
        resource: resource.to_vec(),
        to: start.to_vec(),
        held,
    }];
    let mut cur = last;
    while cur != start {
        let Some(&(from, resource, held)) = parent.get(cur) else {
            break;
        };
        edges.push(Edge {
            from: from.to_vec(),
            resource: resource.to_vec(),
            to: cur.to_vec(),
            held,
        });
        cur = from;
    }
    edges.reverse();
    edges
}

/// `owner 'a' waits for 'r1' held by 'b' -> owner 'b' waits for 'r2' queued behind 'a'`.
pub(crate) fn describe(edges: &[Edge]) -> String {
    let parts: Vec<String> = edges
        .iter()
        .map(|e| {
            format!(
                "owner '{}' waits for '{}' {} '{}'",
                String::from_utf8_lossy(&e.from),
                String::from_utf8_lossy(&e.resource),
                if e.held { "held by" } else { "queued behind" },
                String::from_utf8_lossy(&e.to),
            )
        })
        .collect();
    parts.join(" -> ")
}
