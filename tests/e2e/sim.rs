//! The Manager simulator on the wire: SSO, sessions, representations, search, actions, faults,
//! TLS, scale, users files, the demo and the `sim` command, each checked over loopback against
//! what docs/engine.md says the engine does.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ovirt_gateway::GatewayBody;
use ovirt_gateway::sim::{self, RunningSim, SimOptions};
use ovirt_gateway::{Demo, DemoOptions};
use quick_xml::XmlVersion;
use quick_xml::events::Event;
use serde_json::{Value, json};

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_ovirt-gateway");

/// The id of the Blank template and of the root tag.
const BLANK: &str = "00000000-0000-0000-0000-000000000000";

/// generate.rs `TRICKY_DESCRIPTION`, carried by vm-00003 (and every tenth VM after it).
const TRICKY: &str =
    "Owner <ops@example.com> & \"team\"; see href=\"/ovirt-engine/api/x\" and {query} \u{e9}t\u{e9}";

/// The scope the engine grants for `ovirt-app-api`.
const API_SCOPE: &str = "ovirt-app-api ovirt-ext=token-info:authz-search \
    ovirt-ext=token-info:public-authz-search ovirt-ext=token-info:validate ovirt-ext=token:password-access";

// ---------------------------------------------------------------------------------------------
// Simulators and requests

fn options() -> SimOptions {
    SimOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..SimOptions::default()
    }
}

/// A simulator with the default inventory (4 clusters, 8 hosts, 50 VMs) on an ephemeral port.
async fn simulator() -> RunningSim {
    simulator_with(|_| {}).await
}

/// A simulator with one option changed: `simulator_with(|o| o.gzip = true)`.
async fn simulator_with(change: impl FnOnce(&mut SimOptions)) -> RunningSim {
    let mut options = options();
    change(&mut options);
    sim::start(options)
        .await
        .unwrap_or_else(|e| panic!("simulator: {e}"))
}

/// One request, built like a sentence: `api(&sim, "/vms").by("alice").send().await`.
struct Call {
    origin: String,
    ca_pem: String,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A GET of an API path (`/vms` is `/ovirt-engine/api/vms`), as admin with Basic.
fn api(sim: &RunningSim, path: &str) -> Call {
    raw(sim, &format!("/ovirt-engine/api{path}")).by("admin")
}

/// A GET of any path of the simulator, without credentials.
fn raw(sim: &RunningSim, path: &str) -> Call {
    let origin = sim.api_url().trim_end_matches("/ovirt-engine/api").to_owned();
    Call::new(origin, &sim.pki().ca_pem, path)
}

impl Call {
    fn new(origin: String, ca_pem: &str, path: &str) -> Call {
        Call {
            origin,
            ca_pem: ca_pem.to_owned(),
            method: Method::GET,
            path: path.to_owned(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Call {
        self.headers.insert(name, HeaderValue::from_str(value).unwrap());
        self
    }

    /// Basic credentials of a built-in user (`alice` is `alice@internal:alice`).
    fn by(self, name: &str) -> Call {
        self.basic(&format!("{name}@internal"), name)
    }

    fn basic(self, username: &str, password: &str) -> Call {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        self.header("authorization", &format!("Basic {encoded}"))
    }

    fn bearer(self, token: &str) -> Call {
        self.header("authorization", &format!("Bearer {token}"))
    }

    fn anonymous(mut self) -> Call {
        self.headers.remove("authorization");
        self
    }

    fn accept_json(self) -> Call {
        self.header("accept", "application/json")
    }

    fn persistent(self) -> Call {
        self.header("prefer", "persistent-auth")
    }

    fn cookie(self, cookie: &str) -> Call {
        self.header("cookie", cookie)
    }

    fn with_body(mut self, method: Method, content_type: &str, body: &str) -> Call {
        self.method = method;
        self.body = Bytes::from(body.to_owned());
        self.header("content-type", content_type)
    }

    fn post(self, xml: &str) -> Call {
        self.with_body(Method::POST, "application/xml", xml)
    }

    fn post_json(self, body: &Value) -> Call {
        self.with_body(Method::POST, "application/json", &body.to_string())
    }

    fn form(self, form: &str) -> Call {
        self.with_body(Method::POST, "application/x-www-form-urlencoded", form)
    }

    fn put(self, xml: &str) -> Call {
        self.with_body(Method::PUT, "application/xml", xml)
    }

    fn delete(mut self) -> Call {
        self.method = Method::DELETE;
        self
    }

    fn head(mut self) -> Call {
        self.method = Method::HEAD;
        self
    }

    /// Sends the request over a fresh connection (HTTPS trusting the simulator's CA, offering h2).
    async fn exchange(self) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(client_config_trusting(&self.ca_pem))
            .https_or_http()
            .enable_all_versions()
            .build();
        let client: Client<_, GatewayBody> = Client::builder(TokioExecutor::new()).build(connector);
        let mut request = Request::builder()
            .method(self.method)
            .uri(format!("{}{}", self.origin, self.path))
            .body(GatewayBody::full(self.body))
            .unwrap();
        *request.headers_mut() = self.headers;
        client.request(request).await
    }

    /// Sends the request and asserts a 200 XML answer; returns its root element.
    async fn xml(self) -> Node {
        self.send().await.expect(200, "application/xml").xml()
    }

    /// Sends the request and asserts an XML `<fault>` with this status and reason; returns its detail.
    async fn fails(self, status: u16, reason: &str) -> String {
        self.send().await.fault(status, reason)
    }

    async fn send(self) -> Reply {
        let response = self.exchange().await.unwrap();
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }
}

struct Reply {
    status: StatusCode,
    version: http::Version,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    fn xml(&self) -> Node {
        parse_xml(&self.body)
    }

    /// Asserts the status and content type of an answer.
    fn expect(self, status: u16, content_type: &str) -> Reply {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.header("content-type"), content_type);
        self
    }

    /// Asserts an XML `<fault>` with this status and reason; returns its detail.
    fn fault(self, status: u16, reason: &str) -> String {
        let fault = self.expect(status, "application/xml").xml();
        assert_eq!(fault.name, "fault");
        assert_eq!(fault.text_of("reason"), reason);
        fault.text_of("detail").to_owned()
    }

    /// Asserts a 404 with an empty body, the engine's answer for an object one may not see.
    fn not_found(self) {
        assert_eq!(self.status, 404);
        assert!(self.body.is_empty(), "{}", self.text());
    }
}

#[track_caller]
fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "{part:?} not in {text}");
}

/// Form-encodes a value as the SDK's urlencode does (space as `+`).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// `/vms?search=QUERY`, encoded.
fn vms_where(query: &str) -> String {
    format!("/vms?search={}", encode(query))
}

// ---------------------------------------------------------------------------------------------
// Bodies

