//! Users back as rules (`ACL LIST`, `ACL GETUSER`), as Redis 7.0's
//! `ACLDescribeUser`/`ACLDescribeSelectorCommandRules` write them: flags, `#hash`es,
//! key patterns, channels, then the command rules — `+@all` or `-@all`, the categories
//! that best fit the bitmap (each picked while it has more commands in common with the
//! user than different), then single commands until the bitmap is matched exactly.

use super::catalog::{catalog, CATEGORIES};
use super::user::{KeyPattern, Selector, User, ALL, READ};

/// One key pattern as a rule (`~p`, `%R~p`, `%W~p`).
pub fn pattern(p: &KeyPattern) -> String {
    let prefix = match p.flags {
        ALL => "~",
        READ => "%R~",
        _ => "%W~",
    };
    format!("{prefix}{}", String::from_utf8_lossy(&p.pattern))
}

/// The key rules of a selector for `ACL GETUSER` (`~*`, or the patterns, space
/// separated).
pub fn keys(s: &Selector) -> String {
    if s.all_keys {
        return "~*".into();
    }
    s.patterns.iter().map(pattern).collect::<Vec<_>>().join(" ")
}

/// The channel rules of a selector for `ACL GETUSER`.
pub fn channels(s: &Selector) -> String {
    if s.all_channels {
        return "&*".into();
    }
    s.channels
        .iter()
        .map(|c| format!("&{}", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn count(s: &Selector, cat: u64) -> (usize, usize) {
    let (mut on, mut off) = (0, 0);
    for id in catalog().in_category(cat) {
        if s.bit(id) {
            on += 1;
        } else {
            off += 1;
        }
    }
    (on, off)
}

/// The command rules of a selector.
pub fn commands(s: &Selector) -> String {
    let mut rules: Vec<String> = Vec::new();
    let additive = !s.future();
    let mut fake = Selector::new(false);
    if additive {
        rules.push("-@all".into());
        let _ = fake.apply(b"-@all");
    } else {
        rules.push("+@all".into());
        let _ = fake.apply(b"+@all");
    }
    let mut temp = s.clone();
    let mut applied = vec![false; CATEGORIES.len()];
    loop {
        let mut best = None;
        let (mut mindiff, mut maxsame) = (usize::MAX, 0);
        for (j, done) in applied.iter().enumerate() {
            if *done {
                continue;
            }
            let (on, off) = count(&temp, 1 << j);
            let (diff, same) = if additive { (off, on) } else { (on, off) };
            if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                best = Some(j);
                mindiff = diff;
                maxsame = same;
            }
        }
        let Some(j) = best else { break };
        fake.change_category(1 << j, additive);
        temp.change_category(1 << j, !additive);
        rules.push(format!(
            "{}@{}",
            if additive { "+" } else { "-" },
            CATEGORIES[j]
        ));
        applied[j] = true;
    }
    let cat = catalog();
    for id in cat.walk() {
        let user_bit = s.bit(id);
        if user_bit != fake.bit(id) {
            rules.push(format!(
                "{}{}",
                if user_bit { "+" } else { "-" },
                cat.cmds[id].fullname
            ));
            fake.change(id, user_bit);
        }
        if !user_bit {
            for arg in s.firstargs_of(id) {
                rules.push(format!("+{}|{}", cat.cmds[id].fullname, arg));
            }
        }
    }
    rules.join(" ")
}

/// A selector's rules: keys, channels, commands (Redis's `ACLDescribeSelector`).
pub fn selector(s: &Selector) -> String {
    let mut out = String::new();
    if s.all_keys {
        out.push_str("~* ");
    } else {
        for p in &s.patterns {
            out.push_str(&pattern(p));
            out.push(' ');
        }
    }
    if s.all_channels {
        out.push_str("&* ");
    } else {
        out.push_str("resetchannels ");
        for c in &s.channels {
            out.push('&');
            out.push_str(&String::from_utf8_lossy(c));
            out.push(' ');
        }
    }
    out.push_str(&commands(s));
    out
}

/// A whole user as rules, without `user <name> ` (Redis's `ACLDescribeUser`).
pub fn user(u: &User) -> String {
    let mut out = String::new();
    for f in u.flags() {
        out.push_str(f);
        out.push(' ');
    }
    for p in &u.passwords {
        out.push('#');
        out.push_str(p);
        out.push(' ');
    }
    for s in &u.selectors {
        if s.root {
            out.push_str(&selector(s));
        } else {
            out.push_str(&format!(" ({})", selector(s)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::user::set_user;

    fn cmds(rules: &[&[u8]]) -> String {
        let u = set_user(&User::new("u"), rules).unwrap();
        commands(u.root())
    }

    #[test]
    fn a_single_category_describes_as_itself() {
        for cat in CATEGORIES {
            if catalog()
                .in_category(super::super::catalog::category_bit(cat).unwrap())
                .next()
                .is_none()
            {
                continue;
            }
            let minus = format!("-@{cat}");
            assert_eq!(
                cmds(&[b"+@all", minus.as_bytes()]),
                format!("+@all -@{cat}")
            );
            let plus = format!("+@{cat}");
            assert_eq!(cmds(&[b"-@all", plus.as_bytes()]), format!("-@all +@{cat}"));
        }
    }

    #[test]
    fn subcommands_and_first_args() {
        assert_eq!(cmds(&[b"+@all", b"-client|kill"]), "+@all -client|kill");
        assert_eq!(cmds(&[b"+memory|doctor"]), "-@all +memory|doctor");
        assert_eq!(cmds(&[b"+memory|doctor", b"+memory"]), "-@all +memory");
        assert_eq!(cmds(&[b"+select|0"]), "-@all +select|0");
        assert_eq!(cmds(&[b"+@all", b"+client|id"]), "+@all");
    }

    #[test]
    fn default_user_line() {
        assert_eq!(user(&User::default_user()), "on nopass ~* &* +@all");
        assert_eq!(user(&User::new("x")), "off resetchannels -@all");
    }
}
