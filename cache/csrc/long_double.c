/*
 * INCRBYFLOAT arithmetic exactly as Redis 7 does it (src/util.c `string2ld` and
 * `ld2string(..., LD_STR_HUMAN)`, src/t_string.c `incrbyfloatCommand`): parse both
 * operands with the C library's strtold, add them as `long double` (the x87 80-bit
 * format on x86-64), refuse NaN/Inf results, print with "%.17Lf" and strip trailing
 * zeros and a trailing dot. Calling the same libc functions Redis calls is the only
 * way to be byte-identical to it (strtold accepts hex floats, "inf", denormals; glibc's
 * printf rounds the exact binary value), so this file is kept as close to Redis's code
 * as possible. Rust has no `long double`: the value never crosses the FFI boundary.
 *
 * Thread safety: errno is thread-local; no global state.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Redis's MAX_LONG_DOUBLE_CHARS (server.h): longer strings are never a valid float. */
#define MAX_LONG_DOUBLE_CHARS (5 * 1024)

/* Redis's string2ld: 1 when the whole of s[0..slen) is a long double. */
static int string2ld(const char *s, size_t slen, long double *dp) {
    char buf[MAX_LONG_DOUBLE_CHARS];
    long double value;
    char *eptr;

    if (slen == 0 || slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';

    errno = 0;
    value = strtold(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' ||
        (size_t)(eptr - buf) != slen ||
        (errno == ERANGE &&
            (value == HUGE_VAL || value == -HUGE_VAL || fpclassify(value) == FP_ZERO)) ||
        errno == EINVAL ||
        isnan(value))
        return 0;

    if (dp) *dp = value;
    return 1;
}

/* Redis's ld2string in LD_STR_HUMAN mode for a finite value; 0 when out of room. */
static size_t ld2string_human(char *buf, size_t len, long double value) {
    int n = snprintf(buf, len, "%.17Lf", value);
    if (n < 0) return 0;
    size_t l = (size_t)n;
    if (l + 1 > len) return 0;
    /* Remove trailing zeroes after the '.' */
    if (strchr(buf, '.') != NULL) {
        char *p = buf + l - 1;
        while (*p == '0') {
            p--;
            l--;
        }
        if (*p == '.') l--;
    }
    if (l == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        l = 1;
    }
    buf[l] = '\0';
    return l;
}

/* 1 when s[0..len) is a float Redis's INCRBYFLOAT accepts, else 0. */
int conclave_ld_valid(const char *s, size_t len) {
    long double v;
    return string2ld(s, len, &v);
}

/*
 * old + incr as INCRBYFLOAT computes it; a missing key (has_old == 0) counts as 0.
 * Writes the text into out (at least CONCLAVE_LD_OUT bytes) and returns its length,
 * or -1 when the stored value is not a float, -2 when the increment is not one,
 * -3 when the sum is NaN or infinite, -4 when the text does not fit.
 */
long conclave_ld_incr(const char *old, size_t oldlen, int has_old,
                      const char *incr, size_t incrlen,
                      char *out, size_t outlen) {
    long double value = 0, by;
    if (has_old && !string2ld(old, oldlen, &value)) return -1;
    if (!string2ld(incr, incrlen, &by)) return -2;
    value += by;
    if (isnan(value) || isinf(value)) return -3;
    size_t l = ld2string_human(out, outlen, value);
    if (l == 0) return -4;
    return (long)l;
}