/// An XML element: attributes, text (leaves only, exactly as decoded) and children in order.
#[derive(Debug, Default, Clone)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn attr(&self, name: &str) -> &str {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("<{}> has no {name}", self.name))
    }

    fn find(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    fn child(&self, name: &str) -> &Node {
        self.find(name)
            .unwrap_or_else(|| panic!("<{}> has no <{name}>", self.name))
    }

    fn text_of(&self, name: &str) -> &str {
        &self.child(name).text
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Every `href` attribute, at every depth.
    fn hrefs(&self) -> Vec<&str> {
        let own = self
            .attrs
            .iter()
            .filter(|(k, _)| k == "href")
            .map(|(_, v)| v.as_str());
        own.chain(self.children.iter().flat_map(Node::hrefs)).collect()
    }
}

/// Parses a whole XML document with quick-xml (end tags checked) into its root element.
fn parse_xml(body: &[u8]) -> Node {
    let text = String::from_utf8_lossy(body);
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut stack = vec![Node::default()];
    let close = |stack: &mut Vec<Node>| {
        let node = stack.pop().unwrap();
        stack.last_mut().expect("balanced").children.push(node);
    };
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("malformed XML ({e}): {text}"));
        match &event {
            Event::Start(tag) | Event::Empty(tag) => {
                let attrs = tag.attributes().map(|a| {
                    let a = a.unwrap();
                    let value = a.normalized_value(XmlVersion::Implicit1_0).unwrap();
                    (
                        String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                        value.into_owned(),
                    )
                });
                stack.push(Node {
                    name: String::from_utf8_lossy(tag.name().as_ref()).into_owned(),
                    attrs: attrs.collect(),
                    ..Node::default()
                });
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack);
                }
            }
            Event::End(_) => close(&mut stack),
            Event::Text(t) => {
                let decoded = t.xml_content(XmlVersion::Implicit1_0).unwrap();
                stack.last_mut().unwrap().text.push_str(&decoded);
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => match reference.decode().unwrap().as_ref() {
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "amp" => "&".into(),
                        "apos" => "'".into(),
                        "quot" => "\"".into(),
                        other => panic!("unknown entity &{other};"),
                    },
                };
                stack.last_mut().unwrap().text.push_str(&resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack.pop().unwrap();
    assert!(
        stack.is_empty() && document.children.len() == 1,
        "one root: {text}"
    );
    document.children.pop().unwrap()
}

/// The names of the VMs of an XML listing, in order.
fn vm_names(reply: &Reply) -> Vec<String> {
    let vms = reply.xml();
    assert_eq!(vms.name, "vms");
    vms.all("vm").map(|vm| vm.text_of("name").to_owned()).collect()
}

/// The names of the VMs a request lists.
async fn listed(call: Call) -> Vec<String> {
    vm_names(&call.send().await)
}

/// `vm-00010`, the name of the Nth generated VM.
fn vm_name(n: usize) -> String {
    format!("vm-{n:05}")
}

/// The first VM (by name) matching a search, as admin sees it.
async fn vm_where(sim: &RunningSim, query: &str) -> Node {
    let listing = api(sim, &format!("{}&max=1", vms_where(query))).xml().await;
    listing
        .find("vm")
        .unwrap_or_else(|| panic!("no VM where {query}"))
        .clone()
}

/// A VM as admin sees it now.
async fn vm(sim: &RunningSim, id: &str) -> Node {
    api(sim, &format!("/vms/{id}")).xml().await
}

/// POSTs an action on a VM as `user`.
async fn act(sim: &RunningSim, user: &str, id: &str, verb: &str) -> Reply {
    api(sim, &format!("/vms/{id}/{verb}"))
        .by(user)
        .post("<action/>")
        .send()
        .await
}

/// Asserts a completed action: 200 `<action>` with `<status>complete</status>`; returns it.
fn completed(reply: Reply) -> Node {
    let action = reply.expect(200, "application/xml").xml();
    assert_eq!(action.name, "action");
    assert_eq!(action.text_of("status"), "complete");
    action
}

// ---------------------------------------------------------------------------------------------
// SSO

/// A password-grant request with the SDK's exact Accept header and this form.
fn grant(sim: &RunningSim, form: &str) -> Call {
    raw(sim, "/ovirt-engine/sso/oauth/token").form(form).accept_json()
}

fn password_form(username: &str, password: &str) -> String {
    format!(
        "grant_type=password&scope=ovirt-app-api&username={}&password={}",
        encode(username),
        encode(password)
    )
}

/// An SSO token of a built-in user.
async fn token(sim: &RunningSim, user: &str) -> String {
    let reply = grant(sim, &password_form(&format!("{user}@internal"), user))
        .send()
        .await
        .expect(200, "application/json");
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

/// Asserts a 400 SSO error and returns its JSON.
async fn sso_error(call: Call) -> Value {
    call.send().await.expect(400, "application/json").json()
}

/// Asserts a 400 SSO error in the REST-API shape, exactly `{"error_code","error"}` in the engine's
/// order, with this code; returns its message.
async fn sso_refusal(call: Call, code: &str) -> String {
    let error = sso_error(call).await;
    let fields: Vec<&String> = error.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["error_code", "error"], "{error}");
    assert_eq!(error["error_code"], code);
    error["error"].as_str().unwrap().to_owned()
}

/// The status of a GET of the API root with a Bearer token.
async fn root_status(sim: &RunningSim, token: &str) -> StatusCode {
    api(sim, "").bearer(token).send().await.status
}

async fn stats(sim: &RunningSim) -> Value {
    raw(sim, "/sim/stats").send().await.json()
}

/// Opens a persistent session with Basic; returns the `JSESSIONID=...` pair.
async fn open_session(sim: &RunningSim) -> String {
    let reply = api(sim, "")
        .persistent()
        .send()
        .await
        .expect(200, "application/xml");
    let cookie = reply.header("set-cookie");
    cookie.split(';').next().unwrap().to_owned()
}

/// A token grant has the engine's JSON shape: `exp` a string of Long.MAX_VALUE, no `expires_in`.
#[tokio::test]
async fn token_grant_has_the_engine_shape() {
    let sim = simulator().await;
    let reply = grant(&sim, &password_form("admin@internal", "admin"))
        .send()
        .await
        .expect(200, "application/json");
    assert_eq!(reply.header("content-length"), reply.body.len().to_string());
    let body = reply.json();
    let fields: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["access_token", "scope", "exp", "token_type"]);
    assert!(!body["access_token"].as_str().unwrap().is_empty());
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["scope"], API_SCOPE);
    assert_eq!(body["exp"], "9223372036854775807");
}

/// An Accept header other than exactly `application/json` is an invalid_request.
#[tokio::test]
async fn token_grant_needs_the_exact_accept_header() {
    let sim = simulator().await;
    let call = grant(&sim, &password_form("admin@internal", "admin"))
        .header("accept", "application/json; charset=utf-8");
    let message = sso_refusal(call, "invalid_request").await;
    assert_eq!(message, "Missing parameter: 'Accept Header'");
}

/// A grant without grant_type is an invalid_request naming the parameter.
#[tokio::test]
async fn token_grant_without_grant_type_is_refused() {
    let sim = simulator().await;
    let call = grant(
        &sim,
        "scope=ovirt-app-api&username=admin%40internal&password=admin",
    );
    let message = sso_refusal(call, "invalid_request").await;
    assert_eq!(message, "Missing parameter: 'grant_type'");
}

/// A grant without username is an invalid_request naming the parameter.
#[tokio::test]
async fn token_grant_without_username_is_refused() {
    let sim = simulator().await;
    let call = grant(&sim, "grant_type=password&scope=ovirt-app-api&password=admin");
    let message = sso_refusal(call, "invalid_request").await;
    assert_eq!(message, "Missing parameter: 'username'");
}

/// A username without `@profile` is access_denied: "No valid profile found in credentials".
#[tokio::test]
async fn username_without_profile_is_denied() {
    let sim = simulator().await;
    let message = sso_refusal(grant(&sim, &password_form("admin", "admin")), "access_denied").await;
    assert_contains(&message, "No valid profile found in credentials");
}

