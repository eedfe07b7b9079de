//! Fault injection for tests of the gateway, set at run time through `/sim/faults`: latency, error
//! answers (500/503), connections reset before or during the body, and bodies that stall.
//!
//! `GET /sim/faults` shows the current setting; `POST /sim/faults` replaces it with a JSON object
//! (absent fields are off): `{"latency_ms": 20 | [10, 50], "error_rate": 0.1, "error_status": 503,
//! "reset_rate": 0.5, "reset_phase": "before_body" | "during_body", "stall_rate": 0.2,
//! "leak_token": "raw" | "percent" | "json"}`. Faults apply to `/ovirt-engine/api` only, so SSO and
//! the health check keep working unless a test says otherwise.
//!
//! `leak_token` plays a Manager that gives the caller's bearer token away in an answer (no
//! engine is known to, but for console descriptors: docs/security.md): every API answer ends with
//! `<!-- sso-token=TOKEN -->`, the token as it is, percent-encoded or JSON-escaped, sent in
//! 5-byte frames so that it is split across chunks.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use serde::{Deserialize, Serialize};

use super::Sim;
use super::model::Rng;
use crate::body::{BoxError, GatewayBody};
use crate::wire::sso::json_response;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum LatencyMs {
    Fixed(u64),
    Range([u64; 2]),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ResetPhase {
    #[default]
    BeforeBody,
    DuringBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct Faults {
    latency_ms: Option<LatencyMs>,
    error_rate: f64,
    error_status: u16,
    reset_rate: f64,
    reset_phase: ResetPhase,
    stall_rate: f64,
    leak_token: Option<LeakForm>,
}

/// How a leaked token is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum LeakForm {
    Raw,
    Percent,
    Json,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            latency_ms: None,
            error_rate: 0.0,
            error_status: 503,
            reset_rate: 0.0,
            reset_phase: ResetPhase::BeforeBody,
            stall_rate: 0.0,
            leak_token: None,
        }
    }
}

/// What happens to one request.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub delay: Option<Duration>,
    pub reset_before_body: bool,
    pub error_status: Option<StatusCode>,
    reset_during_body: bool,
    stall: bool,
    leak: Option<LeakForm>,
}

impl Faults {
    fn check(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("reset_rate", self.reset_rate),
            ("stall_rate", self.stall_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1"));
            }
        }
        if ![500, 503].contains(&self.error_status) {
            return Err("error_status must be 500 or 503".into());
        }
        if let Some(LatencyMs::Range([low, high])) = self.latency_ms
            && low > high
        {
            return Err("latency_ms: the range must be [low, high]".into());
        }
        Ok(())
    }

    /// Draws the faults of one request.
    pub(super) fn plan(&self, rng: &mut Rng) -> Plan {
        let mut hit = |rate: f64| rate > 0.0 && (rng.below(1_000_000) as f64) < rate * 1_000_000.0;
        let reset = hit(self.reset_rate);
        let error = hit(self.error_rate);
        let stall = hit(self.stall_rate);
        let delay = match self.latency_ms {
            None => None,
            Some(LatencyMs::Fixed(ms)) => Some(Duration::from_millis(ms)),
            Some(LatencyMs::Range([low, high])) => {
                Some(Duration::from_millis(low + rng.below(high - low + 1)))
            }
        };
        Plan {
            delay,
            reset_before_body: reset && self.reset_phase == ResetPhase::BeforeBody,
            reset_during_body: reset && self.reset_phase == ResetPhase::DuringBody,
            error_status: error
                .then(|| StatusCode::from_u16(self.error_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)),
            stall,
            leak: self.leak_token,
        }
    }
}

impl Plan {
    /// Appends the caller's token to the body, when `leak_token` is set and there is one.
    pub(super) fn leak(&self, response: Response<GatewayBody>, token: Option<&str>) -> Response<GatewayBody> {
        let (Some(form), Some(token)) = (self.leak, token) else {
            return response;
        };
        let written = match form {
            LeakForm::Raw => token.to_owned(),
            LeakForm::Percent => token.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D"),
            LeakForm::Json => token.replace('/', "\\/"),
        };
        let tail = Bytes::from(format!("\n<!-- sso-token={written} -->\n"));
        let (mut parts, body) = response.into_parts();
        parts.headers.remove(http::header::CONTENT_LENGTH);
        let pieces = (0..tail.len())
            .step_by(5)
            .map(move |at| Ok::<_, BoxError>(Frame::data(tail.slice(at..(at + 5).min(tail.len())))));
        let frames = futures_util::StreamExt::chain(
            http_body_util::BodyStream::new(body),
            futures_util::stream::iter(pieces.collect::<Vec<_>>()),
        );
        Response::from_parts(parts, GatewayBody::new(http_body_util::StreamBody::new(frames)))
    }

