//! The suite's HTTP client: one request built like a sentence, sent over a fresh connection to a
//! gateway or a simulator, plain HTTP or HTTPS trusting a given CA:
//! `api(&sim, "/vms").by("alice").accept_json().send().await`,
//! `Call::to(&gateway, "/ovirt-engine/api/vms").secrets().send().await`.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ovirt_gateway::sim::RunningSim;
use ovirt_gateway::{GatewayBody, Running};
use serde_json::Value;

use super::xml::{Node, element, parse_xml};
use super::{SECRET_BEARER, SECRET_COOKIE, client_config_trusting};

/// Where a request goes: `http://ADDR` for an address or a gateway, or an origin as written
/// (`https://localhost:8443`).
pub trait Origin {
    fn origin(&self) -> String;
}

impl Origin for SocketAddr {
    fn origin(&self) -> String {
        format!("http://{self}")
    }
}

impl Origin for &Running {
    fn origin(&self) -> String {
        self.public_addr().origin()
    }
}

impl Origin for &str {
    fn origin(&self) -> String {
        (*self).to_owned()
    }
}

impl Origin for String {
    fn origin(&self) -> String {
        self.clone()
    }
}

impl Origin for &String {
    fn origin(&self) -> String {
        (*self).clone()
    }
}

/// A GET of an API path of the simulator (`/vms` is `/ovirt-engine/api/vms`), as admin with Basic.
pub fn api(sim: &RunningSim, path: &str) -> Call {
    raw(sim, &format!("/ovirt-engine/api{path}")).by("admin")
}

/// A GET of any path of the simulator, without credentials (over HTTPS trusting its CA when it
/// serves TLS).
pub fn raw(sim: &RunningSim, path: &str) -> Call {
    Call::to(sim_origin(sim), path).trusting(&sim.pki().ca_pem)
}

/// The simulator's origin: `http://127.0.0.1:PORT`, or `https://` with `self_signed`.
pub fn sim_origin(sim: &RunningSim) -> String {
    let url = sim.api_url();
    url.strip_suffix("/ovirt-engine/api").unwrap_or(&url).to_owned()
}

