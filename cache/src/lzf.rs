//! LZF, as Redis compresses strings in `DUMP` payloads and RDB files: a line-by-line
//! port of liblzf 3.6's `lzf_compress` with the settings of Redis's `lzfP.h`
//! (`HLOG` 16, `VERY_FAST`, `CHECK_INPUT`), and of `lzf_decompress`.
//!
//! Why not the `lzf` crate: its compressor departs from liblzf (an extra
//! end-of-input condition on matches, a different output bound), so its output is
//! not the bytes Redis writes, and `DUMP` must answer what Redis answers. One
//! difference with Redis remains by design: Redis leaves liblzf's hash table
//! uninitialised (`INIT_HTAB` 0), so stale stack contents can, rarely, add a match;
//! here the table starts zeroed, which is what a fresh Redis process does.

/// `1 << HLOG` hash slots.
const HSIZE: usize = 1 << 16;
/// Longest literal run.
const MAX_LIT: usize = 1 << 5;
/// Farthest back reference.
const MAX_OFF: usize = 1 << 13;
/// Longest back reference.
const MAX_REF: usize = (1 << 8) + (1 << 3);

fn first(d: &[u8], i: usize) -> u32 {
    (u32::from(d[i]) << 8) | u32::from(d[i + 1])
}

fn next(v: u32, d: &[u8], i: usize) -> u32 {
    (v << 8) | u32::from(d[i + 2])
}

/// `IDX` with `VERY_FAST`: `((h >> (3*8 - HLOG)) - h*5) & (HSIZE - 1)`.
fn idx(h: u32) -> usize {
    ((h >> 8).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// Compresses `input` into at most `out_len` bytes; `None` when it does not fit
/// (liblzf's 0), as `lzf_compress(in, in_len, out, out_len)` decides.
pub fn compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let in_len = input.len();
    if in_len == 0 || out_len == 0 {
        return None;
    }
    let mut out = vec![0u8; out_len];
    // Hash slots hold positions; 0 means "none", as `ref > in_data` then fails.
    let mut htab = vec![0usize; HSIZE];
    let mut ip = 0usize;
    let mut op = 1usize; // start run
    let mut lit = 0usize;
    let mut hval = if in_len >= 2 { first(input, 0) } else { 0 };
    while in_len > 2 && ip < in_len - 2 {
        hval = next(hval, input, ip);
        let slot = idx(hval);
        let r = htab[slot];
        htab[slot] = ip;
        let off = ip.wrapping_sub(r).wrapping_sub(1);
        if off < MAX_OFF
            && r > 0
            && r < ip
            && input[r + 2] == input[ip + 2]
            && input[r] == input[ip]
            && input[r + 1] == input[ip + 1]
        {
            let mut len = 2usize;
            let maxlen = (in_len - ip - len).min(MAX_REF);
            if op + 3 + 1 >= out_len && op - usize::from(lit == 0) + 3 + 1 >= out_len {
                return None;
            }
            out[op - lit - 1] = (lit as u8).wrapping_sub(1); // stop run
            op -= usize::from(lit == 0); // undo run if length is zero
                                         // liblzf checks 16 more octets unrolled (without the `maxlen` bound) when
                                         // `maxlen > 16`, then goes on one octet at a time: kept as is, since it
                                         // decides the match length near the end of the input.
            let mut stopped = false;
            if maxlen > 16 {
                for _ in 0..16 {
                    len += 1;
                    if input[r + len] != input[ip + len] {
                        stopped = true;
                        break;
                    }
                }
            }
            if !stopped {
                loop {
                    len += 1;
                    if !(len < maxlen && input[r + len] == input[ip + len]) {
                        break;
                    }
                }
            }
            len -= 2; // len is now #octets - 1
            ip += 1;
            if len < 7 {
                out[op] = ((off >> 8) + (len << 5)) as u8;
                op += 1;
            } else {
                out[op] = ((off >> 8) + (7 << 5)) as u8;
                out[op + 1] = (len - 7) as u8;
                op += 2;
            }
            out[op] = off as u8;
            op += 1;
            lit = 0;
            op += 1; // start run
            ip += len + 1;
            if ip >= in_len - 2 {
                break;
            }
            ip -= 2;
            hval = first(input, ip);
            hval = next(hval, input, ip);
            htab[idx(hval)] = ip;
            ip += 1;
            hval = next(hval, input, ip);
            htab[idx(hval)] = ip;
            ip += 1;
        } else {
            if op >= out_len {
                return None;
            }
            lit += 1;
            out[op] = input[ip];
            op += 1;
            ip += 1;
            if lit == MAX_LIT {
                out[op - lit - 1] = (lit as u8).wrapping_sub(1); // stop run
                lit = 0;
                op += 1; // start run
            }
        }
    }
    if op + 3 > out_len {
        return None;
    }
    while ip < in_len {
        lit += 1;
        out[op] = input[ip];
        op += 1;
        ip += 1;
        if lit == MAX_LIT {
            out[op - lit - 1] = (lit as u8).wrapping_sub(1);
            lit = 0;
            op += 1;
        }
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1); // end run
    op -= usize::from(lit == 0);
    out.truncate(op);
    Some(out)
}

/// Decompresses `input`, which must expand to exactly `out_len` bytes; `None` for
/// corrupt data (liblzf's `EINVAL`/`E2BIG`, or a different length).
pub fn decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    let mut ip = 0usize;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < (1 << 5) {
            let run = ctrl + 1;
            if out.len() + run > out_len || ip + run > input.len() {
                return None;
            }
            out.extend_from_slice(&input[ip..ip + run]);
            ip += run;
        } else {
            let mut len = ctrl >> 5;
            let mut back = (ctrl & 0x1f) << 8;
            if len == 7 {
                len += usize::from(*input.get(ip)?);
                ip += 1;
            }
            back += usize::from(*input.get(ip)?);
            ip += 1;
            if out.len() + len + 2 > out_len || back + 1 > out.len() {
                return None;
            }
            let start = out.len() - back - 1;
            for i in 0..len + 2 {
                let b = out[start + i];
                out.push(b);
            }
        }
    }
    (out.len() == out_len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn compresses_repetition_and_refuses_what_does_not_fit() {
        let data = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let c = compress(data, data.len() - 4).expect("compressible");
        assert!(c.len() < 10, "{c:?}");
        assert_eq!(decompress(&c, data.len()).as_deref(), Some(&data[..]));
        let noise: Vec<u8> = (0u8..40).map(|i| i.wrapping_mul(97)).collect();
        assert_eq!(compress(&noise, noise.len() - 4), None);
        assert_eq!(
            decompress(&[0x20, 0], 5),
            None,
            "reference before the start"
        );
    }

    proptest! {
        #[test]
        fn round_trips(data in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..600)) {
            if let Some(c) = compress(&data, data.len() + 64) {
                prop_assert_eq!(decompress(&c, data.len()), Some(data.clone()));
            }
        }
    }
}
