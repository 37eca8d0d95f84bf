//! Secret comparison for authentication: the client port's `AUTH <password>`
//! (`requirepass`) and the cluster port's `AUTH <secret>` (`--cluster-secret`).

/// Byte equality whose time does not depend on where the inputs differ (only on their
/// lengths), so a client cannot find a password byte by byte by timing `AUTH`.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn equal_only_when_every_byte_matches() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret!"));
        assert!(constant_time_eq(b"", b""));
    }
}
