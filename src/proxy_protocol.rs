//! The PROXY protocol, versions 1 (text) and 2 (binary), as HAProxy specifies it
//! (haproxy.org, doc/proxy-protocol.txt): a load balancer in TCP mode tells the gateway, before
//! anything else on the connection, which client it carries. Read only from the peers in
//! `listen.proxy_protocol` (docs/replicas.md, "Behind a load balancer"), which must send it;
//! nobody else may, since a client that could would choose its own address.
//!
//! Exactly the header's bytes are read, never more: what follows (a TLS ClientHello, an HTTP
//! request) stays on the socket for the listener.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

/// The 12 bytes that open a version 2 header.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// A version 1 line is at most 107 bytes, CRLF included.
const V1_MAX: usize = 107;
/// A version 2 header's addresses and TLVs; more is refused.
const V2_MAX_BODY: usize = 4096;

/// Why a connection's PROXY header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("the connection does not start with a PROXY protocol header")]
    Missing,
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(&'static str),
    #[error("the connection closed within its PROXY protocol header")]
    Closed,
}

/// Reads a PROXY header from `stream`: the client's address, or `None` when the header names
/// none (version 1 `UNKNOWN`, version 2 `LOCAL` such as a balancer's own health check, or an
/// address family other than TCP over IPv4 or IPv6): the peer is then the client.
pub(crate) async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<SocketAddr>, ProxyError> {
    let mut start = [0u8; 8];
    read(stream, &mut start).await?;
    if start == V2_SIGNATURE[..8] {
        let mut rest = [0u8; 8];
        read(stream, &mut rest).await?;
        if rest[..4] != V2_SIGNATURE[8..] {
            return Err(ProxyError::Missing);
        }
        let length = usize::from(u16::from_be_bytes([rest[6], rest[7]]));
        if length > V2_MAX_BODY {
            return Err(ProxyError::Malformed("longer than the gateway accepts"));
        }
        let mut body = vec![0u8; length];
        read(stream, &mut body).await?;
        return parse_v2(rest[4], rest[5], &body);
    }
    if &start[..6] != b"PROXY " {
        return Err(ProxyError::Missing);
    }
    // Byte by byte up to the CRLF: reading more would take what follows from the listener.
    let mut line = start.to_vec();
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX {
            return Err(ProxyError::Malformed("a version 1 line longer than 107 bytes"));
        }
        let mut byte = [0u8; 1];
        read(stream, &mut byte).await?;
        line.push(byte[0]);
    }
    parse_v1(&line[..line.len() - 2])
}

async fn read<S: AsyncRead + Unpin>(stream: &mut S, into: &mut [u8]) -> Result<(), ProxyError> {
    stream
        .read_exact(into)
        .await
        .map(drop)
        .map_err(|_| ProxyError::Closed)
}

/// `PROXY TCP4 src dst sport dport` (without its CRLF), or `PROXY UNKNOWN ...`.
fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    let line = std::str::from_utf8(line).map_err(|_| ProxyError::Malformed("not ASCII"))?;
    let fields: Vec<&str> = line.split(' ').collect();
    match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(None),
        [
            "PROXY",
            family @ ("TCP4" | "TCP6"),
            source,
            _destination,
            port,
            _destination_port,
        ] => {
            let ip: IpAddr = source
                .parse()
                .map_err(|_| ProxyError::Malformed("a source that is not an address"))?;
            if ip.is_ipv4() != (*family == "TCP4") {
                return Err(ProxyError::Malformed("a source of another family than declared"));
            }
            // Ports are decimal without a sign or leading zeros (the specification's words).
            if port.is_empty() || port.len() > 5 || (port.len() > 1 && port.starts_with('0')) {
                return Err(ProxyError::Malformed("a port that is not a port"));
            }
            let port: u16 = port
                .parse()
                .map_err(|_| ProxyError::Malformed("a port that is not a port"))?;
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(ProxyError::Malformed("a version 1 line of another shape")),
    }
}

