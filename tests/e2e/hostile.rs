//! The gateway tried as an attacker would (docs/security.md): a logged-in low-privilege user and
//! an anonymous client, against the simulator, with the shipped policies enforced where a
//! policy is part of the way around. Each test shows the way open directly at the Manager and
//! closed through the gateway.

use std::net::SocketAddr;

use http::StatusCode;
use ovirt_gateway::sim::RunningSim;

use crate::support::*;

/// A gateway in front of `sim`, users logging in with Basic, rate limits off.
fn gateway(sim: &RunningSim) -> GatewayConfig {
    GatewayConfig::new()
        .manager("sim", &sim.api_url())
        .passthrough(false)
        .rate_limit("enabled = false")
}

/// The same with the shipped policies enforced.
fn guarded(sim: &RunningSim, policies: &tempfile::TempDir) -> GatewayConfig {
    gateway(sim).policies(policies.path())
}

/// The id of the first VM `user` sees.
async fn first_vm(addr: SocketAddr, user: &str) -> String {
    let reply = Call::to(addr, "/ovirt-engine/api/vms?max=1")
        .by(user)
        .accept("application/xml")
        .send()
        .await;
    let body = reply.text();
    assert_eq!(reply.status, StatusCode::OK, "{body}");
    let start = body.find(" id=\"").unwrap() + 5;
    body[start..start + 36].to_owned()
}

const SPICE: &str = "7370696365";

async fn api_requests(sim: &RunningSim) -> u64 {
    sim_stats(sim).await["api_requests"].as_u64().unwrap()
}

/// Directly, a console GET that asks for the descriptor returns the caller's own token; through
/// the gateway every spelling of it, and the action, is a 403 fault that never reaches the
/// Manager (shipped policies let alice read her VMs and operate them).
#[tokio::test]
async fn console_descriptors_are_refused_in_every_spelling() {
    let sim = simulator().await;
    let policies = shipped_policies();
    let gateway = guarded(&sim, &policies).start().await;
    let addr = gateway.public_addr();
    let vm = first_vm(addr, "alice@internal").await;
    let console = format!("/ovirt-engine/api/vms/{vm}/graphicsconsoles/{SPICE}");

    let token = sim_token(&sim, "alice@internal").await;
    let viewer = [("accept", "application/x-virt-viewer")];
    let direct = Call::to(sim_origin(&sim), &console)
        .bearer(&token)
        .headers(&viewer)
        .attempt()
        .await;
    assert_eq!(direct.status, StatusCode::OK);
    assert!(direct.body.unwrap().contains(&format!("sso-token={token}\n")));

    let v4 = format!("/ovirt-engine/api/v4/vms/{vm}/graphicsconsoles/{SPICE}");
    let query = format!("{console}?accept=application/x-virt-viewer");
    // A matrix value can only hold the type's slash encoded, which no path may (400).
    let matrix = format!("{console};accept=application%2Fx-virt-viewer");
    let action = format!("{console}/remoteviewerconnectionfile");
    let forbidden = StatusCode::FORBIDDEN;
    let spellings: Vec<(&str, &str, &str, StatusCode)> = vec![
        ("GET", &console, "application/x-virt-viewer", forbidden),
        ("GET", &console, "APPLICATION/X-VIRT-VIEWER", forbidden),
        (
            "GET",
            &console,
            "application/x-virt-viewer;q=0.9, application/xml;q=0.1",
            forbidden,
        ),
        ("GET", &console, "*/*", forbidden),
        ("HEAD", &console, "application/x-virt-viewer", forbidden),
        ("GET", &v4, "application/x-virt-viewer", forbidden),
        ("GET", &query, "application/xml", forbidden),
        ("GET", &matrix, "application/xml", StatusCode::BAD_REQUEST),
        ("POST", &action, "application/xml", forbidden),
    ];
    let before = api_requests(&sim).await;
    for (method, path, accept, expected) in spellings {
        let body = if method == "POST" { "<action/>" } else { "" };
        let Attempt {
            status, body: got, ..
        } = Call::to(addr, path)
            .method(method)
            .by("alice@internal")
            .headers(&[("accept", accept), ("content-type", "application/xml")])
            .body(body.to_owned())
            .attempt()
            .await;
        assert_eq!(status, expected, "{method} {path} {accept}");
        if method != "HEAD" && expected == forbidden {
            let got = got.unwrap();
            assert!(got.contains("console descriptors"), "{got}");
        }
    }
    assert_eq!(api_requests(&sim).await, before);
    // The console itself, in XML, is no descriptor.
    let Attempt {
        status, body: got, ..
    } = Call::to(addr, &console)
        .by("alice@internal")
        .accept("application/xml")
        .attempt()
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(got.unwrap().contains("<protocol>spice</protocol>"));
    assert!(
        counter(
            &metrics(&gateway).await,
            "gateway_requests_refused_total{reason=\"console_file\"}"
        ) == 8
    );
}

