//! Multi-process lock tests on 127.0.0.1 (being written).
mod common;
