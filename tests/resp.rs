//! RESP-level integration tests against a real one-node `conclave` process.

mod common;

use common::Server;

#[test]
fn ping_set_get_over_resp2() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(v, "v");
}
