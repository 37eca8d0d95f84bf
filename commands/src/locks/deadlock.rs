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

/// The owners a request of `owner` in `mode`, standing at position `pos` of `res`'s
/// queue, waits for, each with whether it is a holder (holders first, then the queue
/// in order; an owner appears once).
pub(crate) fn blockers<'a>(
    res: &'a Resource,
    owner: &[u8],
    mode: LockMode,
    pos: usize,
) -> Vec<(&'a [u8], bool)> {
    let mut out = Vec::new();
    for (holder, hold) in &res.holders {
        if holder.as_slice() != owner && conflicts(mode, hold.mode) {
            out.push((holder.as_slice(), true));
        }
    }
    for waiter in res.queue.iter().take(pos) {
        let already = res
            .holders
            .get(&waiter.owner)
            .is_some_and(|hold| conflicts(mode, hold.mode));
        if waiter.owner.as_slice() != owner && !already && conflicts(mode, waiter.mode) {
            out.push((waiter.owner.as_slice(), false));
        }
    }
    out
}

/// The search tree: node -> (the node it was reached from, that edge's resource,
/// whether the edge is "held by").
type Parents<'a> = BTreeMap<&'a [u8], (&'a [u8], &'a [u8], bool)>;

/// Looks for a cycle that `start` would close by waiting on `resource` for `first`
/// (its new edges), assuming the existing graph is acyclic. Breadth-first, so the
/// cycle returned is a shortest one; the search order is deterministic.
pub(crate) fn find_cycle<'a>(
    resources: &'a BTreeMap<Name, Resource>,
    index: &'a Index,
    start: &'a [u8],
    resource: &'a [u8],
    first: Vec<(&'a [u8], bool)>,
) -> Option<Vec<Edge>> {
    // Nobody can wait for an owner that neither holds nor waits anywhere.
    if !index.is_involved(start) {
        return None;
    }
    let mut parent: Parents = BTreeMap::new();
    let mut frontier = VecDeque::new();
    for (to, held) in first {
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
            let Some(pos) = res.queue_position(node) else {
                continue;
            };
            let Some(mode) = res.queue.get(pos).map(|w| w.mode) else {
                continue;
            };
            for (to, held) in blockers(res, node, mode, pos) {
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
