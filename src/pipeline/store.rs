//! Stage `cache store`: keeps a cacheable GET answer (reading it whole only when it is no larger
//! than `cache.max_entry_bytes`), and after a successful write evicts what it touched, before the
//! client sees the answer, so its next GET is fresh.

use http::Response;

use crate::body::GatewayBody;
use crate::cache::{Cache, Pending};
use crate::fault::Fault;
use crate::upstream::Upstream;

pub(super) async fn store(
    cache: &Cache,
    upstream: &Upstream,
    pending: Pending,
    response: Response<GatewayBody>,
) -> Result<Response<GatewayBody>, Fault> {
    cache
        .finish(pending, response)
        .await
        .map_err(|e| Fault::UpstreamUnreachable {
            manager: upstream.name().to_owned(),
            cause: format!("the answer broke off: {e}"),
        })
}