/// A wrong password in the API scope is `{"error_code":"access_denied","error":...}`.
#[tokio::test]
async fn wrong_password_is_denied_in_the_api_shape() {
    let sim = simulator().await;
    let call = grant(&sim, &password_form("admin@internal", "wrong"));
    assert_eq!(
        sso_refusal(call, "access_denied").await,
        "Cannot authenticate user 'admin@internal': The username or password is incorrect.."
    );
}

/// Outside the REST-API scope the error has the OAuth shape `{"error","error_description"}`.
#[tokio::test]
async fn other_scopes_get_the_oauth_error_shape() {
    let sim = simulator().await;
    let form = "grant_type=password&scope=ovirt-app-admin&username=admin%40internal&password=wrong";
    let error = sso_error(grant(&sim, form)).await;
    let fields: Vec<&String> = error.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["error", "error_description"]);
    assert_eq!(error["error"], "access_denied");
}

/// A grant type other than password is unsupported_grant_type.
#[tokio::test]
async fn other_grant_types_are_unsupported() {
    let sim = simulator().await;
    let form = "grant_type=authorization_code&scope=ovirt-app-api&username=admin%40internal&password=admin";
    sso_refusal(grant(&sim, form), "unsupported_grant_type").await;
}

/// A token-info request in validate mode.
fn token_info(sim: &RunningSim, token: &str) -> Call {
    let form = format!("scope=ovirt-ext%3Dtoken-info%3Avalidate&token={}", encode(token));
    raw(sim, "/ovirt-engine/sso/oauth/token-info")
        .form(&form)
        .accept_json()
}

/// token-info in validate mode answers `{}` for a live token.
#[tokio::test]
async fn token_info_validates_a_live_token() {
    let sim = simulator().await;
    let token = token(&sim, "admin").await;
    let reply = token_info(&sim, &token).send().await;
    assert_eq!(reply.expect(200, "application/json").json(), json!({}));
}

/// token-info in validate mode answers invalid_grant, OAuth shape, for an unknown token.
#[tokio::test]
async fn token_info_rejects_an_unknown_token() {
    let sim = simulator().await;
    let error = sso_error(token_info(&sim, "bm90IGEgdG9rZW4=")).await;
    assert_eq!(error["error"], "invalid_grant");
    assert!(error["error_description"].is_string(), "{error}");
}

/// sso-logout revokes the token (the API then answers 401) and moves the token counters.
#[tokio::test]
async fn sso_logout_revokes_the_token() {
    let sim = simulator().await;
    let token = token(&sim, "admin").await;
    assert_eq!(root_status(&sim, &token).await, 200);
    let before = stats(&sim).await;
    let form = format!("scope=ovirt-app-api&token={}", encode(&token));
    let reply = raw(&sim, "/ovirt-engine/services/sso-logout")
        .form(&form)
        .accept_json()
        .send()
        .await;
    assert_eq!(reply.expect(200, "application/json").json(), json!({}));
    let after = stats(&sim).await;
    let moved = |counter: &str| {
        (
            before[counter].as_u64().unwrap(),
            after[counter].as_u64().unwrap(),
        )
    };
    assert_eq!(moved("active_tokens"), (1, 0));
    assert_eq!(moved("revoked_tokens"), (0, 1));
    assert_eq!(root_status(&sim, &token).await, 401);
}

/// A token used within its TTL keeps living: the timeout is one of inactivity, not age.
#[tokio::test(start_paused = true)]
async fn token_lives_while_it_is_used() {
    let sim = simulator_with(|o| o.token_ttl = Duration::from_secs(60)).await;
    let token = token(&sim, "admin").await;
    for _ in 0..3 {
        tokio::time::advance(Duration::from_secs(45)).await;
        assert_eq!(root_status(&sim, &token).await, 200);
    }
}

/// A token idle for exactly its TTL still works; idle a millisecond longer, it is 401.
#[tokio::test(start_paused = true)]
async fn token_dies_after_its_ttl_idle() {
    let ttl = Duration::from_secs(60);
    let sim = simulator_with(|o| o.token_ttl = ttl).await;
    let token = token(&sim, "admin").await;
    tokio::time::advance(ttl).await;
    assert_eq!(root_status(&sim, &token).await, 200);
    tokio::time::advance(ttl + Duration::from_millis(1)).await;
    assert_eq!(root_status(&sim, &token).await, 401);
}

/// /sim/revoke-all ends every token and persistent session, as an engine restart does.
#[tokio::test]
async fn revoke_all_ends_tokens_and_sessions() {
    let sim = simulator().await;
    let token = token(&sim, "admin").await;
    let session = open_session(&sim).await;
    let revoked = raw(&sim, "/sim/revoke-all").form("").send().await;
    assert_eq!(revoked.json(), json!({"revoked": 1}));
    assert_eq!(root_status(&sim, &token).await, 401);
    let by_cookie = api(&sim, "").anonymous().persistent().cookie(&session);
    assert_eq!(by_cookie.send().await.status, 401);
}

/// Every Basic request is a login of its own; a Bearer request is not; both count as API requests.
#[tokio::test]
async fn basic_logins_are_counted_per_request() {
    let sim = simulator().await;
    for _ in 0..3 {
        api(&sim, "").send().await.expect(200, "application/xml");
    }
    let token = token(&sim, "admin").await;
    assert_eq!(root_status(&sim, &token).await, 200);
    let stats = stats(&sim).await;
    assert_eq!(stats["basic_logins"], 3);
    assert_eq!(stats["sso_logins"], 1);
    assert_eq!(stats["api_requests"], 4);
}

// ---------------------------------------------------------------------------------------------
// Sessions and authentication failures

/// `Prefer: persistent-auth` with Basic sets `JSESSIONID=..; Path=/ovirt-engine/api; HttpOnly`.
#[tokio::test]
async fn persistent_auth_sets_the_session_cookie() {
    let sim = simulator().await;
    let reply = api(&sim, "").persistent().send().await;
    let cookie = reply.header("set-cookie");
    let (pair, attributes) = cookie.split_once(';').unwrap();
    assert!(
        pair.len() > "JSESSIONID=".len() && pair.starts_with("JSESSIONID="),
        "{cookie}"
    );
    assert_eq!(attributes, " Path=/ovirt-engine/api; HttpOnly");
}

/// Under TLS (`self_signed`) the session cookie is also `Secure`.
#[tokio::test]
async fn session_cookie_is_secure_under_tls() {
    let sim = simulator_with(|o| o.self_signed = true).await;
    let reply = api(&sim, "").persistent().send().await;
    let (_, attributes) = reply.header("set-cookie").split_once(';').unwrap();
    assert_eq!(attributes, " Path=/ovirt-engine/api; Secure; HttpOnly");
}

/// The cookie with `Prefer: persistent-auth` and no Authorization is served without a new login.
#[tokio::test]
async fn session_cookie_replaces_credentials() {
    let sim = simulator().await;
    let session = open_session(&sim).await;
    let logins = stats(&sim).await["basic_logins"].clone();
    let reply = api(&sim, "/vms")
        .anonymous()
        .persistent()
        .cookie(&session)
        .send()
        .await;
    let reply = reply.expect(200, "application/xml");
    assert_eq!(vm_names(&reply).len(), 50);
    assert!(reply.headers.get("set-cookie").is_none());
    assert_eq!(stats(&sim).await["basic_logins"], logins);
}