/// The version and command byte, the family and protocol byte, and the addresses (TLVs after
/// them are ignored).
fn parse_v2(version_command: u8, family: u8, body: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    if version_command >> 4 != 2 {
        return Err(ProxyError::Malformed("a version other than 2"));
    }
    match version_command & 0x0f {
        // LOCAL: the balancer speaking for itself.
        0x0 => return Ok(None),
        0x1 => {}
        _ => return Err(ProxyError::Malformed("a command other than LOCAL or PROXY")),
    }
    match family {
        // TCP over IPv4: source, destination, source port, destination port.
        0x11 if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let port = u16::from_be_bytes([body[8], body[9]]);
            Ok(Some(SocketAddr::new(IpAddr::V4(ip), port)))
        }
        0x21 if body.len() >= 36 => {
            let octets: [u8; 16] = body[..16].try_into().expect("16 bytes");
            let port = u16::from_be_bytes([body[32], body[33]]);
            Ok(Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port)))
        }
        0x11 | 0x21 => Err(ProxyError::Malformed("addresses shorter than their family's")),
        // UNSPEC, UDP, UNIX: no client address the gateway can use.
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn header(bytes: &[u8]) -> (Result<Option<SocketAddr>, ProxyError>, Vec<u8>) {
        let mut stream = bytes;
        let parsed = read_header(&mut stream).await;
        (parsed, stream.to_vec())
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.extend([command, family]);
        bytes.extend((body.len() as u16).to_be_bytes());
        bytes.extend(body);
        bytes
    }

    /// A version 1 header gives the source, and leaves what follows unread.
    #[tokio::test]
    async fn version_1_tcp4_and_tcp6() {
        let (parsed, rest) = header(b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 8443\r\nGET /").await;
        assert_eq!(parsed, Ok(Some("192.0.2.7:56324".parse().unwrap())));
        assert_eq!(rest, b"GET /");
        let (parsed, _) = header(b"PROXY TCP6 2001:db8::7 2001:db8::1 443 8443\r\n").await;
        assert_eq!(parsed, Ok(Some("[2001:db8::7]:443".parse().unwrap())));
        let (parsed, rest) = header(b"PROXY UNKNOWN\r\n\x16\x03").await;
        assert_eq!(parsed, Ok(None));
        assert_eq!(rest, b"\x16\x03");
    }

    /// Malformed version 1 lines are refused, each for its reason.
    #[tokio::test]
    async fn version_1_malformed() {
        for (bytes, why) in [
            (
                &b"PROXY TCP4 192.0.2.7 10.0.0.1 56324\r\n"[..],
                "a version 1 line of another shape",
            ),
            (
                b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",
                "a source of another family than declared",
            ),
            (
                b"PROXY TCP4 example 10.0.0.1 1 2\r\n",
                "a source that is not an address",
            ),
            (
                b"PROXY TCP4 192.0.2.7 10.0.0.1 070 2\r\n",
                "a port that is not a port",
            ),
            (
                b"PROXY TCP4 192.0.2.7 10.0.0.1 65536 2\r\n",
                "a port that is not a port",
            ),
        ] {
            assert_eq!(
                header(bytes).await.0,
                Err(ProxyError::Malformed(why)),
                "{bytes:?}"
            );
        }
        let long = [b"PROXY ".as_slice(), &[b'x'; 120]].concat();
        assert_eq!(
            header(&long).await.0,
            Err(ProxyError::Malformed("a version 1 line longer than 107 bytes"))
        );
        assert_eq!(header(b"PROXY TCP4 1.2.3.4").await.0, Err(ProxyError::Closed));
    }

    /// A connection that starts otherwise (plain HTTP, TLS) has no header.
    #[tokio::test]
    async fn no_header() {
        assert_eq!(
            header(b"GET / HTTP/1.1\r\n\r\n").await.0,
            Err(ProxyError::Missing)
        );
        assert_eq!(
            header(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc").await.0,
            Err(ProxyError::Missing)
        );
        assert_eq!(header(b"PRO").await.0, Err(ProxyError::Closed));
    }

    /// Version 2: IPv4 and IPv6 sources (TLVs after them ignored), LOCAL and UNSPEC name none.
    #[tokio::test]
    async fn version_2() {
        let mut inet = vec![192, 0, 2, 7, 10, 0, 0, 1, 0xdc, 0x04, 0x20, 0xfb];
        inet.extend([0x04, 0x00, 0x01, 0x00]); // a NOOP TLV
        let (parsed, rest) = header(&[v2(0x21, 0x11, &inet), b"\x16\x03".to_vec()].concat()).await;
        assert_eq!(parsed, Ok(Some("192.0.2.7:56324".parse().unwrap())));
        assert_eq!(rest, b"\x16\x03");
        let mut inet6 = "2001:db8::7".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        inet6.extend([0u8; 16]);
        inet6.extend([0x01, 0xbb, 0x20, 0xfb]);
        let (parsed, _) = header(&v2(0x21, 0x21, &inet6)).await;
        assert_eq!(parsed, Ok(Some("[2001:db8::7]:443".parse().unwrap())));
        assert_eq!(header(&v2(0x20, 0x00, &[])).await.0, Ok(None));
        assert_eq!(header(&v2(0x21, 0x00, &[])).await.0, Ok(None));
    }

    /// Version 2 headers that cannot be what they say are refused.
    #[tokio::test]
    async fn version_2_malformed() {
        assert_eq!(
            header(&v2(0x11, 0x11, &[0; 12])).await.0,
            Err(ProxyError::Malformed("a version other than 2"))
        );
        assert_eq!(
            header(&v2(0x22, 0x11, &[0; 12])).await.0,
            Err(ProxyError::Malformed("a command other than LOCAL or PROXY"))
        );
        assert_eq!(
            header(&v2(0x21, 0x11, &[0; 11])).await.0,
            Err(ProxyError::Malformed("addresses shorter than their family's"))
        );
        let mut too_long = v2(0x21, 0x11, &[]);
        too_long[14..16].copy_from_slice(&5000u16.to_be_bytes());
        assert_eq!(
            header(&too_long).await.0,
            Err(ProxyError::Malformed("longer than the gateway accepts"))
        );
        assert_eq!(
            header(&v2(0x21, 0x11, &[0; 12])[..20]).await.0,
            Err(ProxyError::Closed)
        );
    }
}
