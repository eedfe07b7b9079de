//! The circuit breaker in front of each Manager (docs/federation.md, "Circuit breaking"):
//! `failures` exchanges in a row that got no usable answer (no connection, no response head in
//! time, a broken exchange, or a 502/503/504 from the Manager's own front end) open it; for
//! `open_for` every request to that Manager then fails at once with a 503, without being sent.
//! After that, the next request is the probe: while it is in flight the others still fail fast;
//! its answer closes the breaker, its failure opens it again. A passing health check after
//! `open_for` closes it as well, so a Manager that gets no traffic is not held open forever.
//!
//! Time is tokio's, so tests run it under paused time.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::BreakerConfig;

/// The state a breaker reports (/readyz, `gateway_manager_breaker_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BreakerState {
    Closed,
    Open,
    /// A probe is in flight.
    HalfOpen,
}

impl BreakerState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The value of `gateway_manager_breaker_state`.
    pub(crate) fn as_gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

pub(crate) struct Breaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

/// Why a request was not sent: the breaker is open (or probing) for `retry_after` more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Open {
    pub failures: u32,
    pub retry_after: Duration,
}

/// A request let through. A probe that ends without a verdict (its request abandoned) lets the
/// next request probe instead.
pub(crate) struct Admitted<'a> {
    breaker: &'a Breaker,
    probe: bool,
    settled: bool,
}

/// What recording an outcome changed, for the log and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    None,
    Opened,
    Closed,
}

impl Breaker {
    pub(crate) fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets a request through, or says how long the breaker stays open.
    pub(crate) fn admit(&self) -> Result<Admitted<'_>, Open> {
        let mut state = self.lock();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen;
                true
            }
            State::Open { until } => {
                return Err(Open {
                    failures: self.config.failures,
                    retry_after: until - Instant::now(),
                });
            }
            // The probe decides soon: its wait is bounded by the Manager's timeouts.
            State::HalfOpen => {
                return Err(Open {
                    failures: self.config.failures,
                    retry_after: Duration::from_secs(1),
                });
            }
        };
        Ok(Admitted {
            breaker: self,
            probe,
            settled: false,
        })
    }

    /// The state now, for /readyz and the metrics.
    pub(crate) fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen => BreakerState::HalfOpen,
        }
    }

    /// A health check passed: an open breaker whose time is up closes.
    pub(crate) fn health_passed(&self) -> Transition {
        let mut state = self.lock();
        match *state {
            State::Open { until } if Instant::now() >= until => {
                *state = State::Closed { failures: 0 };
                Transition::Closed
            }
            _ => Transition::None,
        }
    }

    fn record(&self, success: bool, probe: bool) -> Transition {
        let mut state = self.lock();
        match (*state, success) {
            (State::Closed { failures: 0 }, true) => Transition::None,
            (State::Closed { .. }, true) => {
                *state = State::Closed { failures: 0 };
                Transition::None
            }
            (State::Closed { failures }, false) if failures + 1 >= self.config.failures => {
                *state = State::Open {
                    until: Instant::now() + self.config.open_for,
                };
                Transition::Opened
            }
            (State::Closed { failures }, false) => {
                *state = State::Closed {
                    failures: failures + 1,
                };
                Transition::None
            }
            // Any answer shows the Manager answers again, the probe's or one sent before.
            (State::Open { .. } | State::HalfOpen, true) => {
                *state = State::Closed { failures: 0 };
                Transition::Closed
            }
            (State::HalfOpen, false) if probe => {
                *state = State::Open {
                    until: Instant::now() + self.config.open_for,
                };
                Transition::Opened
            }
            // Requests sent before the breaker opened fail late: they change nothing.
            (State::Open { .. } | State::HalfOpen, false) => Transition::None,
        }
    }
}

impl Admitted<'_> {
    /// The exchange got a usable answer (`true`) or failed; what that changed.
    pub(crate) fn settle(mut self, success: bool) -> Transition {
        self.settled = true;
        self.breaker.record(success, self.probe)
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            let mut state = self.breaker.lock();
            if matches!(*state, State::HalfOpen) {
                *state = State::Open {
                    until: Instant::now(),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failures: 3,
            open_for: Duration::from_secs(10),
        })
    }

    fn fail(breaker: &Breaker) -> Transition {
        breaker.admit().unwrap().settle(false)
    }

    /// `failures` in a row open it; an answer in between starts the count again.
    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_open_it() {
        let breaker = breaker();
        assert_eq!(fail(&breaker), Transition::None);
        assert_eq!(fail(&breaker), Transition::None);
        assert_eq!(breaker.admit().unwrap().settle(true), Transition::None);
        assert_eq!(fail(&breaker), Transition::None);
        assert_eq!(fail(&breaker), Transition::None);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(fail(&breaker), Transition::Opened);
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    /// Open, requests fail at once with the time left; after it one probe goes, the others wait
    /// for its verdict; its answer closes the breaker.
    #[tokio::test(start_paused = true)]
    async fn open_then_one_probe_closes_it() {
        let breaker = breaker();
        for _ in 0..3 {
            fail(&breaker);
        }
        tokio::time::advance(Duration::from_secs(4)).await;
        let open = breaker.admit().err().unwrap();
        assert_eq!(open.retry_after, Duration::from_secs(6));
        assert_eq!(open.failures, 3);
        tokio::time::advance(Duration::from_secs(6)).await;
        let probe = breaker.admit().unwrap();
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(breaker.admit().is_err(), "one probe at a time");
        assert_eq!(probe.settle(true), Transition::Closed);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.admit().is_ok());
    }

    /// A failed probe opens it for another `open_for`.
    #[tokio::test(start_paused = true)]
    async fn failed_probe_opens_it_again() {
        let breaker = breaker();
        for _ in 0..3 {
            fail(&breaker);
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(fail(&breaker), Transition::Opened);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(breaker.admit().is_err());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(breaker.admit().is_ok());
    }

    /// A probe whose request was abandoned lets the next request probe at once.
    #[tokio::test(start_paused = true)]
    async fn abandoned_probe_hands_over() {
        let breaker = breaker();
        for _ in 0..3 {
            fail(&breaker);
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        drop(breaker.admit().unwrap());
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.admit().unwrap().settle(true), Transition::Closed);
    }

    /// A passing health check closes an open breaker only once its time is up.
    #[tokio::test(start_paused = true)]
    async fn health_check_closes_it_after_open_for() {
        let breaker = breaker();
        for _ in 0..3 {
            fail(&breaker);
        }
        assert_eq!(breaker.health_passed(), Transition::None);
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(breaker.health_passed(), Transition::Closed);
        assert!(breaker.admit().is_ok());
    }

    /// Requests sent before it opened and failing afterwards do not extend it; one answering
    /// afterwards closes it.
    #[tokio::test(start_paused = true)]
    async fn late_outcomes() {
        let breaker = breaker();
        let (early, late) = (breaker.admit().unwrap(), breaker.admit().unwrap());
        for _ in 0..3 {
            fail(&breaker);
        }
        assert_eq!(early.settle(false), Transition::None);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(late.settle(true), Transition::Closed);
    }
}
