//! The ACL check of every request, where Redis's `processCommand` does it (after the
//! `NOAUTH` gate), of each queued command again when `EXEC` runs it (`execCommand`),
//! and of each command a script calls (`scriptVerifyACL`); refusals go to `ACL LOG`.
//!
//! The hot path is [`SessionUser::fast`](super::SessionUser::fast): an unrestricted user
//! (the default user) whose snapshot is current costs one atomic load.

use bytes::Bytes;
use conclave_protocol::Frame;

use super::catalog::catalog;
use super::check::{self, Denied};
use super::log::{Context, Reason};
use crate::command_table::Entry;
use crate::connection::Session;
use crate::node::Node;

/// Rereads the connection's user after a change of the users; `false` when it was
/// deleted (the connection is being closed).
fn refresh(node: &Node, session: &mut Session) -> bool {
    if session.acl.refresh(&node.acl) {
        return true;
    }
    session.handle.kill();
    session.close = true;
    false
}

/// Checks a request against the connection's user; `Some(reply)` refuses it (and
/// logs it). Called only when the fast path did not pass.
pub fn check_request(
    node: &Node,
    session: &mut Session,
    entry: &Entry,
    args: &[Bytes],
    context: Context,
) -> Result<(), Denied> {
    if !refresh(node, session) {
        return Err(Denied::Command);
    }
    if session.acl.unrestricted {
        return Ok(());
    }
    let id = catalog().id_of(entry, args.get(1).map(|b| &b[..]));
    let result = check::check(&session.acl.user, entry, id, args);
    if let Err(denied) = result {
        let (reason, object) = match denied {
            Denied::Command => (Reason::Command, catalog().cmds[id].fullname.clone()),
            Denied::Key(i) => (Reason::Key, lossy(args.get(i))),
            Denied::Channel(i) => (Reason::Channel, lossy(args.get(i))),
        };
        node.acl.log.add(
            reason,
            context,
            object,
            session.acl.user.name.clone(),
            session.handle.list_line(),
        );
    }
    result
}

fn lossy(b: Option<&Bytes>) -> String {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// The dispatch gate: `Some(-NOPERM ...)` when the connection's user may not run the
/// request.
#[inline]
pub fn dispatch(
    node: &Node,
    session: &mut Session,
    entry: &Entry,
    args: &[Bytes],
) -> Option<Frame> {
    if session.acl.fast(&node.acl) {
        return None;
    }
    let context = if session.tx.is_some() {
        Context::Multi
    } else {
        Context::Toplevel
    };
    match check_request(node, session, entry, args, context) {
        Ok(()) => None,
        Err(denied) => {
            let id = catalog().id_of(entry, args.get(1).map(|b| &b[..]));
            Some(Frame::error(denied.reply(&catalog().cmds[id].fullname)))
        }
    }
}

/// `EXEC`'s check of a queued command: `Some(-NOPERM ...)` with Redis's text for rules
/// changed since it was queued.
pub fn exec(node: &Node, session: &mut Session, entry: &Entry, args: &[Bytes]) -> Option<Frame> {
    if session.acl.fast(&node.acl) {
        return None;
    }
    let reason = match check_request(node, session, entry, args, Context::Multi) {
        Ok(()) => return None,
        Err(Denied::Command) => "no permission to execute the command or subcommand",
        Err(Denied::Key(_)) => "no permission to touch the specified keys",
        Err(Denied::Channel(_)) => "no permission to access one of the channels used as arguments",
    };
    Some(Frame::error(format!("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}")))
}

/// A script's check of a command it calls: `Err` is Redis's message.
pub fn script(
    node: &Node,
    session: &mut Session,
    entry: &Entry,
    args: &[Bytes],
) -> Result<(), &'static str> {
    if session.acl.fast(&node.acl) {
        return Ok(());
    }
    check_request(node, session, entry, args, Context::Lua).map_err(|d| match d {
        Denied::Command => "The user executing the script can't run this command or subcommand",
        Denied::Key(_) => "The user executing the script can't access at least one of the keys mentioned in the command arguments",
        Denied::Channel(_) => "The user executing the script can't publish to the channel mentioned in the command",
    })
}
