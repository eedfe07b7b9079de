//! A minimal blocking HTTP/1.1 client for the benchmarks' setup (a token, an id); the load itself
//! comes from wrk.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// One exchange with `Connection: close`; the body of a 200 answer.
fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response[response.find("\r\n\r\n").unwrap() + 4..].to_owned()
}

/// admin@internal's token from the SSO endpoint at `addr` (a simulator's, or a gateway's own).
pub fn token(addr: SocketAddr) -> String {
    let body = "grant_type=password&scope=ovirt-app-api&username=admin%40internal&password=admin";
    let answer = exchange(
        addr,
        &format!(
            "POST /ovirt-engine/sso/oauth/token HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let value: serde_json::Value = serde_json::from_str(&answer).unwrap();
    value["access_token"].as_str().unwrap().to_owned()
}

/// The id of the first VM listed, with an `Authorization: ...` header line.
pub fn first_vm_id(addr: SocketAddr, auth: &str) -> String {
    let body = exchange(
        addr,
        &format!(
            "GET /ovirt-engine/api/vms?max=1 HTTP/1.1\r\nHost: {addr}\r\n{auth}\r\nConnection: close\r\n\r\n"
        ),
    );
    let start = body.find(" id=\"").unwrap() + 5;
    body[start..start + 36].to_owned()
}
