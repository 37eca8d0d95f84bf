//! An ACL user and its selectors, and the rules that change them (`ACL SETUSER`
//! modifiers), as Redis 7.0's `ACLSetUser`/`ACLSetSelector` apply them (src/acl.c):
//! `on`/`off`, `>pass`/`<pass`/`#hash`/`!hash`, `nopass`, `resetpass`, `+cmd`, `-cmd`,
//! `+cmd|sub`, `+cmd|firstarg`, `+@cat`/`-@cat`, `allcommands`/`nocommands`, `~pattern`,
//! `%R~`/`%W~`/`%RW~`, `allkeys`/`resetkeys`, `&chan`/`allchannels`/`resetchannels`,
//! `(selector rules)`, `clearselectors`, `reset`, `sanitize-payload`. Passwords are
//! kept as SHA-256 hex only.
//!
//! Past 500 lines with its tests on purpose: the user and selector modifiers are one
//! grammar (Redis's `ACLSetUser` hands what it does not know to `ACLSetSelector`), kept
//! in one place.

use sha2::{Digest, Sha256};

use super::catalog::{catalog, category_bit, FUTURE_BIT, WORDS};

/// Read permission of a key pattern (`%R~`).
pub const READ: u8 = 1;
/// Write permission of a key pattern (`%W~`).
pub const WRITE: u8 = 2;
/// Both (`~`).
pub const ALL: u8 = READ | WRITE;

/// Why a modifier was refused; `text` is Redis's `ACLSetUserStringError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    /// `ENOENT`.
    Unknown,
    /// `EINVAL`.
    Syntax,
    /// `EEXIST`.
    AfterAllKeys,
    /// `EISDIR`.
    AfterAllChannels,
    /// `ENODEV`.
    NoSuchPassword,
    /// `EBADMSG`.
    BadHash,
    /// `ECHILD`.
    SubcommandArg,
}

impl RuleError {
    /// Redis's text for the error.
    pub fn text(self) -> &'static str {
        match self {
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::AfterAllKeys => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::AfterAllChannels => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::SubcommandArg => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// A key pattern with its permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    /// [`READ`], [`WRITE`] or [`ALL`].
    pub flags: u8,
    /// The glob.
    pub pattern: Vec<u8>,
}

/// What one selector allows: commands, keys, channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The user's first selector (its rules are not parenthesized).
    pub root: bool,
    /// `SELECTOR_FLAG_ALLCOMMANDS`: set by `+@all`, cleared by any removal.
    pub all_commands: bool,
    /// One bit per command id, plus [`FUTURE_BIT`].
    pub bits: [u64; WORDS],
    /// First arguments allowed for an otherwise denied command (`+select|0`).
    pub firstargs: Vec<(usize, Vec<String>)>,
    /// `allkeys`.
    pub all_keys: bool,
    /// Key patterns (when not `allkeys`).
    pub patterns: Vec<KeyPattern>,
    /// `allchannels`.
    pub all_channels: bool,
    /// Channel patterns (when not `allchannels`).
    pub channels: Vec<Vec<u8>>,
}

/// A user: flags, password hashes, selectors (the root first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its name.
    pub name: String,
    /// `on` (else `off`).
    pub enabled: bool,
    /// `nopass`.
    pub nopass: bool,
    /// `sanitize-payload` (`Some(false)`), `skip-sanitize-payload` (`Some(true)`), or
    /// neither (a new user, the default user: Redis 7.0 shows no flag then).
    pub skip_sanitize: Option<bool>,
    /// SHA-256 hex of each password.
    pub passwords: Vec<String>,
    /// The root selector, then the others.
    pub selectors: Vec<Selector>,
}

/// SHA-256 of a password, lower-case hex (Redis's `ACLHashPassword`).
pub fn hash_password(pass: &[u8]) -> String {
    let digest = Sha256::digest(pass);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64
        && h.iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// Whether `s` has a space or a NUL (Redis's `ACLStringHasSpaces`).
pub fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&c| c.is_ascii_whitespace() || c == 0)
}

