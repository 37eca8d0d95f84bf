//! `BCAST` mode: the table of prefixes, and sending the changed keys that match them
//! (Redis's `trackingBroadcastInvalidationMessages`): one message per prefix with
//! every changed key under it, in byte order; a `NOLOOP` client's message leaves out
//! the keys it changed itself, and is not sent when nothing is left.
//!
//! Turning tracking on or off also lives here, since `BCAST` prefixes are the only
//! shared state it changes. Lock order: the prefix table, then a client's tracking
//! state — never the other way round.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use conclave_cache::keyspace::Keyspace;

use super::{ClientTracking, Tracker};
use crate::clients::ClientHandle;
use crate::push;

/// What `CLIENT TRACKING ON` asks for (already validated).
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// `REDIRECT` target (0: none).
    pub redirect: u64,
    /// `BCAST`.
    pub bcast: bool,
    /// `OPTIN`.
    pub optin: bool,
    /// `OPTOUT`.
    pub optout: bool,
    /// `NOLOOP`.
    pub noloop: bool,
    /// `PREFIX`es (only with `BCAST`).
    pub prefixes: Vec<Bytes>,
}

impl Tracker {
    /// Turns tracking on for `client` (Redis's `enableTracking`): the mode flags are
    /// replaced, `BCAST` prefixes are added to the ones it has (none given: `""`).
    pub fn enable(&self, keyspace: &Keyspace, client: &ClientHandle, opts: Options) {
        let mut table = self.prefixes.write();
        let mut t = client.tracking.lock();
        if !t.on {
            self.tracking_clients.fetch_add(1, Relaxed);
        }
        let prefixes = std::mem::take(&mut t.prefixes);
        *t = ClientTracking {
            on: true,
            bcast: opts.bcast,
            optin: opts.optin,
            optout: opts.optout,
            noloop: opts.noloop,
            broken_redirect: false,
            redirect: opts.redirect,
            prefixes,
        };
        if opts.bcast {
            let given = if opts.prefixes.is_empty() {
                vec![Bytes::new()]
            } else {
                opts.prefixes
            };
            for p in given {
                table.entry(p.clone()).or_default().insert(client.id);
                t.prefixes.insert(p);
            }
        }
        self.broadcasting.store(!table.is_empty(), Relaxed);
        keyspace.report_every_change(!table.is_empty());
    }

    /// Turns tracking off for `client` (Redis's `disableTracking`); its recorded keys
    /// are forgotten lazily (an invalidation for a client not tracking is dropped).
    pub fn disable(&self, keyspace: &Keyspace, client: &ClientHandle) {
        let mut table = self.prefixes.write();
        let mut t = client.tracking.lock();
        for p in std::mem::take(&mut t.prefixes) {
            if let Some(ids) = table.get_mut(&p) {
                ids.remove(&client.id);
                if ids.is_empty() {
                    table.remove(&p);
                }
            }
        }
        if t.on {
            self.tracking_clients.fetch_sub(1, Relaxed);
            let redirect = t.redirect;
            *t = ClientTracking {
                redirect,
                ..ClientTracking::default()
            };
        }
        self.broadcasting.store(!table.is_empty(), Relaxed);
        keyspace.report_every_change(!table.is_empty());
    }

    /// Sends the changed `keys` (each with the client whose command changed it, if
    /// any) to the `BCAST` clients of every prefix they match.
    pub(super) fn broadcast(&self, keys: &BTreeMap<Bytes, Option<u64>>) {
        let table = self.prefixes.read();
        for (prefix, ids) in table.iter() {
            let matching: Vec<(&Bytes, Option<u64>)> = keys
                .range::<[u8], _>((Bound::Included(&prefix[..]), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, w)| (k, *w))
                .collect();
            if matching.is_empty() {
                continue;
            }
            let all = push::keys_body(matching.iter().map(|(k, _)| &k[..]));
            for &id in ids {
                let Some(client) = self.clients.get(id) else {
                    continue;
                };
                let noloop = client.tracking.lock().noloop;
                if noloop && matching.iter().any(|(_, w)| *w == Some(id)) {
                    let own: Vec<&[u8]> = matching
                        .iter()
                        .filter(|(_, w)| *w != Some(id))
                        .map(|(k, _)| &k[..])
                        .collect();
                    if !own.is_empty() {
                        self.deliver(&client, &push::keys_body(own.into_iter()));
                    }
                } else {
                    self.deliver(&client, &all);
                }
            }
        }
    }
}

/// Redis's check of new prefixes against each other and the client's: two prefixes
/// overlap when one starts the other. The error is Redis's text.
pub fn check_collisions(existing: &ClientTracking, new: &[Bytes]) -> Result<(), String> {
    let overlap = |a: &[u8], b: &[u8]| {
        let n = a.len().min(b.len());
        a[..n] == b[..n]
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (i, p) in new.iter().enumerate() {
        if let Some(old) = existing.prefixes.iter().find(|old| overlap(old, p)) {
            return Err(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                text(p),
                text(old)
            ));
        }
        if let Some(other) = new[i + 1..].iter().find(|o| overlap(p, o)) {
            return Err(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                text(p),
                text(other)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_collisions_as_redis_words_them() {
        let none = ClientTracking::default();
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let e = check_collisions(&none, &[b("FOOBAR"), b("FOO")]).unwrap_err();
        assert!(
            e.starts_with("ERR Prefix 'FOOBAR' overlaps with another provided prefix 'FOO'"),
            "{e}"
        );
        let mut has = ClientTracking::default();
        has.prefixes.insert(b("FOO"));
        has.prefixes.insert(b("BAR"));
        let e = check_collisions(&has, &[b("BARB")]).unwrap_err();
        assert!(
            e.starts_with("ERR Prefix 'BARB' overlaps with an existing prefix 'BAR'"),
            "{e}"
        );
        assert!(check_collisions(&has, &[b("BAZ"), b("QUX")]).is_ok());
    }
}
