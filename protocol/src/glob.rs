//! Glob-style pattern matching with the semantics of Redis's `stringmatchlen`
//! (used by `KEYS`, `SCAN ... MATCH`, `CONFIG GET` and `Q.TOPICS`).
//!
//! - `*` matches any run of bytes, `?` any single byte;
//! - `[abc]`, `[a-z]` (reversed ranges allowed), `[^...]` negation, `\x` inside a
//!   class is a literal; an unterminated class ends with the pattern;
//! - `\x` outside a class matches `x` literally (a trailing `\` matches `\`).
//!
//! Matching is iterative: on mismatch it backtracks to the most recent `*`, which
//! gives the same answers as Redis's recursive matcher in `O(pattern * string)`.

/// Whether `string` matches the glob `pattern`.
pub fn glob_match(pattern: &[u8], string: &[u8]) -> bool {
    let (mut p, mut s) = (0usize, 0usize);
    // Where to resume after the last `*`: (pattern index after the star, string index).
    let mut star: Option<(usize, usize)> = None;
    while s < string.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                // Collapse consecutive stars.
                let mut q = p;
                while pattern.get(q) == Some(&b'*') {
                    q += 1;
                }
                if q == pattern.len() {
                    return true;
                }
                star = Some((q, s));
                p = q;
                continue;
            }
            Some(_) => match_one(pattern, p, string[s]),
            None => None,
        };
        match step {
            Some(next_p) => {
                p = next_p;
                s += 1;
            }
            None => match star {
                Some((sp, ss)) => {
                    // Let the star swallow one more byte and retry.
                    p = sp;
                    s = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// Matches the single-byte element of `pattern` starting at `p` against `c`.
/// Returns the index just after the element on a match.
fn match_one(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    match pattern.get(p)? {
        b'?' => Some(p + 1),
        b'[' => match_class(pattern, p + 1, c),
        b'\\' if p + 1 < pattern.len() => (pattern.get(p + 1) == Some(&c)).then_some(p + 2),
        &lit => (lit == c).then_some(p + 1),
    }
}

/// Matches a class whose body starts at `p` (just after `[`).
fn match_class(pattern: &[u8], mut p: usize, c: u8) -> Option<usize> {
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let mut matched = false;
    loop {
        let remaining = pattern.len().saturating_sub(p);
        match pattern.get(p) {
            None => break, // unterminated class: it ends with the pattern
            Some(b'\\') if remaining >= 2 => {
                p += 1;
                if pattern.get(p) == Some(&c) {
                    matched = true;
                }
                p += 1;
            }
            Some(b']') => {
                p += 1;
                break;
            }
            Some(&start) if remaining >= 3 && pattern.get(p + 1) == Some(&b'-') => {
                let end = pattern.get(p + 2).copied().unwrap_or(start);
                let (lo, hi) = if start > end {
                    (end, start)
                } else {
                    (start, end)
                };
                if (lo..=hi).contains(&c) {
                    matched = true;
                }
                p += 3;
            }
            Some(&lit) => {
                if lit == c {
                    matched = true;
                }
                p += 1;
            }
        }
    }
    (matched != negate).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::glob_match as m;

    #[test]
    fn stars_and_questions() {
        assert!(m(b"*", b""));
        assert!(m(b"*", b"anything"));
        assert!(m(b"h?llo", b"hello"));
        assert!(!m(b"h?llo", b"hllo"));
        assert!(m(b"h*llo", b"hllo"));
        assert!(m(b"h*llo", b"heeeello"));
        assert!(m(b"key:*", b"key:000000123456"));
        assert!(!m(b"key:*", b"kez:1"));
        assert!(m(b"*a*b*c*", b"xxaxxbxxcxx"));
        assert!(!m(b"*a*b*c*", b"xxcxxbxxaxx"));
        assert!(m(b"a**b", b"ab"));
        assert!(!m(b"", b"a"));
        assert!(m(b"", b""));
        assert!(!m(b"abc", b"ab"));
        assert!(m(b"ab*", b"ab"));
    }

    #[test]
    fn classes() {
        assert!(m(b"h[ae]llo", b"hello"));
        assert!(m(b"h[ae]llo", b"hallo"));
        assert!(!m(b"h[ae]llo", b"hillo"));
        assert!(m(b"h[^e]llo", b"hallo"));
        assert!(!m(b"h[^e]llo", b"hello"));
        assert!(m(b"h[a-b]llo", b"hbllo"));
        assert!(m(b"h[b-a]llo", b"hallo")); // reversed range
        assert!(!m(b"h[a-b]llo", b"hcllo"));
        assert!(m(b"[\\]]", b"]"));
        // `[a-]` is the range a..`]` (reversed) and the class is unterminated.
        assert!(m(b"[a-]", b"^"));
        assert!(!m(b"[a-]", b"-"));
        assert!(m(b"[abc", b"b")); // unterminated class ends with the pattern
        assert!(!m(b"[abc", b"d"));
        assert!(!m(b"[]", b"a")); // empty class matches nothing
        assert!(m(b"[^]", b"a"));
    }

    #[test]
    fn escapes() {
        assert!(m(b"\\*", b"*"));
        assert!(!m(b"\\*", b"a"));
        assert!(m(b"a\\?", b"a?"));
        assert!(!m(b"a\\?", b"ab"));
        assert!(m(b"a\\", b"a\\")); // trailing backslash is literal
        assert!(m(b"\\[x]", b"[x]"));
    }

    #[test]
    fn binary_safe() {
        assert!(m(b"a?c", b"a\x00c"));
        assert!(m(b"*\xff", b"\x01\x02\xff"));
    }
}
