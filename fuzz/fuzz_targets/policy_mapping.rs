//! The policy mapping on arbitrary requests: a read is never decided as a write nor a write as
//! a read, what is acted on is an id of the path as the engine reads it, and `follow` is either
//! decided link by link or refused. Input: a method byte, then the request target.
#![no_main]

use http::{HeaderMap, Method};
use libfuzzer_sys::fuzz_target;
use ovirt_gateway::EngineParams;
use ovirt_gateway::canonical_id;
use ovirt_gateway::{ApiPath, EngineArea, validate_path};
use ovirt_gateway::{Kind, followed_links, map_request};

const METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::OPTIONS,
    Method::POST,
    Method::PUT,
    Method::DELETE,
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(first) % METHODS.len()].clone();
    let target = String::from_utf8_lossy(rest);
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (&target[..], None),
    };
    if validate_path(path).is_err() {
        return;
    }
    let Some(parsed) = ApiPath::parse("", path, query) else {
        return;
    };
    let mapped = map_request(&method, &parsed);
    let reads = ["list", "get"].contains(&mapped.action.as_str());
    match method {
        Method::GET | Method::HEAD | Method::OPTIONS => {
            assert!(reads, "{method} {target} is {}", mapped.action)
        }
        Method::PUT => assert!(
            mapped.action == "update" || mapped.kind == Kind::Unknown,
            "{target}"
        ),
        Method::DELETE => assert!(
            mapped.action == "remove" || mapped.kind == Kind::Unknown,
            "{target}"
        ),
        _ => assert!(!reads, "POST {target} is a read"),
    }
    let EngineArea::Api(resource) = &parsed.area else {
        assert_eq!(mapped.kind, Kind::Unknown);
        return;
    };
    // The ids: the resource's and its parents', in path order, each an id position of the path
    // (after a collection name), written as the engine reads it.
    let names: Vec<&str> = resource.segments.iter().map(|s| s.name.as_str()).collect();
    let ids: Vec<String> = names
        .iter()
        .skip(1)
        .step_by(2)
        .map(|id| canonical_id(id))
        .collect();
    if let Kind::Entity(_) = mapped.kind {
        let acted: Vec<&String> = mapped
            .parents
            .iter()
            .map(|(_, id)| id)
            .chain([&mapped.id])
            .collect();
        assert!(acted.len() <= ids.len(), "{target}");
        for (i, id) in acted.iter().enumerate() {
            assert_eq!(*id, &ids[i], "{target}: id {i}");
        }
    }
    let headers = HeaderMap::new();
    let follow = EngineParams::new(&parsed, &headers).follow();
    if let Ok(followed) = followed_links(&mapped, &follow) {
        for read in followed {
            assert_eq!(read.mapped.action, "get");
            assert!(follow.iter().any(|path| path.join(".") == read.link));
        }
    }
});
