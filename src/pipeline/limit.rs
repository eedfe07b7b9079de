//! Stages `limit(ip)` and `limit(principal)` (docs/rate-limiting.md): one unit from the client
//! address's bucket before anything else is done for the request (the SSO endpoints included),
//! and the request's cost from the user's bucket once the user is known. A refusal is a 429
//! fault with Retry-After and the RateLimit headers.

use http::Method;

use super::context::RequestContext;
use crate::api_path::ApiPath;
use crate::fault::Fault;
use crate::policy::Enforcer;
use crate::ratelimit::{Class, RateLimiter};

pub fn by_address(limiter: Option<&RateLimiter>, ctx: &RequestContext) -> Result<(), Fault> {
    match limiter {
        Some(limiter) => limiter
            .by_address(ctx.client.ip())
            .map(|_| ())
            .map_err(Fault::TooManyRequests),
        None => Ok(()),
    }
}

/// `policy` knows the user's groups (its entities), for group overrides.
pub fn by_user(
    limiter: Option<&RateLimiter>,
    policy: Option<&Enforcer>,
    ctx: &RequestContext,
    method: &Method,
    path: &ApiPath,
) -> Result<(), Fault> {
    match (limiter, &ctx.principal) {
        (Some(limiter), Some(principal)) => limiter
            .by_user(
                &principal.user,
                || {
                    policy
                        .map(|p| p.current().groups(&principal.user))
                        .unwrap_or_default()
                },
                Class::of(method, path),
            )
            .map(|_| ())
            .map_err(Fault::TooManyRequests),
        _ => Ok(()),
    }
}
