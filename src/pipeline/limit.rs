//! Stages `limit(ip)` and `limit(principal)` (docs/rate-limiting.md): one unit from the client
//! address's bucket before anything else is done for the request (the SSO endpoints included),
//! and the request's cost from the user's bucket once the user is known. A request over its
//! bucket waits first, up to `rate_limit.max_delay`; a refusal is a 429 fault with Retry-After
//! and the RateLimit headers.

use http::Method;

use super::context::RequestContext;
use crate::api_path::ApiPath;
use crate::fault::Fault;
use crate::policy::Enforcer;
use crate::ratelimit::{Class, RateLimiter};

pub async fn by_address(limiter: Option<&RateLimiter>, ctx: &RequestContext) -> Result<(), Fault> {
    match limiter {
        Some(limiter) => {
            let allowance = limiter
                .by_address(ctx.client.ip())
                .map_err(Fault::TooManyRequests)?;
            if !allowance.delay.is_zero() {
                tokio::time::sleep(allowance.delay).await;
            }
            Ok(())
        }
        None => Ok(()),
    }
}

/// `policy` knows the user's groups (its entities), for group overrides.
pub async fn by_user(
    limiter: Option<&RateLimiter>,
    policy: Option<&Enforcer>,
    ctx: &RequestContext,
    method: &Method,
    path: &ApiPath,
) -> Result<(), Fault> {
    match (limiter, &ctx.principal) {
        (Some(limiter), Some(principal)) => {
            let allowance = limiter
                .by_user(
                    &principal.user,
                    || {
                        policy
                            .map(|p| p.current().groups(&principal.user))
                            .unwrap_or_default()
                    },
                    Class::of(method, path),
                )
                .map_err(Fault::TooManyRequests)?;
            if !allowance.delay.is_zero() {
                tokio::time::sleep(allowance.delay).await;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