/// Basic credentials: `Basic base64(user:password)`.
pub fn credentials(user: &str, password: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// One request: origin, method, path, headers and body.
pub struct Call {
    origin: String,
    ca_pem: Option<String>,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: GatewayBody,
}

impl Call {
    /// A GET of `path` at `origin`, without headers.
    pub fn to(origin: impl Origin, path: &str) -> Call {
        Call {
            origin: origin.origin(),
            ca_pem: None,
            method: Method::GET,
            path: path.to_owned(),
            headers: HeaderMap::new(),
            body: GatewayBody::empty(),
        }
    }

    /// Trusts only the CA in `ca_pem` for an `https://` origin.
    pub fn trusting(mut self, ca_pem: &str) -> Call {
        self.ca_pem = Some(ca_pem.to_owned());
        self
    }

    /// Sets a header (replacing one of the same name).
    pub fn header(mut self, name: &str, value: &str) -> Call {
        self.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    /// Sets each of `headers`.
    pub fn headers(self, headers: &[(&str, &str)]) -> Call {
        headers
            .iter()
            .fold(self, |call, (name, value)| call.header(name, value))
    }

    /// Basic credentials of a simulator user, whose password is its name: `alice` and
    /// `alice@internal` are both `alice@internal:alice`.
    pub fn by(self, user: &str) -> Call {
        match user.split_once('@') {
            Some((name, _)) => self.basic(user, name),
            None => self.basic(&format!("{user}@internal"), user),
        }
    }

    pub fn basic(self, username: &str, password: &str) -> Call {
        self.header("authorization", &credentials(username, password))
    }

    pub fn bearer(self, token: &str) -> Call {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// The suite's secrets: [`SECRET_BEARER`] as Authorization and [`SECRET_COOKIE`].
    pub fn secrets(self) -> Call {
        self.header("authorization", SECRET_BEARER)
            .header("cookie", SECRET_COOKIE)
    }

    pub fn anonymous(mut self) -> Call {
        self.headers.remove("authorization");
        self
    }

    pub fn accept(self, media_type: &str) -> Call {
        self.header("accept", media_type)
    }

    pub fn accept_json(self) -> Call {
        self.accept("application/json")
    }

    pub fn persistent(self) -> Call {
        self.header("prefer", "persistent-auth")
    }

    pub fn cookie(self, cookie: &str) -> Call {
        self.header("cookie", cookie)
    }

    /// Any method, `PROPFIND` included.
    pub fn method(mut self, method: &str) -> Call {
        self.method = Method::from_bytes(method.as_bytes()).unwrap();
        self
    }

    /// A body as is, without a content type.
    pub fn body(mut self, body: impl Into<Bytes>) -> Call {
        self.body = GatewayBody::full(body.into());
        self
    }

    /// A streamed body.
    pub fn stream(mut self, body: GatewayBody) -> Call {
        self.body = body;
        self
    }

    pub fn with_body(self, method: &str, content_type: &str, body: &str) -> Call {
        self.method(method)
            .body(body.to_owned())
            .header("content-type", content_type)
    }

    pub fn post(self, xml: &str) -> Call {
        self.with_body("POST", "application/xml", xml)
    }

    pub fn post_json(self, body: &Value) -> Call {
        self.with_body("POST", "application/json", &body.to_string())
    }

    pub fn form(self, form: &str) -> Call {
        self.with_body("POST", "application/x-www-form-urlencoded", form)
    }

    pub fn put(self, xml: &str) -> Call {
        self.with_body("PUT", "application/xml", xml)
    }

    pub fn delete(self) -> Call {
        self.method("DELETE")
    }

    pub fn head(self) -> Call {
        self.method("HEAD")
    }

    /// Sends the request over a fresh connection (HTTPS offering h2 and HTTP/1.1); the answer as
    /// it starts, its body still to read.
    pub async fn exchange(self) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        let tls = match &self.ca_pem {
            Some(ca_pem) => client_config_trusting(ca_pem),
            None => rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .build();
        let client: Client<_, GatewayBody> = Client::builder(TokioExecutor::new()).build(connector);
        let mut request = Request::builder()
            .method(self.method)
            .uri(format!("{}{}", self.origin, self.path))
            .body(self.body)
            .unwrap();
        *request.headers_mut() = self.headers;
        client.request(request).await
    }

    /// Sends the request and reads the whole answer.
    pub async fn send(self) -> Reply {
        let response = self.exchange().await.unwrap();
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    /// Sends the request and reads the answer, which may be cut before its end.
    pub async fn attempt(self) -> Attempt {
        let response = self.exchange().await.unwrap();
        let (parts, body) = response.into_parts();
        let body = match body.collect().await {
            Ok(collected) => Ok(String::from_utf8_lossy(&collected.to_bytes()).into_owned()),
            Err(error) => Err(error.to_string()),
        };
        Attempt {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Sends the request and asserts a 200 XML answer; returns its root element.
    pub async fn xml(self) -> Node {
        self.send().await.expect(200, "application/xml").xml()
    }

    /// Sends the request and asserts an XML `<fault>` with this status and reason; returns its
    /// detail.
    pub async fn fails(self, status: u16, reason: &str) -> String {
        self.send().await.fault(status, reason)
    }
}

/// A whole answer.
pub struct Reply {
    pub status: StatusCode,
    pub version: http::Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    pub fn xml(&self) -> Node {
        parse_xml(&self.body)
    }

    /// The `<reason>` of an XML fault body.
    pub fn reason(&self) -> &str {
        element(self.text(), "reason")
    }

    /// Asserts the status and content type of an answer.
    pub fn expect(self, status: u16, content_type: &str) -> Reply {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.header("content-type"), content_type);
        self
    }

    /// Asserts an XML `<fault>` with this status and reason; returns its detail.
    pub fn fault(self, status: u16, reason: &str) -> String {
        let fault = self.expect(status, "application/xml").xml();
        assert_eq!(fault.name, "fault");
        assert_eq!(fault.text_of("reason"), reason);
        fault.text_of("detail").to_owned()
    }

    /// Asserts a 404 with an empty body, the engine's answer for an object one may not see.
    pub fn not_found(self) {
        assert_eq!(self.status, 404);
        assert!(self.body.is_empty(), "{}", self.text());
    }
}

/// What a client got of an answer that may be cut: the head, and the whole body or why not.
pub struct Attempt {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Result<String, String>,
}