    /// Breaks the body as planned: half of its first chunk, then a reset or a stall.
    pub(super) fn apply_to_body(&self, response: Response<GatewayBody>) -> Response<GatewayBody> {
        let mode = match (self.reset_during_body, self.stall) {
            (true, _) => Broken::Reset,
            (false, true) => Broken::Stall,
            (false, false) => return response,
        };
        response.map(|inner| {
            GatewayBody::new(BrokenBody {
                inner,
                mode,
                sent: false,
                flushed: false,
            })
        })
    }
}

pub(super) fn handle(sim: &Sim, request: &Request<Bytes>) -> Response<GatewayBody> {
    let mut faults = sim.faults.lock().unwrap_or_else(|p| p.into_inner());
    match *request.method() {
        Method::GET => {}
        Method::POST => match serde_json::from_slice::<Faults>(request.body())
            .map_err(|e| e.to_string())
            .and_then(|f| f.check().map(|()| f))
        {
            Ok(new) => *faults = new,
            Err(error) => {
                return json_response(StatusCode::BAD_REQUEST, &serde_json::json!({ "error": error }));
            }
        },
        _ => {
            return json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &serde_json::json!({ "error": "GET or POST" }),
            );
        }
    }
    json_response(
        StatusCode::OK,
        &serde_json::to_value(&*faults).unwrap_or_default(),
    )
}

#[derive(Debug, Clone, Copy)]
enum Broken {
    Reset,
    Stall,
}

#[derive(Debug, thiserror::Error)]
#[error("connection reset during the body by the simulator's fault injection")]
struct ResetDuringBody;

struct BrokenBody {
    inner: GatewayBody,
    mode: Broken,
    sent: bool,
    /// Reset: whether the body already paused once after the half chunk.
    flushed: bool,
}

impl Body for BrokenBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.sent {
            return match self.mode {
                // hyper drops what it has not flushed when a body fails, headers included: pause
                // once (waking at once) so the head and the half chunk reach the client first.
                Broken::Reset if !self.flushed => {
                    self.flushed = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Broken::Reset => Poll::Ready(Some(Err(Box::new(ResetDuringBody)))),
                // Never woken: the body stays open until the connection closes.
                Broken::Stall => Poll::Pending,
            };
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.sent = true;
                match frame.into_data() {
                    Ok(data) => Poll::Ready(Some(Ok(Frame::data(data.slice(..data.len() / 2))))),
                    Err(frame) => Poll::Ready(Some(Ok(frame))),
                }
            }
            Poll::Ready(None) => {
                self.sent = true;
                self.poll_frame(cx)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rate of 1 always hits and 0 never does.
    #[test]
    fn rates_at_both_ends() {
        let mut rng = Rng::new(1);
        let always = Faults {
            error_rate: 1.0,
            ..Faults::default()
        };
        assert!((0..100).all(|_| always.plan(&mut rng).error_status.is_some()));
        let never = Faults::default();
        assert!((0..100).all(|_| never.plan(&mut rng).error_status.is_none()));
    }

    /// Out-of-range settings are refused with the field's name.
    #[test]
    fn bad_settings_are_refused() {
        let bad = Faults {
            reset_rate: 1.5,
            ..Faults::default()
        };
        assert!(bad.check().unwrap_err().contains("reset_rate"));
        let bad = Faults {
            error_status: 404,
            ..Faults::default()
        };
        assert!(bad.check().unwrap_err().contains("error_status"));
    }

    /// A latency range draws within its bounds.
    #[test]
    fn latency_range_stays_within_bounds() {
        let mut rng = Rng::new(2);
        let faults = Faults {
            latency_ms: Some(LatencyMs::Range([10, 20])),
            ..Faults::default()
        };
        for _ in 0..100 {
            let delay = faults.plan(&mut rng).delay.unwrap();
            assert!((Duration::from_millis(10)..=Duration::from_millis(20)).contains(&delay));
        }
    }
}