/// `strip-token`: the descriptor and the action's answer come without their token line, and a
/// descriptor is never cached (two GETs, two requests at the Manager).
#[tokio::test]
async fn strip_token_serves_descriptors_without_the_token() {
    let sim = simulator().await;
    let gateway = gateway(&sim)
        .table("cache")
        .auth("console_files = \"strip-token\"")
        .start()
        .await;
    let addr = gateway.public_addr();
    let vm = first_vm(addr, "alice@internal").await;
    let console = format!("/ovirt-engine/api/vms/{vm}/graphicsconsoles/{SPICE}");
    let before = api_requests(&sim).await;
    for _ in 0..2 {
        let Attempt {
            status,
            headers,
            body: got,
        } = Call::to(addr, &console)
            .by("alice@internal")
            .accept("application/x-virt-viewer")
            .attempt()
            .await;
        let got = got.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(got.contains(&format!("vm-guid={vm}\n")), "{got}");
        assert!(!got.contains("sso-token"), "{got}");
        assert_eq!(headers["content-length"], got.len().to_string().as_str());
    }
    assert_eq!(api_requests(&sim).await, before + 2);
    for accept in ["application/xml", "application/json"] {
        let Attempt {
            status, body: got, ..
        } = Call::to(addr, &format!("{console}/remoteviewerconnectionfile"))
            .method("POST")
            .by("alice@internal")
            .headers(&[("accept", accept), ("content-type", "application/xml")])
            .body("<action/>")
            .attempt()
            .await;
        let got = got.unwrap();
        assert_eq!(status, StatusCode::OK, "{got}");
        assert!(got.contains("vm-guid=") && !got.contains("sso-token"), "{got}");
    }
}