/// A request carrying the cookie without `Prefer: persistent-auth` ends the session.
#[tokio::test]
async fn cookie_without_prefer_ends_the_session() {
    let sim = simulator().await;
    let session = open_session(&sim).await;
    api(&sim, "").cookie(&session).xml().await;
    let reply = api(&sim, "")
        .anonymous()
        .persistent()
        .cookie(&session)
        .send()
        .await;
    assert_eq!(reply.status, 401);
}

/// `Session-TTL: 1` (minutes) on the login makes the session die after one idle minute, not 180.
#[tokio::test(start_paused = true)]
async fn session_ttl_sets_the_idle_lifetime() {
    let sim = simulator().await;
    let reply = api(&sim, "").persistent().header("session-ttl", "1").send().await;
    let session = reply.header("set-cookie").split(';').next().unwrap().to_owned();
    let by_cookie = || api(&sim, "").anonymous().persistent().cookie(&session);
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(by_cookie().send().await.status, 200);
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(by_cookie().send().await.status, 401);
}

/// `Prefer: persistent-auth, new-auth` ignores the session: without credentials it is a 401.
#[tokio::test]
async fn new_auth_ignores_the_session() {
    let sim = simulator().await;
    let session = open_session(&sim).await;
    let reply = api(&sim, "")
        .anonymous()
        .header("prefer", "persistent-auth, new-auth")
        .cookie(&session)
        .send()
        .await;
    assert_eq!(reply.status, 401);
}

/// No credentials: 401 with `WWW-Authenticate: Basic realm="RESTAPI"` and an HTML body.
#[tokio::test]
async fn missing_credentials_are_401_html() {
    let sim = simulator().await;
    let reply = api(&sim, "/vms")
        .anonymous()
        .send()
        .await
        .expect(401, "text/html");
    assert_eq!(reply.header("www-authenticate"), "Basic realm=\"RESTAPI\"");
    assert_contains(reply.text(), "Unauthorized");
}

/// `Version: 4` is served and `Version: 3` is a 400 (4.4 has no v3).
#[tokio::test]
async fn only_version_4_is_served() {
    let sim = simulator().await;
    api(&sim, "").header("version", "4").xml().await;
    let reply = api(&sim, "").header("version", "3").send().await;
    assert_eq!(reply.status, 400);
}

// ---------------------------------------------------------------------------------------------
// Representations

/// An XML VM: the declaration, 4-space indentation, `<actions>` as the first child.
#[tokio::test]
async fn xml_entity_layout() {
    let sim = simulator().await;
    let id = vm_where(&sim, "name=vm-00001").await.attr("id").to_owned();
    let reply = api(&sim, &format!("/vms/{id}"))
        .send()
        .await
        .expect(200, "application/xml");
    let head = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
         <vm href=\"/ovirt-engine/api/vms/{id}\" id=\"{id}\">\n    <actions>\n        <link href="
    );
    assert!(reply.text().starts_with(&head), "{}", reply.text());
    for line in reply.text().lines() {
        let indent = line.len() - line.trim_start().len();
        assert_eq!(indent % 4, 0, "{line:?}");
    }
    assert_eq!(reply.xml().children[0].name, "actions");
}

/// Asserts that the many hrefs of the root and of a followed listing under `base` all start with
/// `{base}/`.
async fn assert_every_href_under(base: &str) {
    let sim = simulator().await;
    for path in ["", "/vms?follow=nics,disk_attachments.disk"] {
        let path = format!("{}{path}", base.trim_start_matches("/ovirt-engine/api"));
        let hrefs: Vec<String> = api(&sim, &path)
            .xml()
            .await
            .hrefs()
            .into_iter()
            .map(String::from)
            .collect();
        assert!(hrefs.len() > 50, "{path}: {hrefs:?}");
        for href in hrefs {
            assert!(href.starts_with(&format!("{base}/")), "{path}: {href}");
        }
    }
}

/// Every href of the root and of a followed listing is path-absolute under /ovirt-engine/api/.
#[tokio::test]
async fn xml_hrefs_are_path_absolute() {
    assert_every_href_under("/ovirt-engine/api").await;
}

/// Under the /v4 path form every href carries /ovirt-engine/api/v4/.
#[tokio::test]
async fn v4_path_form_puts_v4_in_every_href() {
    assert_every_href_under("/ovirt-engine/api/v4").await;
}

/// A JSON entity has no wrapper; booleans and integers are strings, dates numbers.
#[tokio::test]
async fn json_entity_types() {
    let sim = simulator().await;
    let id = vm_where(&sim, "name=vm-00001").await.attr("id").to_owned();
    let reply = api(&sim, &format!("/vms/{id}")).accept_json().send().await;
    let vm = reply.expect(200, "application/json").json();
    assert_eq!(vm["id"], id.as_str());
    assert_eq!(vm["href"], format!("/ovirt-engine/api/vms/{id}"));
    assert_eq!(vm["name"], "vm-00001");
    assert!(vm.get("vm").is_none(), "{vm}");
    assert_eq!(vm["stateless"], "false");
    assert!(vm["memory"].as_str().unwrap().parse::<i64>().unwrap() > 0, "{vm}");
    assert!(vm["creation_time"].is_i64(), "{vm}");
    assert_eq!(vm["actions"]["link"][0]["rel"], "migrate");
}

/// A JSON collection is `{"vm": [...]}`.
#[tokio::test]
async fn json_collection_is_an_array_under_the_singular() {
    let sim = simulator().await;
    let reply = api(&sim, "/vms?max=3").accept_json().send().await;
    let vms = reply.expect(200, "application/json").json();
    let fields: Vec<&String> = vms.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["vm"]);
    assert_eq!(vms["vm"].as_array().unwrap().len(), 3);
}

/// An empty JSON collection is `{}`.
#[tokio::test]
async fn empty_json_collection_is_an_empty_object() {
    let sim = simulator().await;
    let reply = api(&sim, &vms_where("name=nomatch")).accept_json().send().await;
    assert_eq!(reply.expect(200, "application/json").json(), json!({}));
}

/// `?accept=application/json` selects JSON without an Accept header.
#[tokio::test]
async fn accept_parameter_selects_json() {
    let sim = simulator().await;
    let reply = api(&sim, "/vms?max=1&accept=application/json").send().await;
    assert_eq!(
        reply.expect(200, "application/json").json()["vm"][0]["name"],
        "vm-00001"
    );
}

/// The tricky description is escaped in XML and parses back to exactly the same text.
#[tokio::test]
async fn tricky_description_round_trips_in_xml() {
    let sim = simulator().await;
    let reply = api(&sim, &vms_where("name=vm-00003")).send().await;
    assert_contains(reply.text(), "Owner &lt;ops@example.com&gt; &amp; ");
    let listing = reply.xml();
    assert_eq!(listing.child("vm").text_of("description"), TRICKY);
}

/// The tricky description survives JSON escaping.
#[tokio::test]
async fn tricky_description_round_trips_in_json() {
    let sim = simulator().await;
    let reply = api(&sim, &vms_where("name=vm-00003")).accept_json().send().await;
    assert_eq!(reply.json()["vm"][0]["description"], TRICKY);
}

// ---------------------------------------------------------------------------------------------
// The API root

/// The root's `Link` header: absolute URLs from the Host header, sorted, with `{query}` templates.
#[tokio::test]
async fn root_link_header_is_absolute_from_host() {
    let sim = simulator().await;
    let reply = api(&sim, "")
        .header("host", "engine.example.com:8443")
        .send()
        .await;
    let links: Vec<&str> = reply.header("link").split(',').collect();
    let api = "http://engine.example.com:8443/ovirt-engine/api";
    for link in &links {
        assert!(link.starts_with(&format!("<{api}/")), "{link}");
    }
    for expected in [
        format!("<{api}/clusters>; rel=clusters"),
        format!("<{api}/vms?search={{query}}>; rel=vms/search"),
        format!("<{api}/events;from={{event_id}}?search={{query}}>; rel=events/search"),
    ] {
        assert!(links.contains(&expected.as_str()), "{expected} not in {links:?}");
    }
    assert!(links.is_sorted(), "{links:?}");
}

