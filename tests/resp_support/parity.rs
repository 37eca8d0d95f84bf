//! Command scripts replayed on Conclave and on a real `redis-server` (see
//! [`super::reference`]), reply by reply, byte for byte.
//!
//! A script is one command per line, arguments split on spaces; `''` is an empty
//! argument and `\xNN` a byte. Only deterministic replies belong here (no
//! `RANDOMKEY`, idle times or relative TTLs of keys set in the past).

use super::Raw;

/// Splits a script into commands of raw arguments.
pub fn commands(script: &str) -> Vec<Vec<Vec<u8>>> {
    script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| line.split(' ').map(decode).collect())
        .collect()
}

fn decode(token: &str) -> Vec<u8> {
    if token == "''" {
        return Vec::new();
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i..i + 4)
            .filter(|w| w.starts_with(b"\\x"))
            .and_then(|w| std::str::from_utf8(&w[2..]).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// Runs `script` on both connections and returns every command whose replies differ,
/// as `command: conclave reply != redis reply`.
pub fn differences(conclave: &mut Raw, redis: &mut Raw, script: &str) -> Vec<String> {
    compare(conclave, redis, commands(script))
}

/// A small deterministic generator (xorshift64*), so a failing seed replays.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }
}

/// `n` rounds of random `INCRBYFLOAT` operands, bitmaps with random ranges, and `LCS`
/// and `BITOP` on random short strings.
pub fn random_commands(seed: u64, n: usize) -> Vec<Vec<Vec<u8>>> {
    let mut rng = Rng::new(seed);
    let mut out: Vec<Vec<Vec<u8>>> = vec![vec![b"FLUSHALL".to_vec()]];
    let cmd = |args: &[&[u8]]| args.iter().map(|a| a.to_vec()).collect::<Vec<_>>();
    let specials = [
        "0x1p3", "0x10", "-0x1.8p1", "1e308", "-1e308", "1e-300", "0.1", "0.2", "0.3", "1.8", "5.",
        ".5", "1e4000", "-0.0", "1e-18", "1e-17", "inf", "nan", "1 ", "abc",
    ];
    for _ in 0..n {
        let number = match rng.range(0, 3) {
            0 => rng.range(-1_000_000, 1_000_000).to_string(),
            1 => format!("{}e{}", rng.range(-99, 99), rng.range(-30, 30)),
            2 => format!(
                "{}.{:0w$}",
                rng.range(0, 1 << 30),
                rng.range(0, 1 << 40),
                w = rng.range(1, 20) as usize
            ),
            _ => rng.pick(&specials).to_string(),
        };
        let key = format!("f{}", rng.range(0, 3));
        out.push(cmd(&[b"INCRBYFLOAT", key.as_bytes(), number.as_bytes()]));

        let value: Vec<u8> = (0..rng.range(0, 6))
            .map(|_| {
                let any = (rng.next() & 0xff) as u8;
                *rng.pick(&[0u8, 0xff, any])
            })
            .collect();
        out.push(cmd(&[b"SET", b"b", &value]));
        let (s, e) = (
            rng.range(-60, 60).to_string(),
            rng.range(-60, 60).to_string(),
        );
        let unit = *rng.pick::<&[u8]>(&[b"BIT", b"BYTE", b"bit"]);
        let bit = *rng.pick::<&[u8]>(&[b"0", b"1"]);
        out.push(match rng.range(0, 2) {
            0 => cmd(&[b"BITCOUNT", b"b"]),
            1 => cmd(&[b"BITCOUNT", b"b", s.as_bytes(), e.as_bytes()]),
            _ => cmd(&[b"BITCOUNT", b"b", s.as_bytes(), e.as_bytes(), unit]),
        });
        out.push(match rng.range(0, 3) {
            0 => cmd(&[b"BITPOS", b"b", bit]),
            1 => cmd(&[b"BITPOS", b"b", bit, s.as_bytes()]),
            2 => cmd(&[b"BITPOS", b"b", bit, s.as_bytes(), e.as_bytes()]),
            _ => cmd(&[b"BITPOS", b"b", bit, s.as_bytes(), e.as_bytes(), unit]),
        });
        let offset = rng.range(0, 60).to_string();
        out.push(cmd(&[b"SETBIT", b"b", offset.as_bytes(), bit]));
        out.push(cmd(&[b"GETRANGE", b"b", s.as_bytes(), e.as_bytes()]));

        let word = |rng: &mut Rng, letters: &[u8]| -> Vec<u8> {
            (0..rng.range(0, 12)).map(|_| *rng.pick(letters)).collect()
        };
        let (x, y) = (word(&mut rng, b"ab"), word(&mut rng, b"abc"));
        out.push(cmd(&[b"SET", b"x", &x]));
        out.push(cmd(&[b"SET", b"y", &y]));
        let min = rng.range(0, 4).to_string();
        out.push(match rng.range(0, 4) {
            0 => cmd(&[b"LCS", b"x", b"y"]),
            1 => cmd(&[b"LCS", b"x", b"y", b"LEN"]),
            2 => cmd(&[b"LCS", b"x", b"y", b"IDX", b"WITHMATCHLEN"]),
            3 => cmd(&[b"LCS", b"x", b"y", b"IDX", b"MINMATCHLEN", min.as_bytes()]),
            _ => cmd(&[b"LCS", b"y", b"x", b"IDX"]),
        });
        let op = *rng.pick::<&[u8]>(&[b"AND", b"OR", b"XOR", b"NOT"]);
        out.push(if op == b"NOT" {
            cmd(&[b"BITOP", op, b"d", b"x"])
        } else {
            cmd(&[b"BITOP", op, b"d", b"x", b"y", b"b", b"nokey"])
        });
        out.push(cmd(&[b"GET", b"d"]));
    }
    out
}

/// Sends each command to both connections and returns those whose replies differ.
pub fn compare(conclave: &mut Raw, redis: &mut Raw, cmds: Vec<Vec<Vec<u8>>>) -> Vec<String> {
    let mut diffs = Vec::new();
    for cmd in cmds {
        let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
        conclave.send_cmd(&args);
        let ours = conclave.reply();
        redis.send_cmd(&args);
        let theirs = redis.reply();
        if ours != theirs {
            let shown: Vec<String> = cmd
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            diffs.push(format!(
                "{}: conclave {:?} != redis {:?}",
                shown.join(" "),
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            ));
        }
    }
    diffs
}
