//! Stages `limit(ip)` and `limit(principal)` (docs/rate-limiting.md): one unit from the client
//! address's bucket before anything else is done for the request (the SSO endpoints included),
//! and the request's cost from the user's bucket once the user is known. A request over its
//! bucket waits first, up to `rate_limit.max_delay`; a refusal is a 429 fault with Retry-After
//! and the RateLimit headers.

use http::Method;

use super::context::RequestContext;
use crate::api::path::ApiPath;
use crate::fault::{Fault, retry_seconds};
use crate::policy::Enforcer;
use crate::ratelimit::{self, Class, Limited, RateLimiter, Scope};

pub(super) async fn by_address(limiter: Option<&RateLimiter>, ctx: &RequestContext) -> Result<(), Fault> {
    match limiter {
        Some(limiter) => {
            let allowance = limiter.by_address(&ctx.client_text.ip).map_err(refused)?;
            if !allowance.delay.is_zero() {
                tokio::time::sleep(allowance.delay).await;
            }
            Ok(())
        }
        None => Ok(()),
    }
}

/// `policy` knows the user's groups (its entities), for group overrides.
pub(super) async fn by_user(
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
                .map_err(refused)?;
            if !allowance.delay.is_zero() {
                tokio::time::sleep(allowance.delay).await;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A refusal as the client is told it: which limit, how much it allows, when to come back.
fn refused(limited: Limited) -> Fault {
    let whose = match limited.scope {
        Scope::Address => "this address",
        Scope::User => "this user",
    };
    Fault::TooManyRequests {
        detail: format!(
            "The gateway allows {whose} {} requests at once and {} per second (in cost units); retry in {} s",
            limited.quota.burst,
            limited.quota.rate,
            retry_seconds(limited.retry_after)
        ),
        retry_after: limited.retry_after,
        policy: ratelimit::policy_header(limited.scope, limited.quota),
        state: ratelimit::state_header(limited.scope, 0, limited.retry_after),
    }
}
