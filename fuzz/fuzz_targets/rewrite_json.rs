//! The JSON href rewriter on arbitrary bytes: see common.rs for the checks on every input; for
//! inputs serde_json parses (without escapes, which the rewriter deliberately leaves alone in a
//! prefix), the output parses to the input's value with exactly the matching `href` strings
//! rewritten.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use ovirt_gateway::JsonRewriter;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((body, output, _)) = common::rewrite(data, || JsonRewriter::new(common::rule())) else {
        return;
    };
    if body.contains(&b'\\') {
        return;
    }
    let Ok(mut expected) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    rewrite_hrefs(&mut expected);
    let actual: Value = serde_json::from_slice(&output).expect("the output of valid JSON parses");
    assert_eq!(actual, expected);
});

fn rewrite_hrefs(value: &mut Value) {
    match value {
        Value::Object(members) => {
            for (key, member) in members.iter_mut() {
                match member {
                    Value::String(href) if key == "href" && common::matches(href.as_bytes()) => {
                        let to = common::rule().to;
                        *href = String::from_utf8(to).unwrap() + &href[common::FROM.len()..];
                    }
                    _ => rewrite_hrefs(member),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_hrefs),
        _ => {}
    }
}