impl Selector {
    /// An empty selector: no commands, keys or channels.
    pub fn new(root: bool) -> Selector {
        Selector {
            root,
            all_commands: false,
            bits: [0; WORDS],
            firstargs: Vec::new(),
            all_keys: false,
            patterns: Vec::new(),
            all_channels: false,
            channels: Vec::new(),
        }
    }

    /// Whether command `id` is allowed by the bitmap.
    pub fn bit(&self, id: usize) -> bool {
        id < WORDS * 64 && self.bits[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if id >= WORDS * 64 {
            return;
        }
        if on {
            self.bits[id / 64] |= 1 << (id % 64);
        } else {
            self.bits[id / 64] &= !(1 << (id % 64));
            self.all_commands = false;
        }
    }

    /// Whether `+@all` is in force for commands declared later.
    pub fn future(&self) -> bool {
        self.bit(FUTURE_BIT)
    }

    /// Allows or denies a command and its subcommands (Redis's `ACLChangeSelectorPerm`).
    pub fn change(&mut self, id: usize, allow: bool) {
        self.set_bit(id, allow);
        self.firstargs.retain(|(i, _)| *i != id);
        if let Some(c) = catalog().cmds.get(id) {
            for sub in c.subs.clone() {
                self.set_bit(sub, allow);
            }
        }
    }

    /// Allows or denies every command of category bit `cat`.
    pub fn change_category(&mut self, cat: u64, allow: bool) {
        let ids: Vec<usize> = catalog().in_category(cat).collect();
        for id in ids {
            self.change(id, allow);
        }
    }

    /// The first arguments allowed for command `id`.
    pub fn firstargs_of(&self, id: usize) -> &[String] {
        self.firstargs
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, a)| a.as_slice())
            .unwrap_or(&[])
    }

    /// Applies one selector rule (Redis's `ACLSetSelector`).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let lower = op.to_ascii_lowercase();
        match lower.as_slice() {
            b"allkeys" | b"~*" => {
                self.all_keys = true;
                self.patterns.clear();
            }
            b"resetkeys" => {
                self.all_keys = false;
                self.patterns.clear();
            }
            b"allchannels" | b"&*" => {
                self.all_channels = true;
                self.channels.clear();
            }
            b"resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            b"allcommands" | b"+@all" => {
                self.bits = [u64::MAX; WORDS];
                self.all_commands = true;
                self.firstargs.clear();
            }
            b"nocommands" | b"-@all" => {
                self.bits = [0; WORDS];
                self.all_commands = false;
                self.firstargs.clear();
            }
            _ => return self.apply_pattern_or_command(op),
        }
        Ok(())
    }

    fn apply_pattern_or_command(&mut self, op: &[u8]) -> Result<(), RuleError> {
        match op {
            [b'~' | b'%', ..] => self.add_key_pattern(op),
            [b'&', rest @ ..] => {
                if self.all_channels {
                    return Err(RuleError::AfterAllChannels);
                }
                if has_spaces(rest) {
                    return Err(RuleError::Syntax);
                }
                if !self.channels.iter().any(|c| c == rest) {
                    self.channels.push(rest.to_vec());
                }
                self.all_channels = false;
                Ok(())
            }
            [b'+' | b'-', b'@', cat @ ..] => {
                let name = std::str::from_utf8(cat).map_err(|_| RuleError::Unknown)?;
                let bit = category_bit(name).ok_or(RuleError::Unknown)?;
                self.change_category(bit, op[0] == b'+');
                Ok(())
            }
            [b'+', rest @ ..] => self.allow_command(rest),
            [b'-', rest @ ..] => {
                let name = std::str::from_utf8(rest).map_err(|_| RuleError::Unknown)?;
                let id = catalog().lookup(name).ok_or(RuleError::Unknown)?;
                self.change(id, false);
                Ok(())
            }
            _ => Err(RuleError::Syntax),
        }
    }

    fn add_key_pattern(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if self.all_keys {
            return Err(RuleError::AfterAllKeys);
        }
        let (flags, offset) = if op[0] == b'%' {
            let mut flags = 0u8;
            let mut offset = 1;
            loop {
                match op.get(offset).map(u8::to_ascii_uppercase) {
                    Some(b'R') if flags & READ == 0 => flags |= READ,
                    Some(b'W') if flags & WRITE == 0 => flags |= WRITE,
                    Some(b'~') => {
                        offset += 1;
                        break;
                    }
                    _ => return Err(RuleError::Syntax),
                }
                offset += 1;
            }
            (flags, offset)
        } else {
            (ALL, 1)
        };
        let pattern = &op[offset.min(op.len())..];
        if has_spaces(pattern) {
            return Err(RuleError::Syntax);
        }
        match self.patterns.iter_mut().find(|p| p.pattern == pattern) {
            Some(p) => p.flags |= flags,
            None => self.patterns.push(KeyPattern {
                flags,
                pattern: pattern.to_vec(),
            }),
        }
        self.all_keys = false;
        Ok(())
    }

    fn allow_command(&mut self, rest: &[u8]) -> Result<(), RuleError> {
        let name = std::str::from_utf8(rest).map_err(|_| RuleError::Unknown)?;
        let cat = catalog();
        let Some((parent, sub)) = name.rsplit_once('|') else {
            let id = cat.lookup(name).ok_or(RuleError::Unknown)?;
            self.change(id, true);
            return Ok(());
        };
        let id = cat.lookup(parent).ok_or(RuleError::Unknown)?;
        if cat.cmds[id].parent.is_some() {
            return Err(RuleError::SubcommandArg);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if !cat.cmds[id].subs.is_empty() {
            let sub_id = cat.lookup(name).ok_or(RuleError::Unknown)?;
            self.change(sub_id, true);
            return Ok(());
        }
        match self.firstargs.iter_mut().find(|(i, _)| *i == id) {
            Some((_, args)) => {
                if !args.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                    args.push(sub.to_string());
                }
            }
            None => self.firstargs.push((id, vec![sub.to_string()])),
        }
        Ok(())
    }

    /// Whether every command, key and channel is allowed (the dispatch fast path).
    pub fn unrestricted(&self) -> bool {
        self.all_commands && self.all_keys && self.all_channels
    }
}