/// The root's summary is there for admin and not for alice (a filtered user).
#[tokio::test]
async fn root_summary_is_for_admins_only() {
    let sim = simulator().await;
    let admin = api(&sim, "").xml().await;
    assert_eq!(admin.child("summary").child("vms").text_of("total"), "50");
    let alice = api(&sim, "").by("alice").xml().await;
    assert!(alice.find("summary").is_none());
}

/// The root's authenticated_user is the caller.
#[tokio::test]
async fn root_names_the_authenticated_user() {
    let sim = simulator().await;
    let users = api(&sim, "/users").xml().await;
    let alice = users
        .all("user")
        .find(|u| u.text_of("name") == "alice")
        .unwrap()
        .attr("id");
    let root = api(&sim, "").by("alice").xml().await;
    let user = root.child("authenticated_user");
    assert_eq!(user.attr("id"), alice);
    assert_eq!(user.attr("href"), format!("/ovirt-engine/api/users/{alice}"));
}

/// special_objects names the Blank template by the all-zero id, and that href resolves.
#[tokio::test]
async fn root_special_objects_name_the_blank_template() {
    let sim = simulator().await;
    let root = api(&sim, "").xml().await;
    let blank = root.child("special_objects").child("blank_template");
    assert_eq!(blank.attr("id"), BLANK);
    let href = blank.attr("href").strip_prefix("/ovirt-engine/api").unwrap();
    assert_eq!(api(&sim, href).xml().await.text_of("name"), "Blank");
}

