//! Compressed answers inflate in bounded steps (docs/security.md, "Compressed answers"): a gzip
//! answer of 1 GiB inflated streams through the token guard and the prefix rewriter, as the
//! gateway relays a Manager's answer under a prefix, while the process's resident memory stays
//! flat. Its own test binary, so that the memory read is this test's alone.

use std::io::Write;

use bytes::Bytes;
use http::Response;
use http_body::Frame;
use http_body_util::BodyExt;
use ovirt_gateway::GatewayBody;
use ovirt_gateway::{Alarm, Bases, TokenForms, guard_answer, rewrite_response};

/// Plain bytes of one block, repeated to make the answer.
const BLOCK: usize = 1024 * 1024;
const BLOCKS: usize = 1024;
/// Blocks per chunk as the Manager sends them: one chunk inflates to 64 MiB, which a decoder
/// that inflated chunks whole would hold at once.
const BLOCKS_PER_CHUNK: usize = 64;

/// 1 MiB of XML listing: 16 KiB of VMs with random names, repeated. It compresses about 40
/// times, like a real listing, well under the ratio limit.
fn block() -> Vec<u8> {
    let mut state = 0x9e37_79b9_u32;
    let mut letters = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        b'a' + (state % 26) as u8
    };
    let mut unit = Vec::new();
    while unit.len() < 16 * 1024 {
        let name: String = (0..24).map(|_| char::from(letters())).collect();
        writeln!(
            unit,
            "<vm href=\"/ovirt-engine/api/vms/{name}\" id=\"{name}\"><name>{name}</name></vm>"
        )
        .unwrap();
    }
    unit.iter().copied().cycle().take(BLOCK).collect()
}

/// A gzip member whose deflate stream is the block's raw deflate, ended by a full flush (so it
/// refers to nothing before it), repeated: the chunks of a 1 GiB answer without compressing
/// 1 GiB.
fn gzip_chunks() -> (Vec<Bytes>, usize) {
    use flate2::{Compress, Compression, Crc, FlushCompress};
    let plain = block();
    let mut deflate = Compress::new(Compression::default(), false);
    let mut repeated = Vec::with_capacity(plain.len());
    deflate
        .compress_vec(&plain, &mut repeated, FlushCompress::Full)
        .unwrap();
    assert_eq!(deflate.total_in() as usize, plain.len());
    let mut end = Vec::with_capacity(64);
    Compress::new(Compression::default(), false)
        .compress_vec(&[], &mut end, FlushCompress::Finish)
        .unwrap();
    let mut crc = Crc::new();
    for _ in 0..BLOCKS {
        crc.update(&plain);
    }
    let total = plain.len() * BLOCKS;
    let mut trailer = end;
    trailer.extend_from_slice(&crc.sum().to_le_bytes());
    trailer.extend_from_slice(&(total as u32).to_le_bytes());
    let header = Bytes::from_static(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    let chunk = Bytes::from(repeated.repeat(BLOCKS_PER_CHUNK));
    let mut chunks = vec![header];
    chunks.extend(std::iter::repeat_n(chunk, BLOCKS / BLOCKS_PER_CHUNK));
    chunks.push(Bytes::from(trailer));
    (chunks, total)
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .map(|kib| kib.trim().parse().unwrap())
        .unwrap();
    kib * 1024
}

#[tokio::test]
async fn a_gigabyte_inflates_in_flat_memory() {
    let (chunks, total) = gzip_chunks();
    let compressed: usize = chunks.iter().map(Bytes::len).sum();
    assert!(
        total / compressed < 200,
        "the answer must stay under the ratio limit"
    );
    let frames = chunks
        .into_iter()
        .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(c)));
    let mut response = Response::new(GatewayBody::new(http_body_util::StreamBody::new(
        futures_util::stream::iter(frames),
    )));
    let headers = response.headers_mut();
    headers.insert("content-type", "application/xml".parse().unwrap());
    headers.insert("content-encoding", "gzip".parse().unwrap());
    // As forward does for a gateway session under a prefix: the guard, then the rewriter.
    let alarm = Alarm {
        request_id: "r".into(),
        manager: "m".into(),
        counter: prometheus::IntCounterVec::new(prometheus::Opts::new("t", "t"), &["manager"]).unwrap(),
    };
    let guarded = guard_answer(response, TokenForms::of(b"fqbR1ftzh8wBCviLxJcYuV5oSDI="), alarm);
    let bases = Bases {
        public_origin: "https://gw".into(),
        public_api: "/east/ovirt-engine/api".into(),
        upstream_api: "/ovirt-engine/api".into(),
        gzip_level: None,
    };
    let mut body = rewrite_response(guarded, &bases).into_body();
    let before = rss();
    let (mut out, mut most, mut largest_frame) = (0u64, before, 0);
    let mut next_sample = 0;
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        largest_frame = largest_frame.max(data.len());
        out += data.len() as u64;
        if out >= next_sample {
            most = most.max(rss());
            next_sample += 32 * 1024 * 1024;
        }
    }
    // Every link gained the prefix: the whole answer went through the rewriter.
    assert!(out > total as u64, "{out} bytes out of {total}");
    let grown = most.saturating_sub(before);
    assert!(grown < 64 * 1024 * 1024, "resident memory grew by {grown} bytes");
    assert!(
        largest_frame <= 2 * 1024 * 1024,
        "a frame of {largest_frame} bytes"
    );
}
