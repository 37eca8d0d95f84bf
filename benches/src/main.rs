//! `conclave-bench`: Conclave's load tool (filled in by the lock-service work).
fn main() {}