/// HEAD on the root answers 200 with the Link header and no body.
#[tokio::test]
async fn root_head_has_headers_and_no_body() {
    let sim = simulator().await;
    let reply = api(&sim, "").head().send().await.expect(200, "application/xml");
    assert!(reply.header("link").contains("; rel=vms"));
    assert!(reply.body.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Filtering

/// alice and bob each see their own VMs (every fifth, offset 1 and 2), never the other's.
#[tokio::test]
async fn users_see_disjoint_vm_sets() {
    let sim = simulator().await;
    let alice = listed(api(&sim, "/vms").by("alice")).await;
    let bob = listed(api(&sim, "/vms").by("bob")).await;
    let every_fifth = |from: usize| (from..=50).step_by(5).map(vm_name).collect::<Vec<_>>();
    assert_eq!(alice, every_fifth(1));
    assert_eq!(bob, every_fifth(2));
}

/// One of bob's VMs is a 404 with an empty body for alice.
#[tokio::test]
async fn hidden_vm_is_404_with_empty_body() {
    let sim = simulator().await;
    let bobs = vm_where(&sim, "name=vm-00002").await;
    let path = format!("/vms/{}", bobs.attr("id"));
    api(&sim, &path).by("bob").xml().await;
    api(&sim, &path).by("alice").send().await.not_found();
}

/// A filtered user asking for `filter=false` gets a 403 fault.
#[tokio::test]
async fn unfiltered_view_is_forbidden_to_users() {
    let sim = simulator().await;
    let call = api(&sim, "/vms?filter=false").by("alice");
    let detail = call.fails(403, "Operation Failed").await;
    assert_contains(&detail, "not authorized");
}

/// `Filter: true` is accepted from admin and filters the view: the root loses its summary.
#[tokio::test]
async fn filter_header_filters_an_admin() {
    let sim = simulator().await;
    let root = api(&sim, "").header("filter", "true").send().await;
    assert!(
        root.expect(200, "application/xml")
            .xml()
            .find("summary")
            .is_none()
    );
}

// ---------------------------------------------------------------------------------------------
// Search

/// `name=vm-0001*` matches vm-00010 to vm-00019.
#[tokio::test]
async fn search_by_name_wildcard() {
    let sim = simulator().await;
    let names = listed(api(&sim, &vms_where("name=vm-0001*"))).await;
    assert_eq!(names, (10..=19).map(vm_name).collect::<Vec<_>>());
}

/// `status=up` returns exactly the running VMs.
#[tokio::test]
async fn search_by_status() {
    let sim = simulator().await;
    let all = api(&sim, "/vms").xml().await;
    let running: Vec<&str> = all
        .all("vm")
        .filter(|vm| vm.text_of("status") == "up")
        .map(|vm| vm.text_of("name"))
        .collect();
    assert!(!running.is_empty() && running.len() < 50, "{running:?}");
    assert_eq!(listed(api(&sim, &vms_where("status=up"))).await, running);
}

/// `cluster=cluster-2` returns the VMs placed there (every fourth, from vm-00002).
#[tokio::test]
async fn search_by_cluster_name() {
    let sim = simulator().await;
    let names = listed(api(&sim, &vms_where("cluster=cluster-2"))).await;
    assert_eq!(names, (2..=50).step_by(4).map(vm_name).collect::<Vec<_>>());
}

/// `sortby name desc` lists from vm-00050 down.
#[tokio::test]
async fn search_sorts_descending() {
    let sim = simulator().await;
    let names = listed(api(&sim, &vms_where("sortby name desc"))).await;
    assert_eq!(names, (1..=50).rev().map(vm_name).collect::<Vec<_>>());
}

/// `page 2` with `max=10` is the second ten.
#[tokio::test]
async fn search_pages_by_max() {
    let sim = simulator().await;
    let path = format!("{}&max=10", vms_where("page 2"));
    let names = listed(api(&sim, &path)).await;
    assert_eq!(names, (11..=20).map(vm_name).collect::<Vec<_>>());
}

/// Search ignores case unless `case_sensitive=true`.
#[tokio::test]
async fn case_sensitive_search() {
    let sim = simulator().await;
    let path = vms_where("name=VM-00001");
    assert_eq!(listed(api(&sim, &path)).await, [vm_name(1)]);
    let sensitive = api(&sim, &format!("{path}&case_sensitive=true")).send().await;
    assert!(vm_names(&sensitive).is_empty());
}

/// A search on a field VMs do not have is a 400 fault naming it.
#[tokio::test]
async fn unknown_search_field_is_400() {
    let sim = simulator().await;
    let detail = api(&sim, &vms_where("colour=red"))
        .fails(400, "Operation Failed")
        .await;
    assert_contains(&detail, "'colour'");
}

/// A `max` that is not a number is a 400 fault.
#[tokio::test]
async fn bad_max_is_400() {
    let sim = simulator().await;
    let detail = api(&sim, "/vms?max=ten").fails(400, "Operation Failed").await;
    assert_eq!(detail, "Invalid value 'ten' for parameter 'max'");
}

/// `follow=nics,disk_attachments.disk` inlines the nics, and the disk inside its attachment.
#[tokio::test]
async fn follow_inlines_nics_and_attached_disks() {
    let sim = simulator().await;
    let id = vm_where(&sim, "name=vm-00001").await.attr("id").to_owned();
    let path = format!("/vms/{id}?follow=nics,disk_attachments.disk");
    let vm = api(&sim, &path).xml().await;
    assert_eq!(vm.child("nics").child("nic").text_of("name"), "nic1");
    let disk = vm
        .child("disk_attachments")
        .child("disk_attachment")
        .child("disk");
    assert_eq!(disk.text_of("name"), "vm-00001_Disk1");
    assert!(disk.attr("href").starts_with("/ovirt-engine/api/disks/"));
    let rels: Vec<&str> = vm.all("link").map(|l| l.attr("rel")).collect();
    assert_eq!(rels, ["permissions", "snapshots"]);
}

// ---------------------------------------------------------------------------------------------
// Actions

/// Starting a down VM completes with a job; the VM is then up on a host.
#[tokio::test]
async fn start_completes_with_a_job() {
    let sim = simulator().await;
    let id = vm_where(&sim, "status=down").await.attr("id").to_owned();
    let action = completed(act(&sim, "admin", &id, "start").await);
    let job = action.child("job");
    assert_eq!(
        job.attr("href"),
        format!("/ovirt-engine/api/jobs/{}", job.attr("id"))
    );
    let started = vm(&sim, &id).await;
    assert_eq!(started.text_of("status"), "up");
    assert!(
        started
            .child("host")
            .attr("href")
            .starts_with("/ovirt-engine/api/hosts/")
    );
}

/// Starting a running VM is a 409 `<action>` holding the fault.
#[tokio::test]
async fn start_of_a_running_vm_is_409_action_fault() {
    let sim = simulator().await;
    let id = vm_where(&sim, "status=up").await.attr("id").to_owned();
    let reply = act(&sim, "admin", &id, "start").await;
    let action = reply.expect(409, "application/xml").xml();
    assert_eq!(action.name, "action");
    assert_eq!(action.text_of("status"), "failed");
    assert_eq!(
        action.child("fault").text_of("detail"),
        "[Cannot run VM. VM is running.]"
    );
}

/// Stopping a running VM leaves it down without a host.
#[tokio::test]
async fn stop_powers_a_vm_off() {
    let sim = simulator().await;
    let id = vm_where(&sim, "status=up").await.attr("id").to_owned();
    completed(act(&sim, "admin", &id, "stop").await);
    let stopped = vm(&sim, &id).await;
    assert_eq!(stopped.text_of("status"), "down");
    assert!(stopped.find("host").is_none());
}

/// alice (UserRole on her VM) may power it on or off.
#[tokio::test]
async fn user_acts_on_her_own_vm() {
    let sim = simulator().await;
    let mine = vm_where(&sim, "name=vm-00001").await;
    let verb = if mine.text_of("status") == "up" {
        "stop"
    } else {
        "start"
    };
    completed(act(&sim, "alice", mine.attr("id"), verb).await);
}

/// alice may not remove her own VM: 403 fault.
#[tokio::test]
async fn user_may_not_remove_her_vm() {
    let sim = simulator().await;
    let mine = vm_where(&sim, "name=vm-00001").await;
    let call = api(&sim, &format!("/vms/{}", mine.attr("id"))).by("alice");
    call.delete().fails(403, "Operation Failed").await;
}

/// Migrating a running VM moves it to another host of its cluster.
#[tokio::test]
async fn migrate_moves_to_another_host() {
    let sim = simulator().await;
    let running = vm_where(&sim, "status=up").await;
    let id = running.attr("id");
    completed(act(&sim, "admin", id, "migrate").await);
    let moved = vm(&sim, id).await;
    assert_eq!(moved.text_of("status"), "up");
    assert_ne!(moved.child("host").attr("id"), running.child("host").attr("id"));
}

/// An action adds an event; `from=N` lists only the events after N.
#[tokio::test]
async fn events_grow_and_from_filters() {
    let sim = simulator().await;
    let ids =
        |events: Node| -> Vec<String> { events.all("event").map(|e| e.attr("id").to_owned()).collect() };
    let before = ids(api(&sim, "/events").xml().await);
    assert_eq!(before.len(), 20);
    assert_eq!(before[0], "20");
    let down = vm_where(&sim, "status=down").await;
    completed(act(&sim, "admin", down.attr("id"), "start").await);
    assert_eq!(ids(api(&sim, "/events").xml().await).len(), 21);
    let newer = api(&sim, "/events;from=20").xml().await;
    assert_eq!(ids(newer.clone()), ["21"]);
    let text = newer.child("event").text_of("description").to_owned();
    assert_contains(&text, "was started by admin@internal");
}

// ---------------------------------------------------------------------------------------------
// Adding, updating, removing

const NEW_VM: &str = "<vm><name>added</name><cluster><name>cluster-1</name></cluster></vm>";

/// Adding a VM answers 201 with the VM and an absolute Location built from the Host header.
#[tokio::test]
async fn add_vm_is_201_with_absolute_location() {
    let sim = simulator().await;
    let reply = api(&sim, "/vms")
        .post(NEW_VM)
        .send()
        .await
        .expect(201, "application/xml");
    let vm = reply.xml();
    assert_eq!(vm.text_of("name"), "added");
    assert_eq!(vm.text_of("status"), "down");
    let id = vm.attr("id");
    let expected = format!("http://{}/ovirt-engine/api/vms/{id}", sim.addr());
    assert_eq!(reply.header("location"), expected);
}

/// Adding a VM without a name is a 400 "Incomplete parameters" fault.
#[tokio::test]
async fn add_vm_without_name_is_400() {
    let sim = simulator().await;
    let body = "<vm><cluster><name>cluster-1</name></cluster></vm>";
    api(&sim, "/vms")
        .post(body)
        .fails(400, "Incomplete parameters")
        .await;
}

/// Adding a VM under a name in use is a 409 fault.
#[tokio::test]
async fn add_vm_with_a_taken_name_is_409() {
    let sim = simulator().await;
    let body = NEW_VM.replace("added", "vm-00001");
    let detail = api(&sim, "/vms").post(&body).fails(409, "Operation Failed").await;
    assert_contains(&detail, "name is already in use");
}

/// A malformed XML body is a 400 "Request syntactically incorrect." fault.
#[tokio::test]
async fn malformed_body_is_400() {
    let sim = simulator().await;
    let call = api(&sim, "/vms").post("<vm><name>x</name>");
    let detail = call.fails(400, "Request syntactically incorrect.").await;
    assert!(
        detail.starts_with("For correct usage, see: http://127.0.0.1:"),
        "{detail}"
    );
}

/// A JSON body adds a VM and gets a JSON answer.
#[tokio::test]
async fn add_vm_from_json() {
    let sim = simulator().await;
    let body = json!({"name": "from-json", "cluster": {"name": "cluster-2"}});
    let reply = api(&sim, "/vms").post_json(&body).accept_json().send().await;
    let reply = reply.expect(201, "application/json");
    let vm = reply.json();
    assert_eq!(vm["name"], "from-json");
    assert!(reply.header("location").ends_with(vm["id"].as_str().unwrap()));
}

/// Updating a VM answers 200 with the change, which a later GET shows.
#[tokio::test]
async fn update_vm_is_200() {
    let sim = simulator().await;
    let id = vm_where(&sim, "name=vm-00001").await.attr("id").to_owned();
    let change = "<vm><description>changed</description><memory>2147483648</memory></vm>";
    let answer = api(&sim, &format!("/vms/{id}")).put(change).xml().await;
    assert_eq!(answer.text_of("description"), "changed");
    let now = vm(&sim, &id).await;
    assert_eq!(
        (now.text_of("description"), now.text_of("memory")),
        ("changed", "2147483648")
    );
}

/// Removing a running VM is a 409 fault.
#[tokio::test]
async fn remove_of_a_running_vm_is_409() {
    let sim = simulator().await;
    let id = vm_where(&sim, "status=up").await.attr("id").to_owned();
    let detail = api(&sim, &format!("/vms/{id}"))
        .delete()
        .fails(409, "Operation Failed")
        .await;
    assert_eq!(detail, "[Cannot remove VM. VM is running.]");
}

/// Removing a down VM answers 200 with an `<action>`; the VM is then a 404 with an empty body.
#[tokio::test]
async fn remove_of_a_down_vm_is_200_then_404() {
    let sim = simulator().await;
    let path = format!("/vms/{}", vm_where(&sim, "status=down").await.attr("id"));
    let action = completed(api(&sim, &path).delete().send().await);
    assert!(
        action
            .child("job")
            .attr("href")
            .starts_with("/ovirt-engine/api/jobs/")
    );
    api(&sim, &path).send().await.not_found();
}

// ---------------------------------------------------------------------------------------------
// Correlation-Id

/// A Correlation-Id is echoed as sent.
#[tokio::test]
async fn correlation_id_is_echoed() {
    let sim = simulator().await;
    let reply = api(&sim, "").header("correlation-id", "run-42_a").send().await;
    assert_eq!(reply.header("correlation-id"), "run-42_a");
}

/// Characters outside `[0-9a-zA-Z_-]` are dropped and the id is cut at 36 characters.
#[tokio::test]
async fn correlation_id_is_sanitised() {
    let sim = simulator().await;
    let echo = async |sent: &str| {
        let reply = api(&sim, "").header("correlation-id", sent).send().await;
        reply.header("correlation-id").to_owned()
    };
    assert_eq!(echo("a.b:c/d e-f_g").await, "abcde-f_g");
    let at_limit = "x".repeat(36);
    assert_eq!(echo(&at_limit).await, at_limit);
    assert_eq!(echo(&format!("{at_limit}y")).await, at_limit);
}

/// Without a Correlation-Id each answer carries a new UUID.
#[tokio::test]
async fn correlation_id_is_generated_when_absent() {
    let sim = simulator().await;
    let first = api(&sim, "").send().await.header("correlation-id").to_owned();
    let second = api(&sim, "").send().await.header("correlation-id").to_owned();
    let lengths: Vec<usize> = first.split('-').map(str::len).collect();
    assert_eq!(lengths, [8, 4, 4, 4, 12], "{first}");
    assert_ne!(first, second);
}

// ---------------------------------------------------------------------------------------------
// gzip

/// With `gzip` and `Accept-Encoding: gzip` the body is gzip, with `Vary: Accept-Encoding`.
#[tokio::test]
async fn gzip_when_accepted() {
    use std::io::Read;
    let sim = simulator_with(|o| o.gzip = true).await;
    let reply = api(&sim, "/vms").header("accept-encoding", "gzip").send().await;
    assert_eq!(reply.header("content-encoding"), "gzip");
    assert_eq!(reply.header("vary"), "Accept-Encoding");
    assert!(reply.headers.get("content-length").is_none());
    let mut xml = Vec::new();
    flate2::read::GzDecoder::new(&reply.body[..])
        .read_to_end(&mut xml)
        .unwrap();
    assert_eq!(parse_xml(&xml).all("vm").count(), 50);
}

/// With `gzip` but no Accept-Encoding the body is plain.
#[tokio::test]
async fn plain_without_accept_encoding() {
    let sim = simulator_with(|o| o.gzip = true).await;
    let reply = api(&sim, "/vms").send().await;
    assert!(reply.headers.get("content-encoding").is_none());
    assert_eq!(vm_names(&reply).len(), 50);
}

// ---------------------------------------------------------------------------------------------
// Fault injection

/// POSTs fault settings to /sim/faults.
fn set_faults(sim: &RunningSim, faults: &Value) -> Call {
    raw(sim, "/sim/faults").post_json(faults)
}

/// Sets faults that every later API request suffers.
async fn inject(sim: &RunningSim, faults: Value) {
    set_faults(sim, &faults)
        .send()
        .await
        .expect(200, "application/json");
}

fn content_length(response: &Response<Incoming>) -> usize {
    response.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// `error_rate: 1` makes every API request a 503; the health check still answers 200.
#[tokio::test]
async fn error_rate_fails_the_api_but_not_health() {
    let sim = simulator().await;
    inject(&sim, json!({"error_rate": 1, "error_status": 503})).await;
    for path in ["", "/vms"] {
        assert_eq!(api(&sim, path).send().await.status, 503, "{path}");
    }
    let health = raw(&sim, "/ovirt-engine/services/health").send().await;
    assert_eq!(
        health.expect(200, "text/html").text(),
        "DB Up!Welcome to Health Status!"
    );
}

/// A reset before the body: the client gets no response at all.
#[tokio::test]
async fn reset_before_body_is_a_connection_error() {
    let sim = simulator().await;
    inject(&sim, json!({"reset_rate": 1, "reset_phase": "before_body"})).await;
    let error = api(&sim, "/vms").exchange().await.unwrap_err();
    assert!(!error.is_connect(), "{error}");
}

/// A reset during the body: the headers and half the body arrive, then the body fails.
#[tokio::test]
async fn reset_during_body_truncates_it() {
    let sim = simulator().await;
    inject(&sim, json!({"reset_rate": 1, "reset_phase": "during_body"})).await;
    let response = api(&sim, "").exchange().await.unwrap();
    assert_eq!(response.status(), 200);
    let length = content_length(&response);
    let mut body = response.into_body();
    let mut received = 0;
    let error = loop {
        match body.frame().await.expect("the body fails before its end") {
            Ok(frame) => received += frame.into_data().map_or(0, |d| d.len()),
            Err(error) => break error,
        }
    };
    assert_eq!(received, length / 2, "{error}");
}

/// A stall: half of the body arrives, then nothing more, ever.
#[tokio::test(start_paused = true)]
async fn stall_keeps_the_body_open() {
    let sim = simulator().await;
    inject(&sim, json!({"stall_rate": 1})).await;
    let response = api(&sim, "").exchange().await.unwrap();
    let length = content_length(&response);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first.len(), length / 2);
    // Time is paused: the timeout fires as soon as nothing else can happen.
    let next = tokio::time::timeout(Duration::from_secs(3600), body.frame()).await;
    assert!(next.is_err(), "the body went on: {next:?}");
}

/// Out-of-range or unknown fault settings are a 400 naming the field, and change nothing.
#[tokio::test]
async fn bad_fault_settings_are_refused() {
    let sim = simulator().await;
    for (faults, field) in [
        (json!({"error_rate": 2}), "error_rate"),
        (json!({"error_status": 404}), "error_status"),
        (json!({"latency_ms": [50, 10]}), "latency_ms"),
        (json!({"stall_ratio": 1}), "stall_ratio"),
    ] {
        let error = set_faults(&sim, &faults).send().await;
        let error = error.expect(400, "application/json").json();
        assert_contains(error["error"].as_str().unwrap(), field);
    }
    let current = raw(&sim, "/sim/faults").send().await.json();
    assert_eq!(current["error_rate"], 0.0);
    assert_eq!(current["error_status"], 503);
}

/// GET /sim/faults shows the settings last posted, defaults filled in.
#[tokio::test]
async fn fault_settings_are_shown() {
    let sim = simulator().await;
    inject(&sim, json!({"latency_ms": [10, 50], "error_rate": 0.25})).await;
    assert_eq!(
        raw(&sim, "/sim/faults")
            .send()
            .await
            .expect(200, "application/json")
            .json(),
        json!({
            "latency_ms": [10, 50], "error_rate": 0.25, "error_status": 503,
            "reset_rate": 0.0, "reset_phase": "before_body", "stall_rate": 0.0, "leak_token": null,
        })
    );
}

// ---------------------------------------------------------------------------------------------
// TLS and scale

/// With `self_signed`, HTTPS serves the simulator's CA at the engine's pki-resource URL.
#[tokio::test]
async fn self_signed_serves_its_ca() {
    let sim = simulator_with(|o| o.self_signed = true).await;
    assert!(sim.api_url().starts_with("https://127.0.0.1:"));
    let path = "/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA";
    let reply = raw(&sim, path).send().await;
    assert_eq!(
        reply.expect(200, "application/x-x509-ca-cert").text(),
        sim.pki().ca_pem
    );
}

/// With `self_signed`, ALPN picks HTTP/1.1 even for a client offering h2, as the engine's Apache.
#[tokio::test]
async fn self_signed_speaks_http1_only() {
    let sim = simulator_with(|o| o.self_signed = true).await;
    let reply = api(&sim, "/vms?max=1")
        .send()
        .await
        .expect(200, "application/xml");
    assert_eq!(reply.version, http::Version::HTTP_11);
}

/// A listing of 20000 VMs is complete and streamed: no length, several body frames.
#[tokio::test]
async fn large_listing_is_streamed() {
    let sim = simulator_with(|o| o.sizes.vms = 20_000).await;
    let response = api(&sim, "/vms").exchange().await.unwrap();
    assert!(response.headers().get("content-length").is_none());
    let mut body = response.into_body();
    let (mut frames, mut xml) = (0, Vec::new());
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            frames += 1;
            xml.extend_from_slice(&data);
        }
    }
    assert!(frames > 1, "one frame");
    let text = String::from_utf8(xml).unwrap();
    assert_eq!(text.matches("<vm ").count(), 20_000);
    assert!(text.ends_with("</vms>\n"));
}