impl User {
    /// A new user as `ACL SETUSER name` makes it: off, no passwords, nothing allowed.
    pub fn new(name: &str) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            skip_sanitize: None,
            passwords: Vec::new(),
            selectors: vec![Selector::new(true)],
        }
    }

    /// Redis's default user: `on nopass ~* &* +@all`.
    pub fn default_user() -> User {
        let mut u = User::new("default");
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = u.apply(op.as_bytes());
        }
        u
    }

    /// The root selector.
    pub fn root(&self) -> &Selector {
        &self.selectors[0]
    }

    fn root_mut(&mut self) -> &mut Selector {
        &mut self.selectors[0]
    }

    /// Applies one `ACL SETUSER` modifier (Redis's `ACLSetUser`).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        match op.to_ascii_lowercase().as_slice() {
            b"on" => self.enabled = true,
            b"off" => self.enabled = false,
            b"skip-sanitize-payload" => self.skip_sanitize = Some(true),
            b"sanitize-payload" => self.skip_sanitize = Some(false),
            b"nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            b"resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            b"clearselectors" => self.selectors.truncate(1),
            b"reset" => {
                for op in ["resetpass", "resetkeys", "resetchannels", "off"] {
                    self.apply(op.as_bytes())?;
                }
                self.skip_sanitize = Some(false);
                self.selectors.truncate(1);
                self.root_mut().apply(b"-@all")?;
            }
            _ => return self.apply_other(op),
        }
        Ok(())
    }

    fn apply_other(&mut self, op: &[u8]) -> Result<(), RuleError> {
        match op {
            [b'>', pass @ ..] | [b'#', pass @ ..] => {
                let hash = if op[0] == b'>' {
                    hash_password(pass)
                } else if valid_hash(pass) {
                    String::from_utf8_lossy(pass).into_owned()
                } else {
                    return Err(RuleError::BadHash);
                };
                if !self.passwords.contains(&hash) {
                    self.passwords.push(hash);
                }
                self.nopass = false;
                Ok(())
            }
            [b'<', pass @ ..] | [b'!', pass @ ..] => {
                let hash = if op[0] == b'<' {
                    hash_password(pass)
                } else if valid_hash(pass) {
                    String::from_utf8_lossy(pass).into_owned()
                } else {
                    return Err(RuleError::BadHash);
                };
                let before = self.passwords.len();
                self.passwords.retain(|p| *p != hash);
                if self.passwords.len() == before {
                    return Err(RuleError::NoSuchPassword);
                }
                Ok(())
            }
            [b'(', inner @ .., b')'] => {
                let mut s = Selector::new(false);
                let text = String::from_utf8_lossy(inner);
                for rule in text.split_ascii_whitespace() {
                    s.apply(rule.as_bytes())?;
                }
                self.selectors.push(s);
                Ok(())
            }
            _ => self.root_mut().apply(op),
        }
    }

    /// Whether `pass` is one of the user's passwords (or the user has `nopass`);
    /// compares hashes in constant time.
    pub fn password_ok(&self, pass: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let hashed = hash_password(pass);
        self.passwords.iter().fold(false, |ok, p| {
            ok | conclave_protocol::auth::constant_time_eq(p.as_bytes(), hashed.as_bytes())
        })
    }

    /// Whether the user may run anything on any key and channel with its root selector
    /// alone (the dispatch fast path).
    pub fn unrestricted(&self) -> bool {
        self.root().unrestricted()
    }

    /// The user's flags as `ACL GETUSER` lists them, in Redis's order.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.skip_sanitize {
            Some(true) => f.push("skip-sanitize-payload"),
            Some(false) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }
}

