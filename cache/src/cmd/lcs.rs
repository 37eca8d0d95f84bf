//! `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]`: the longest
//! common subsequence of two strings, by Redis 7's dynamic programme (`t_string.c`,
//! `lcsCommand`), walked back the same way so that ties resolve and matches are
//! reported exactly as Redis reports them.

use bytes::Bytes;

use super::strings::MAX_STRING_LEN;
use super::write_error;
use crate::keyspace::Keyspace;
use conclave_protocol::parse::{parse_i64, Parse, ParseError};
use conclave_protocol::Frame;

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`
#[derive(Debug, Clone, PartialEq)]
pub struct Lcs {
    a: Bytes,
    b: Bytes,
    len: bool,
    idx: bool,
    min_match_len: u64,
    with_match_len: bool,
}

impl Lcs {
    /// Parses the arguments. `MINMATCHLEN` must be an integer (a negative one counts
    /// as 0); `LEN` with `IDX` is refused.
    pub fn parse(parse: &mut Parse) -> Result<Lcs, ParseError> {
        let mut lcs = Lcs {
            a: parse.next_bytes()?,
            b: parse.next_bytes()?,
            len: false,
            idx: false,
            min_match_len: 0,
            with_match_len: false,
        };
        while let Some(opt) = parse.try_next() {
            match opt.to_ascii_uppercase().as_slice() {
                b"IDX" => lcs.idx = true,
                b"LEN" => lcs.len = true,
                b"WITHMATCHLEN" => lcs.with_match_len = true,
                b"MINMATCHLEN" if parse.remaining() > 0 => {
                    let n = parse_i64(&parse.next_bytes()?).ok_or(ParseError::NotInteger)?;
                    lcs.min_match_len = u64::try_from(n).unwrap_or(0);
                }
                _ => return Err(ParseError::Syntax),
            }
        }
        if lcs.len && lcs.idx {
            return Err(ParseError::Other(
                "ERR If you want both the length and indexes, please just use IDX.".into(),
            ));
        }
        Ok(lcs)
    }

    /// Runs the command. Missing keys are empty strings. Replies: the subsequence
    /// (bulk); with `LEN` its length; with `IDX` a map (a flat array in RESP2) of
    /// `matches` — `[[a-start, a-end], [b-start, b-end]]` (plus the length with
    /// `WITHMATCHLEN`) for each run of at least `MINMATCHLEN` bytes, last first —
    /// and `len`. The table needs `(len1 + 1) * (len2 + 1) * 4` bytes: more than
    /// `proto-max-bulk-len` (512 MB) is refused, as Redis does.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let (a, b) = {
            let mut locks = match ks.lock_keys(&[&self.a, &self.b], false) {
                Ok(l) => l,
                Err(e) => return write_error(e),
            };
            let a = locks.get(&self.a, true).unwrap_or_default();
            let b = locks.get(&self.b, true).unwrap_or_default();
            (a, b)
        };
        if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
            return Frame::error("ERR String too long for LCS");
        }
        let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
        if cells.saturating_mul(4) > MAX_STRING_LEN as u64 {
            return Frame::error(
                "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
            );
        }
        self.reply(&a, &b)
    }

    fn reply(&self, a: &[u8], b: &[u8]) -> Frame {
        let table = Table::build(a, b);
        let total = table.at(a.len(), b.len());
        if self.len {
            return Frame::Integer(i64::from(total));
        }
        let (result, matches) = table.walk(a, b, self.min_match_len, self.with_match_len);
        if !self.idx {
            return Frame::Bulk(Bytes::from(result));
        }
        Frame::Map(vec![
            (Frame::bulk_static("matches"), Frame::Array(matches)),
            (Frame::bulk_static("len"), Frame::Integer(i64::from(total))),
        ])
    }
}

/// `LCS(i, j)`: the length of the LCS of `a[..i]` and `b[..j]`.
struct Table {
    cells: Vec<u32>,
    width: usize,
}

impl Table {
    fn build(a: &[u8], b: &[u8]) -> Table {
        let width = b.len() + 1;
        let mut cells = vec![0u32; (a.len() + 1) * width];
        for (i, &ca) in a.iter().enumerate() {
            for (j, &cb) in b.iter().enumerate() {
                let v = if ca == cb {
                    cells[i * width + j] + 1
                } else {
                    cells[i * width + j + 1].max(cells[(i + 1) * width + j])
                };
                cells[(i + 1) * width + j + 1] = v;
            }
        }
        Table { cells, width }
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells.get(i * self.width + j).copied().unwrap_or(0)
    }

    /// Redis's walk back from `(len a, len b)`: the subsequence, and the ranges of
    /// the matching runs as `IDX` reports them.
    fn walk(&self, a: &[u8], b: &[u8], min_len: u64, with_len: bool) -> (Vec<u8>, Vec<Frame>) {
        let alen = a.len();
        let mut idx = self.at(alen, b.len()) as usize;
        let mut result = vec![0u8; idx];
        let mut matches = Vec::new();
        // `a_start == alen` means no range is open, as in Redis.
        let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0usize, 0usize, 0usize);
        let (mut i, mut j) = (alen, b.len());
        while i > 0 && j > 0 {
            let mut emit = false;
            if a.get(i - 1) == b.get(j - 1) {
                if let (Some(slot), Some(&c)) = (result.get_mut(idx.wrapping_sub(1)), a.get(i - 1))
                {
                    *slot = c;
                }
                if a_start == alen {
                    (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
                } else if a_start == i && b_start == j {
                    a_start -= 1;
                    b_start -= 1;
                } else {
                    emit = true;
                }
                if a_start == 0 || b_start == 0 {
                    emit = true;
                }
                idx = idx.saturating_sub(1);
                i -= 1;
                j -= 1;
            } else {
                if self.at(i - 1, j) > self.at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                if a_start != alen {
                    emit = true;
                }
            }
            if emit {
                let match_len = (a_end - a_start + 1) as u64;
                if min_len == 0 || match_len >= min_len {
                    let range = |s: usize, e: usize| {
                        Frame::Array(vec![Frame::Integer(s as i64), Frame::Integer(e as i64)])
                    };
                    let mut m = vec![range(a_start, a_end), range(b_start, b_end)];
                    if with_len {
                        m.push(Frame::Integer(match_len as i64));
                    }
                    matches.push(Frame::Array(m));
                }
                a_start = alen;
            }
        }
        (result, matches)
    }
}