// ---------------------------------------------------------------------------------------------
// Users files

/// Starts a simulator with a users file holding `toml`.
async fn with_users(toml: &str) -> Result<RunningSim, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    std::fs::write(&path, toml).unwrap();
    let options = SimOptions {
        users: Some(path),
        ..options()
    };
    sim::start(options).await
}

const DAVE: &str = "[[user]]\nname = \"dave@internal\"\npassword = \"dave\"\n\
                    grants = [{ role = \"UserRole\", on = \"vm:vm-00007\" }]\n";

/// The users of a users file log in and see what they are granted; the built-in ones are gone.
#[tokio::test]
async fn users_file_replaces_the_built_in_users() {
    let sim = with_users(DAVE).await.unwrap();
    let dave = api(&sim, "/vms").basic("dave@internal", "dave").send().await;
    assert_eq!(vm_names(&dave), [vm_name(7)]);
    assert_eq!(
        api(&sim, "").send().await.status,
        401,
        "admin is not a user any more"
    );
}

/// An unknown role in a users file stops the start with a message naming it.
#[tokio::test]
async fn users_file_with_an_unknown_role_fails() {
    let error = with_users(&DAVE.replace("UserRole", "Wizard"))
        .await
        .err()
        .unwrap();
    assert_contains(&error, "unknown role `Wizard`");
}

