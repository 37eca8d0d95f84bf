//! The `bit` library Redis embeds (LuaBitOp 1.0): 32-bit bitwise operations on Lua
//! numbers (<https://bitop.luajit.org/api.html>).
//!
//! Numbers are normalised to signed 32-bit integers the way LuaBitOp does it (add
//! 2^52 + 2^51 and keep the low word: rounds to nearest, wraps modulo 2^32); shift counts
//! use their low 5 bits. `bit.tohex(x, n)` has Redis's fix for `n = -2^31`.

use mlua::{Lua, Result, Table, Variadic};

/// LuaBitOp's `tobit` normalisation.
pub fn tobit(x: f64) -> i32 {
    let magic = x + 6_755_399_441_055_744.0;
    magic.to_bits() as u32 as i32
}

/// Builds the `bit` table.
pub fn create(lua: &Lua) -> Result<Table> {
    let t = lua.create_table()?;
    let unary = |f: fn(i32) -> i32| lua.create_function(move |_, x: f64| Ok(f(tobit(x)) as f64));
    let fold = |f: fn(i32, i32) -> i32| {
        lua.create_function(move |_, (x, rest): (f64, Variadic<f64>)| {
            Ok(rest.iter().fold(tobit(x), |acc, &y| f(acc, tobit(y))) as f64)
        })
    };
    let shift = |f: fn(i32, u32) -> i32| {
        lua.create_function(move |_, (x, n): (f64, f64)| {
            Ok(f(tobit(x), tobit(n) as u32 & 31) as f64)
        })
    };
    t.raw_set("tobit", unary(|x| x)?)?;
    t.raw_set("bnot", unary(|x| !x)?)?;
    t.raw_set("bswap", unary(i32::swap_bytes)?)?;
    t.raw_set("band", fold(|a, b| a & b)?)?;
    t.raw_set("bor", fold(|a, b| a | b)?)?;
    t.raw_set("bxor", fold(|a, b| a ^ b)?)?;
    t.raw_set("lshift", shift(|x, n| ((x as u32) << n) as i32)?)?;
    t.raw_set("rshift", shift(|x, n| ((x as u32) >> n) as i32)?)?;
    t.raw_set("arshift", shift(|x, n| x >> n)?)?;
    t.raw_set("rol", shift(|x, n| (x as u32).rotate_left(n) as i32)?)?;
    t.raw_set("ror", shift(|x, n| (x as u32).rotate_right(n) as i32)?)?;
    t.raw_set(
        "tohex",
        lua.create_function(|_, (x, n): (f64, Option<f64>)| {
            Ok(tohex(tobit(x), n.map_or(8, tobit)))
        })?,
    )?;
    Ok(t)
}

fn tohex(x: i32, n: i32) -> String {
    let n = if n == i32::MIN { i32::MIN + 1 } else { n };
    let digits: &[u8; 16] = if n < 0 {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let n = n.unsigned_abs().min(8) as usize;
    let mut b = x as u32;
    let mut buf = vec![b'0'; n];
    for slot in buf.iter_mut().rev() {
        *slot = digits[(b & 15) as usize];
        b >>= 4;
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_luabitop() {
        let lua = Lua::new();
        lua.globals().set("bit", create(&lua).unwrap()).unwrap();
        let eval = |src: &str| lua.load(src).eval::<mlua::Value>().unwrap();
        let s = |src: &str| eval(src).to_string().unwrap();
        assert_eq!(s("return bit.tohex(65535, -2147483648)"), "0000FFFF");
        assert_eq!(s("return bit.tohex(-1)"), "ffffffff");
        assert_eq!(s("return bit.tohex(255, 2)"), "ff");
        assert_eq!(s("return bit.tobit(0xffffffff)"), "-1");
        assert_eq!(s("return bit.tobit(2^32 + 5)"), "5");
        assert_eq!(s("return bit.band(0xff, 0x0f, 0x3)"), "3");
        assert_eq!(s("return bit.bor(1, 2, 4)"), "7");
        assert_eq!(s("return bit.bxor(5, 1)"), "4");
        assert_eq!(s("return bit.bnot(0)"), "-1");
        assert_eq!(s("return bit.lshift(1, 31)"), "-2147483648");
        assert_eq!(s("return bit.lshift(1, 33)"), "2");
        assert_eq!(s("return bit.rshift(-1, 28)"), "15");
        assert_eq!(s("return bit.arshift(-256, 4)"), "-16");
        assert_eq!(s("return bit.rol(0x12345678, 8)"), "878082066");
        assert_eq!(s("return bit.ror(0x12345678, 8)"), "2014458966");
        assert_eq!(s("return bit.bswap(0x12345678)"), "2018915346");
    }
}
