//! Builds `csrc/long_double.c`: INCRBYFLOAT's arithmetic in the C `long double` type
//! with libc's `strtold` and `snprintf("%.17Lf")`, exactly as Redis computes it. Rust
//! has no `long double` (x87 80-bit on x86-64), and only the same libc calls reproduce
//! Redis's parsing (hex floats, `inf`, denormals) and decimal rounding byte for byte.

fn main() {
    println!("cargo:rerun-if-changed=csrc/long_double.c");
    cc::Build::new()
        .file("csrc/long_double.c")
        .warnings(true)
        .extra_warnings(true)
        .compile("conclave_long_double");
}