/// A grant on an object that does not exist stops the start with a message naming it.
#[tokio::test]
async fn users_file_with_an_unknown_object_fails() {
    let error = with_users(&DAVE.replace("vm-00007", "vm-99999"))
        .await
        .err()
        .unwrap();
    assert_contains(&error, "`vm:vm-99999` names no object");
}

// ---------------------------------------------------------------------------------------------
// The demo and the command line

async fn demo(dir: &tempfile::TempDir) -> Demo {
    let ephemeral = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    Demo::start(DemoOptions {
        listen: ephemeral,
        admin: ephemeral,
        dir: dir.path().to_owned(),
        prefix: None,
    })
    .await
    .unwrap_or_else(|e| panic!("demo: {e}"))
}

/// The demo writes the CA it uses to ca.pem and the listener's key readable by its owner only.
#[tokio::test]
async fn demo_writes_its_ca_and_a_private_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(&dir).await;
    assert_eq!(demo.ca_file, dir.path().join("ca.pem"));
    assert_eq!(
        std::fs::read_to_string(&demo.ca_file).unwrap(),
        demo.sim.pki().ca_pem
    );
    let key = std::fs::metadata(dir.path().join("tls/gateway.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    demo.shutdown().await;
}

/// The demo's instructions name the gateway's API URL and the CA file.
#[tokio::test]
async fn demo_instructions_name_the_url_and_ca() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(&dir).await;
    let text = demo.instructions();
    let url = format!("https://{}/ovirt-engine/api", demo.gateway.public_addr());
    assert_contains(&text, &url);
    assert_contains(&text, &demo.ca_file.display().to_string());
    demo.shutdown().await;
}

/// Through the demo's gateway, HTTPS trusting ca.pem with Basic admin lists a VM; shutdown returns.
#[tokio::test]
async fn demo_serves_the_api_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(&dir).await;
    let ca = std::fs::read_to_string(&demo.ca_file).unwrap();
    let origin = format!("https://{}", demo.gateway.public_addr());
    let reply = Call::new(origin, &ca, "/ovirt-engine/api/vms?max=1")
        .by("admin")
        .send()
        .await
        .expect(200, "application/xml");
    assert_eq!(vm_names(&reply), [vm_name(1)]);
    tokio::time::timeout(Duration::from_secs(30), demo.shutdown())
        .await
        .expect("the demo stops");
}

/// Through the demo's HTTPS gateway, `Prefer: persistent-auth` gets the gateway's cookie, marked
/// Secure (and never the simulator's JSESSIONID).
#[tokio::test]
async fn demo_session_cookie_is_secure() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(&dir).await;
    let ca = std::fs::read_to_string(&demo.ca_file).unwrap();
    let origin = format!("https://{}", demo.gateway.public_addr());
    let reply = Call::new(origin, &ca, "/ovirt-engine/api")
        .by("admin")
        .persistent()
        .send()
        .await
        .expect(200, "application/xml");
    let cookie = reply.header("set-cookie");
    assert!(cookie.starts_with("OVIRT_GATEWAY_SESSION="), "{cookie}");
    assert!(
        cookie.ends_with("; Path=/ovirt-engine/api; Secure; HttpOnly"),
        "{cookie}"
    );
}

/// `ovirt-gateway sim --listen 127.0.0.1:0` prints its API URL first, and serves there.
#[tokio::test]
async fn sim_command_prints_its_url_first() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(BIN)
        .args(["sim", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("a first line")
        .unwrap()
        .unwrap();
    let port = first
        .strip_prefix("ovirt-gateway sim listening on http://127.0.0.1:")
        .and_then(|rest| rest.strip_suffix("/ovirt-engine/api"))
        .and_then(|port| port.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("{first}"));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (status, _, _) = get(addr, "/ovirt-engine/services/health").await;
    assert_eq!(status, 200);
    child.kill().await.unwrap();
}

/// `--latency-ms 5-1` is refused with a usage error saying the range must be LOW-HIGH.
#[test]
fn sim_command_rejects_an_inverted_latency_range() {
    let output = std::process::Command::new(BIN)
        .args(["sim", "--latency-ms", "5-1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_contains(&stderr, "--latency-ms");
    assert_contains(&stderr, "`5-1`: the range must be LOW-HIGH");
}