/// Applies `ACL SETUSER` arguments to a copy of `user` (Redis's `ACLStringSetUser`):
/// parenthesized selectors split over several arguments are joined first. Nothing
/// changes on error; the error is Redis's reply text (without `ERR `).
pub fn set_user(user: &User, args: &[&[u8]]) -> Result<User, String> {
    let mut merged: Vec<Vec<u8>> = Vec::new();
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (j, op) in args.iter().enumerate() {
        if let Some((_, sel)) = open.as_mut() {
            sel.push(b' ');
            sel.extend_from_slice(op);
            if op.last() == Some(&b')') {
                if let Some((_, sel)) = open.take() {
                    merged.push(sel);
                }
            }
            continue;
        }
        if op.first() == Some(&b'(') && op.last() != Some(&b')') {
            open = Some((j, op.to_vec()));
            continue;
        }
        // A lone "(" is both the opening and, by its last byte, not a closing one.
        merged.push(op.to_vec());
    }
    if let Some((j, _)) = open {
        return Err(format!(
            "Unmatched parenthesis in acl selector starting at '{}'.",
            String::from_utf8_lossy(args[j])
        ));
    }
    let mut u = user.clone();
    for op in &merged {
        u.apply(op).map_err(|e| {
            format!(
                "Error in ACL SETUSER modifier '{}': {}",
                String::from_utf8_lossy(op),
                e.text()
            )
        })?;
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_kept_hashed() {
        let u = set_user(&User::new("u"), &[b"on", b">secret"]).unwrap();
        assert!(u.password_ok(b"secret") && !u.password_ok(b"other"));
        assert!(u
            .passwords
            .iter()
            .all(|p| p.len() == 64 && !p.contains("secret")));
        let u = set_user(&u, &[b"<secret"]).unwrap();
        assert!(u.passwords.is_empty());
        assert_eq!(
            set_user(&u, &[b"<secret"]).unwrap_err(),
            "Error in ACL SETUSER modifier '<secret': The password you are trying to remove from the user does not exist"
        );
    }

    #[test]
    fn errors_leave_the_user_unchanged() {
        let u = User::new("u");
        assert!(set_user(&u, &[b"on", b"+nosuch"]).is_err());
        assert!(set_user(&u, &[b"(+get", b"~x"]).is_err());
        assert_eq!(
            set_user(&u, &[b"+config|get|x"]).unwrap_err(),
            "Error in ACL SETUSER modifier '+config|get|x': Allowing first-arg of a subcommand is not supported"
        );
        let sel = set_user(&u, &[b"(+get", b"~x)"]).unwrap();
        assert_eq!(sel.selectors.len(), 2);
    }

    #[test]
    fn default_user_is_unrestricted() {
        assert!(User::default_user().unrestricted());
        let u = set_user(&User::default_user(), &[b"-get"]).unwrap();
        assert!(!u.unrestricted());
    }
}
