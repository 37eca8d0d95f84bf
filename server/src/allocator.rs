//! The two things `MEMORY` asks of jemalloc (the node's global allocator) beyond the
//! counters `tikv-jemalloc-ctl` reads: its statistics report (`MEMORY MALLOC-STATS`,
//! jemalloc's `malloc_stats_print`, what Redis built with jemalloc answers) and a
//! purge of dirty pages in every arena (`MEMORY PURGE`, `arena.<all>.purge`).

use std::ffi::{c_char, c_void, CStr};

use tikv_jemalloc_sys as sys;

/// jemalloc's `MALLCTL_ARENAS_ALL`, the arena index meaning "every arena".
const MALLCTL_ARENAS_ALL: u32 = 4096;

/// jemalloc's statistics report as text.
pub fn stats_text() -> String {
    unsafe extern "C" fn write_cb(opaque: *mut c_void, text: *const c_char) {
        if opaque.is_null() || text.is_null() {
            return;
        }
        // SAFETY: `opaque` is the `&mut Vec<u8>` passed below, alive for the call;
        // jemalloc hands a NUL-terminated string.
        unsafe {
            let out = &mut *(opaque as *mut Vec<u8>);
            out.extend_from_slice(CStr::from_ptr(text).to_bytes());
        }
    }
    let mut out: Vec<u8> = Vec::new();
    // SAFETY: the callback only appends to `out`, which outlives the call; a null
    // `opts` asks for the default report.
    unsafe {
        sys::malloc_stats_print(
            Some(write_cb),
            &mut out as *mut Vec<u8> as *mut c_void,
            std::ptr::null(),
        );
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Returns dirty pages of every arena to the system; `false` if jemalloc refused.
pub fn purge() -> bool {
    let name = format!("arena.{MALLCTL_ARENAS_ALL}.purge\0");
    // SAFETY: `name` is NUL-terminated; the purge control reads and writes nothing,
    // so every pointer is null and the length 0, as jemalloc requires.
    let rc = unsafe {
        sys::mallctl(
            name.as_ptr() as *const c_char,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    rc == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_report_and_purge() {
        let text = stats_text();
        assert!(text.contains("jemalloc statistics"), "{text:.200}");
        assert!(purge());
    }
}
