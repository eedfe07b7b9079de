//! The merged view's joiner (src/federation/merge.rs) on arbitrary bytes as the parts of two
//! members: it never panics, chunking never changes what it passes on or the ids it reads, and
//! for JSON parts serde_json parses as listings, the joined answer parses to their items in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ovirt_gateway::{Join, Representation};
use serde_json::Value;

/// Joins `parts`, each fed in chunks drawn from `seed` (0: whole); the output and the ids, or
/// `None` when a part is not a listing.
fn join(
    repr: Representation,
    parts: &[&[u8]],
    seed: u32,
    max: Option<u64>,
) -> Option<(Vec<u8>, Vec<String>)> {
    let mut join = Join::new(repr, max);
    let (mut out, mut ids) = (Vec::new(), Vec::new());
    let mut state = seed;
    for part in parts {
        if join.full() {
            break;
        }
        let mut splitter = join.member();
        let mut rest = *part;
        let mut done = false;
        while !rest.is_empty() && !done {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let size = if seed == 0 {
                rest.len()
            } else {
                ((state >> 16) as usize % 64 + 1).min(rest.len())
            };
            done = splitter.feed(&mut join, &rest[..size], &mut out, &mut ids).ok()?;
            rest = &rest[size..];
        }
        if !done {
            splitter.ended().ok()?;
        }
    }
    out.extend_from_slice(&join.finish());
    Some((out, ids))
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let (first, second) = body.split_at(body.len() / 2);
    let max = (seed & 0x80 != 0).then_some(u64::from(seed & 0x07));
    for repr in [Representation::Xml, Representation::Json] {
        let whole = join(repr, &[first, second], 0, max);
        let chunked = join(repr, &[first, second], u32::from(seed) | 1, max);
        assert_eq!(whole, chunked, "chunking changed the joined answer");
    }
    let (Ok(a), Ok(b)) = (
        serde_json::from_slice::<Value>(first),
        serde_json::from_slice::<Value>(second),
    ) else {
        return;
    };
    let items = |v: &Value| -> Option<Vec<Value>> {
        let object = v.as_object()?;
        match object.len() {
            0 => Some(Vec::new()),
            1 => object
                .values()
                .next()?
                .as_array()?
                .iter()
                .all(Value::is_object)
                .then(|| object.values().next().unwrap().as_array().unwrap().clone()),
            _ => None,
        }
    };
    let (Some(mut want), Some(more)) = (items(&a), items(&b)) else {
        return;
    };
    want.extend(more);
    if let Some(max) = max {
        want.truncate(max as usize);
    }
    let (out, _) = join(Representation::Json, &[first, second], 0, max).expect("listings join");
    let joined: Value = serde_json::from_slice(&out).expect("the joined listing parses");
    let got = joined
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert_eq!(got, want);
});