/// `pass`: the descriptor comes as the Manager made it, the Manager's token in it (documented as
/// handing it out), and the token guard does not cut it.
#[tokio::test]
async fn pass_hands_out_the_managers_token() {
    let sim = simulator().await;
    let gateway = gateway(&sim).auth("console_files = \"pass\"").start().await;
    let addr = gateway.public_addr();
    let vm = first_vm(addr, "alice@internal").await;
    let console = format!("/ovirt-engine/api/vms/{vm}/graphicsconsoles/{SPICE}");
    let Attempt {
        status, body: got, ..
    } = Call::to(addr, &console)
        .by("alice@internal")
        .accept("application/x-virt-viewer")
        .attempt()
        .await;
    assert_eq!(status, StatusCode::OK);
    let got = got.unwrap();
    let token = got
        .lines()
        .find_map(|line| line.strip_prefix("sso-token="))
        .unwrap_or_else(|| panic!("no token in {got}"));
    // It is the Manager's own token: it opens the API there, past the gateway.
    let Attempt { status, .. } = Call::to(sim_origin(&sim), "/ovirt-engine/api")
        .bearer(token)
        .attempt()
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// A Manager that gives the caller's token away in any answer, in any form, split across
/// chunks, compressed or not: directly the whole answer arrives with the token; through the
/// gateway the answer is cut before the token, counted, and a WARN names the request.
#[tokio::test]
async fn a_token_in_any_answer_is_cut() {
    for gzip in [false, true] {
        let sim = simulator_with(|o| o.gzip = gzip).await;
        let gateway = gateway(&sim).start().await;
        let addr = gateway.public_addr();
        let vm = first_vm(addr, "admin@internal").await;
        let path = format!("/ovirt-engine/api/vms/{vm}");
        let token = sim_token(&sim, "admin@internal").await;
        for form in ["raw", "percent", "json"] {
            let faults = raw(&sim, "/sim/faults")
                .method("POST")
                .body(format!("{{\"leak_token\": \"{form}\"}}"))
                .send()
                .await;
            assert_eq!(faults.status, StatusCode::OK);
            let encoding = [("accept-encoding", "gzip")];
            let direct = Call::to(sim_origin(&sim), &path)
                .bearer(&token)
                .headers(&encoding)
                .attempt()
                .await;
            assert_eq!(direct.status, StatusCode::OK);
            assert!(direct.body.is_ok(), "the simulator's own answer is whole");

            let withheld = |m: &str| counter(m, "gateway_tokens_withheld_total{manager=\"sim\"}");
            let before = withheld(&metrics(&gateway).await);
            let Attempt {
                status,
                headers,
                body: got,
            } = Call::to(addr, &path)
                .by("admin@internal")
                .headers(&encoding)
                .attempt()
                .await;
            assert_eq!(status, StatusCode::OK);
            assert!(
                got.is_err(),
                "gzip {gzip}, {form}: the answer must be cut, got {got:?}"
            );
            assert_eq!(withheld(&metrics(&gateway).await), before + 1);
            let request_id = headers["correlation-id"].to_str().unwrap();
            let logs = captured_logs();
            assert!(
                logs.lines().any(|l| l.contains("WARN")
                    && l.contains(&format!("request_id={request_id}"))
                    && l.contains("upstream token")),
                "no WARN for {request_id}"
            );
        }
    }
}

/// A decision the resource's attributes cannot change asks the Manager nothing: 30 requests
/// alice may not make cost no request at the Manager, an admin's GET of a VM costs exactly one
/// (its own), and only carol's start of a VM, which a policy decides by the VM's cluster, is
/// looked up.
#[tokio::test]
async fn denied_and_plain_decisions_cost_no_lookup() {
    let sim = simulator().await;
    let policies = shipped_policies();
    let gateway = guarded(&sim, &policies).start().await;
    let addr = gateway.public_addr();
    let vm = first_vm(addr, "alice@internal").await;
    let admin_vm = first_vm(addr, "admin@internal").await;
    let carol_vm = first_vm(addr, "carol@internal").await;
    let before = api_requests(&sim).await;
    for _ in 0..30 {
        let Attempt { status, .. } = Call::to(addr, &format!("/ovirt-engine/api/vms/{vm}"))
            .method("DELETE")
            .by("alice@internal")
            .attempt()
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    assert_eq!(api_requests(&sim).await, before, "denials asked the Manager");
    let Attempt { status, .. } = Call::to(addr, &format!("/ovirt-engine/api/vms/{admin_vm}"))
        .by("admin@internal")
        .attempt()
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        api_requests(&sim).await,
        before + 1,
        "an admin GET is one request"
    );
    // Whatever the answer (the VM may be up already, or in another cluster), it was looked up.
    let _answer = Call::to(addr, &format!("/ovirt-engine/api/vms/{carol_vm}/start"))
        .by("carol@internal")
        .post("<action/>")
        .attempt()
        .await;
    assert!(
        api_requests(&sim).await >= before + 3,
        "the cluster lookup (VM, cluster) ran for carol"
    );
}

/// The shipped policies and one more file in a directory of their own.
fn policies_with(name: &str, text: &str) -> tempfile::TempDir {
    let dir = shipped_policies();
    std::fs::write(dir.path().join(name), text).unwrap();
    dir
}

/// Parameters as the engine reads them: every spelling of all_content that the engine honours
/// meets a policy that forbids it, and `Filter: true` with `?filter=false` is unfiltered.
#[tokio::test]
async fn parameters_are_read_as_the_engine_reads_them() {
    let sim = simulator().await;
    let policies = policies_with(
        "hostile.cedar",
        "@id(\"no-all-content\")\nforbid (principal, action, resource) when { context.all_content };\n\
         @id(\"admins-filtered\")\nforbid (principal in Gateway::Group::\"admins\", action, resource is Api::Collection)\n\
         unless { context.filter };\n",
    );
    let gateway = guarded(&sim, &policies).start().await;
    let addr = gateway.public_addr();
    let vm = first_vm(addr, "alice@internal").await;
    let entity = format!("/ovirt-engine/api/vms/{vm}");
    let asks: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("{entity}?all_content=1"), vec![]),
        (format!("{entity}?all_content=yes"), vec![]),
        (format!("{entity}?all_content"), vec![]),
        (format!("{entity}?all%5Fcontent=T"), vec![]),
        (format!("{entity};all_content=true"), vec![]),
        (entity.clone(), vec![("all-content", "yes")]),
        (entity.clone(), vec![("all-content", "Y")]),
    ];
    for (path, headers) in &asks {
        let Attempt { status, .. } = Call::to(addr, path)
            .by("alice@internal")
            .headers(headers)
            .attempt()
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} {headers:?}");
    }
    let plain = [
        (
            format!("{entity}?all_content=false"),
            vec![("all-content", "true")],
        ),
        (format!("{entity}?all_content=maybe"), vec![]),
        (entity.clone(), vec![]),
    ];
    for (path, headers) in &plain {
        let Attempt { status, .. } = Call::to(addr, path)
            .by("alice@internal")
            .headers(headers)
            .attempt()
            .await;
        assert_eq!(status, StatusCode::OK, "{path} {headers:?}");
    }
    let admin = credentials("admin@internal", "admin");
    let filtered = [("filter", "true")];
    let ok = Call::to(addr, "/ovirt-engine/api/vms?max=1")
        .header("authorization", &admin)
        .headers(&filtered)
        .attempt()
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    // The query wins over the header: the engine answers this one unfiltered.
    let path = "/ovirt-engine/api/vms?max=1&filter=false";
    let Attempt { status, .. } = Call::to(addr, path)
        .header("authorization", &admin)
        .headers(&filtered)
        .attempt()
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let Attempt { status, .. } = Call::to(addr, "/ovirt-engine/api/vms;filter=t")
        .header("authorization", &admin)
        .attempt()
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// Under /ovirt-engine/sso and /ovirt-engine/services only the gateway's own endpoints (in
/// every spelling the servlet container maps to them) and the read-only allow-list are served;
/// the rest, and other engine areas, are 404 faults that never reach the Manager.
#[tokio::test]
async fn only_recognised_engine_paths_are_served() {
    let sim = simulator().await;
    let gateway = gateway(&sim).start().await;
    let addr = gateway.public_addr();
    let form = "grant_type=password&scope=ovirt-app-api&username=alice%40internal&password=alice";
    let form_headers = [
        ("accept", "application/json"),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    for path in [
        "/ovirt-engine/sso/oauth/token;x=1",
        "/ovirt-engine/sso/oauth/token/",
        "/ovirt-engine/sso;a=b/oauth/token",
    ] {
        let logins = sim_stats(&sim).await["sso_logins"].as_u64().unwrap();
        let Attempt {
            status, body: got, ..
        } = Call::to(addr, path)
            .method("POST")
            .headers(&form_headers)
            .body(form.to_owned())
            .attempt()
            .await;
        let got = got.unwrap();
        assert_eq!(status, StatusCode::OK, "{path}: {got}");
        let answer: serde_json::Value = serde_json::from_str(&got).unwrap();
        let token = answer["access_token"].as_str().unwrap();
        assert_eq!(
            token.split('.').count(),
            3,
            "{path}: the gateway's own token, a JWT"
        );
        assert_eq!(sim_stats(&sim).await["sso_logins"].as_u64().unwrap(), logins + 1);
    }
    let before = api_requests(&sim).await;
    let logins = sim_stats(&sim).await["sso_logins"].as_u64().unwrap();
    for (method, path) in [
        ("POST", "/ovirt-engine/sso/oauth/token-http-auth"),
        ("POST", "/ovirt-engine/sso/oauth/revoke"),
        ("GET", "/ovirt-engine/sso/login.html"),
        ("POST", "/ovirt-engine/services/health"),
        ("GET", "/ovirt-engine/services/other"),
        ("GET", "/ovirt-engine/webadmin/"),
        ("GET", "/ovirt-engine/"),
    ] {
        let Attempt {
            status, body: got, ..
        } = Call::to(addr, path)
            .method(method)
            .headers(&form_headers)
            .body(form.to_owned())
            .attempt()
            .await;
        let got = got.unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert!(got.contains("does not forward"), "{method} {path}: {got}");
    }
    assert_eq!(sim_stats(&sim).await["sso_logins"].as_u64().unwrap(), logins);
    assert_eq!(api_requests(&sim).await, before);
    let Attempt {
        status, body: got, ..
    } = Call::to(addr, "/ovirt-engine/services/health").attempt().await;
    assert_eq!(
        (status, got.unwrap().as_str()),
        (StatusCode::OK, "DB Up!Welcome to Health Status!")
    );
    // A configured forward path goes to the Manager (the simulator has no web UI: its empty 404).
    let forwarding = GatewayConfig::new()
        .manager_with(
            "sim",
            &sim.api_url(),
            "forward_paths = [\"/ovirt-engine/webadmin\"]",
        )
        .passthrough(false)
        .start()
        .await;
    let Attempt {
        status, body: got, ..
    } = Call::to(forwarding.public_addr(), "/ovirt-engine/webadmin/")
        .attempt()
        .await;
    assert_eq!((status, got.unwrap().as_str()), (StatusCode::NOT_FOUND, ""));
}

/// Methods the API does not use get a 405 fault with Allow, method overrides a 400 fault; none
/// reaches the Manager, on the API or the SSO endpoints.
#[tokio::test]
async fn only_api_methods_reach_a_manager() {
    let sim = simulator().await;
    let gateway = gateway(&sim).start().await;
    let addr = gateway.public_addr();
    let vm = first_vm(addr, "admin@internal").await;
    let entity = format!("/ovirt-engine/api/vms/{vm}");
    let before = api_requests(&sim).await;
    for (method, path) in [
        ("TRACE", entity.as_str()),
        ("PATCH", entity.as_str()),
        ("PROPFIND", "/ovirt-engine/api"),
        ("TRACE", "/ovirt-engine/sso/oauth/token"),
    ] {
        let Attempt {
            status,
            headers,
            body: got,
        } = Call::to(addr, path)
            .method(method)
            .by("admin@internal")
            .attempt()
            .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(headers["allow"], "GET, HEAD, POST, PUT, DELETE, OPTIONS");
        assert!(got.unwrap().contains("<reason>Method not allowed</reason>"));
    }
    for name in ["x-http-method-override", "X-HTTP-Method", "x-method-override"] {
        let Attempt {
            status, body: got, ..
        } = Call::to(addr, &format!("{entity}/start"))
            .method("POST")
            .by("admin@internal")
            .headers(&[(name, "DELETE"), ("content-type", "application/xml")])
            .body("<action/>")
            .attempt()
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert!(
            got.unwrap()
                .to_ascii_lowercase()
                .contains(&name.to_ascii_lowercase())
        );
    }
    assert_eq!(api_requests(&sim).await, before);
}

/// Ids the engine reads as the same UUID in another form: the simulator (as the engine) serves
/// the VM; the gateway refuses them with a 400 fault before any policy or cache sees them.
#[tokio::test]
async fn uuids_in_other_forms_are_refused() {
    let sim = simulator().await;
    let gateway = gateway(&sim).start().await;
    let addr = gateway.public_addr();
    let Attempt { body: listing, .. } = Call::to(addr, "/ovirt-engine/api/vms")
        .by("admin@internal")
        .accept("application/json")
        .attempt()
        .await;
    let listing: serde_json::Value = serde_json::from_str(&listing.unwrap()).unwrap();
    let id = listing["vm"]
        .as_array()
        .unwrap()
        .iter()
        .map(|vm| vm["id"].as_str().unwrap().to_owned())
        .find(|id| id.split('-').any(|group| group.starts_with('0')))
        .expect("a VM id with a group that starts with 0");
    let group = id.split('-').position(|group| group.starts_with('0')).unwrap();
    let other: Vec<String> = id
        .split('-')
        .enumerate()
        .map(|(i, g)| {
            if i == group {
                format!("+{}", &g[1..])
            } else {
                g.to_owned()
            }
        })
        .collect();
    let other = other.join("-");
    let token = sim_token(&sim, "admin@internal").await;
    let path = format!("/ovirt-engine/api/vms/{other}");
    let Attempt {
        status, body: got, ..
    } = Call::to(sim_origin(&sim), &path).bearer(&token).attempt().await;
    assert_eq!(status, StatusCode::OK, "the engine reads {other} as {id}");
    assert!(got.unwrap().contains(&id));
    let before = api_requests(&sim).await;
    for path in [
        path.clone(),
        "/ovirt-engine/api/vms/1-1-1-1-1".to_owned(),
        format!("/ovirt-engine/api/vms/{id}/nics/+1-1-1-1-1"),
    ] {
        let Attempt {
            status, body: got, ..
        } = Call::to(addr, &path).by("admin@internal").attempt().await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(got.unwrap().contains("8-4-4-4-12"));
    }
    assert_eq!(api_requests(&sim).await, before);
}

/// Forwarding headers are the gateway's: a client's are dropped; a trusted proxy's chain is
/// extended, and the client it names is the one the access log and the policies see.
#[tokio::test]
async fn forwarding_headers_are_set_by_the_gateway() {
    let upstream = TestUpstream::start("engine").await;
    let claims = [
        ("x-forwarded-for", "6.6.6.6"),
        ("forwarded", "for=6.6.6.6"),
        ("x-real-ip", "6.6.6.6"),
    ];
    let plain = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .start()
        .await;
    let Attempt { status, .. } = Call::to(plain.public_addr(), "/ovirt-engine/api/vms")
        .header("authorization", SECRET_BEARER)
        .headers(&claims)
        .attempt()
        .await;
    assert_eq!(status, StatusCode::OK);
    let seen = upstream.last_seen().headers;
    assert_eq!(seen["x-forwarded-for"], ["127.0.0.1"]);
    assert!(!seen.contains_key("forwarded") && !seen.contains_key("x-real-ip"));

    let behind = GatewayConfig::new()
        .manager("engine", &upstream.url())
        .listen("trusted_proxies = [\"127.0.0.0/8\"]")
        .start()
        .await;
    let claims = [
        ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
        ("x-real-ip", "6.6.6.6"),
    ];
    let Attempt { status, .. } = Call::to(behind.public_addr(), "/ovirt-engine/api/vms")
        .header("authorization", SECRET_BEARER)
        .headers(&claims)
        .attempt()
        .await;
    assert_eq!(status, StatusCode::OK);
    let seen = upstream.last_seen().headers;
    assert_eq!(seen["x-forwarded-for"], ["6.6.6.6, 198.51.100.7, 127.0.0.1"]);
    assert!(!seen.contains_key("x-real-ip"));
    let id = seen["correlation-id"][0].clone();
    let line = access_log_line(&id);
    assert!(line.contains("client=198.51.100.7:0"), "{line}");
}

/// One principal per person: `ALICE@internal`, which the Manager logs in as alice (its
/// directory matches names without case), is alice for the policies, the rate limits and the
/// access log; and her failed logins in any spelling share one lockout budget.
#[tokio::test]
async fn one_principal_per_person() {
    let sim = simulator().await;
    let policies = shipped_policies();
    // Rate limits on (login lockouts are part of them), unlike the other tests here.
    let gateway = GatewayConfig::new()
        .manager("sim", &sim.api_url())
        .passthrough(false)
        .policies(policies.path())
        .section("[rate_limit.logins]\nfailures = 3")
        .start()
        .await;
    let addr = gateway.public_addr();
    // The shipped policies name alice in group users (entities.json): she may read VMs.
    let Attempt { status, headers, .. } = Call::to(addr, "/ovirt-engine/api/vms?max=1")
        .basic("ALICE@internal", "alice")
        .attempt()
        .await;
    assert_eq!(status, StatusCode::OK, "ALICE is alice for the policies");
    let id = headers["correlation-id"].to_str().unwrap().to_owned();
    let line = access_log_line(&id);
    assert!(line.contains(" user=alice@internal "), "{line}");
    // Three wrong passwords in three spellings lock every spelling out.
    for user in ["Alice@internal", "aLiCe@internal", "alice@internal"] {
        let Attempt { status, .. } = Call::to(addr, "/ovirt-engine/api")
            .basic(user, "wrong")
            .attempt()
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{user}");
    }
    let Attempt { status, .. } = Call::to(addr, "/ovirt-engine/api")
        .basic("ALICE@internal", "wrong-again")
        .attempt()
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

/// The first id in a JSON listing of `collection` as admin.
async fn first_id(addr: SocketAddr, collection: &str) -> String {
    let Attempt { body: got, .. } = Call::to(addr, &format!("/ovirt-engine/api/{collection}?max=1"))
        .by("admin@internal")
        .accept("application/json")
        .attempt()
        .await;
    let listing: serde_json::Value = serde_json::from_str(&got.unwrap()).unwrap();
    let (_, items) = listing.as_object().unwrap().iter().next().unwrap();
    items[0]["id"].as_str().unwrap().to_owned()
}

/// A sub-resource is decided as what it is: detaching a storage domain from its data center is
/// the storage domain's removal, which the shipped policies forbid to everyone; removing a disk
/// of a storage domain is not, and reaches the Manager.
#[tokio::test]
async fn sub_resources_are_typed_as_what_they_are() {
    let sim = simulator().await;
    let policies = shipped_policies();
    let gateway = guarded(&sim, &policies).start().await;
    let addr = gateway.public_addr();
    let dc = first_id(addr, "datacenters").await;
    let sd = first_id(addr, "storagedomains").await;
    let before = api_requests(&sim).await;
    let detach = format!("/ovirt-engine/api/datacenters/{dc}/storagedomains/{sd}");
    let Attempt {
        status, body: got, ..
    } = Call::to(addr, &detach)
        .method("DELETE")
        .by("admin@internal")
        .attempt()
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(got.unwrap().contains("`remove` on a StorageDomain"));
    assert_eq!(api_requests(&sim).await, before);
    let disk = format!("/ovirt-engine/api/storagedomains/{sd}/disks/00000000-0000-0000-0000-000000000001");
    let Attempt { status, .. } = Call::to(addr, &disk)
        .method("DELETE")
        .by("admin@internal")
        .attempt()
        .await;
    assert_ne!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        api_requests(&sim).await,
        before + 1,
        "the disk's removal reached the Manager"
    );
}

/// `follow` inlines other entities: alice, whom the shipped policies let read VMs but not
/// disks, gets a whole disk directly with `follow=disk_attachments.disk`; through the gateway
/// each followed link is a read of what it reaches, so that one is a 403 fault naming it, in
/// either spelling and on listings, while links inside the VM pass.
#[tokio::test]
async fn follow_is_authorized_link_by_link() {
    let sim = simulator().await;
    let policies = shipped_policies();
    let gateway = guarded(&sim, &policies).start().await;
    let addr = gateway.public_addr();
    let vm = first_vm(addr, "alice@internal").await;
    let token = sim_token(&sim, "alice@internal").await;
    let entity = format!("/ovirt-engine/api/vms/{vm}");
    let direct = Call::to(
        sim_origin(&sim),
        &format!("{entity}?follow=disk_attachments.disk"),
    )
    .bearer(&token)
    .attempt()
    .await;
    assert!(
        direct.body.unwrap().contains("<provisioned_size>"),
        "the simulator inlines the disk"
    );
    let before = api_requests(&sim).await;
    for path in [
        format!("{entity}?follow=disk_attachments.disk"),
        format!("{entity};follow=disk_attachments.disk"),
        format!("{entity}?follow=nics,disk_attachments.disk"),
        "/ovirt-engine/api/vms?follow=disk_attachments.disk".to_owned(),
    ] {
        let Attempt {
            status, body: got, ..
        } = Call::to(addr, &path).by("alice@internal").attempt().await;
        let got = got.unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            got.contains("`get` on a Disk, which `follow=disk_attachments.disk` inlines"),
            "{got}"
        );
    }
    let Attempt {
        status, body: got, ..
    } = Call::to(addr, &format!("{entity}?follow=frobs"))
        .by("alice@internal")
        .attempt()
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(got.unwrap().contains("`frobs`"));
    assert_eq!(
        api_requests(&sim).await,
        before,
        "no denied follow reached the Manager"
    );
    for path in [
        format!("{entity}?follow=nics"),
        format!("{entity}?follow=disk_attachments"),
    ] {
        let Attempt { status, .. } = Call::to(addr, &path).by("alice@internal").attempt().await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    // An admin may read disks: the same follow passes.
    let Attempt {
        status, body: got, ..
    } = Call::to(addr, &format!("{entity}?follow=disk_attachments.disk"))
        .by("admin@internal")
        .attempt()
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(got.unwrap().contains("<provisioned_size>"));
}
