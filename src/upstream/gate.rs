//! The concurrency gate in front of each Manager (docs/rate-limiting.md, "The Manager's
//! concurrency"): at most `inflight` requests at the Manager at once, each counted from the moment
//! it is sent until its answer's body has ended; up to `queue` more wait, each at most `wait`;
//! beyond that, or after waiting that long, the request is refused with a 503 and never sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus::IntGauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Concurrency;

pub struct Gate {
    config: std::sync::Mutex<Concurrency>,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// Why a request was not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `queue` requests were already waiting.
    QueueFull,
    /// No place came free within `wait`.
    TimedOut,
}

/// A place at the Manager, given back when dropped.
pub struct Pass {
    _permit: OwnedSemaphorePermit,
    inflight: IntGauge,
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.inflight.dec();
    }
}

/// Counts a waiter for as long as it waits, even when its request is abandoned.
struct Waiting<'a>(&'a AtomicUsize, IntGauge);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        self.1.dec();
    }
}

impl Gate {
    pub fn new(config: Concurrency) -> Gate {
        Gate {
            config: std::sync::Mutex::new(config),
            permits: Arc::new(Semaphore::new(config.inflight)),
            waiting: AtomicUsize::new(0),
        }
    }

    pub fn config(&self) -> Concurrency {
        *self.config.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// New sizes for the requests that follow. Fewer places are taken back as the requests
    /// holding them end; the requests at the Manager are never cut short.
    pub fn reconfigure(&self, new: Concurrency) {
        let old = std::mem::replace(&mut *self.config.lock().unwrap_or_else(|p| p.into_inner()), new);
        if new.inflight > old.inflight {
            self.permits.add_permits(new.inflight - old.inflight);
        } else if new.inflight < old.inflight {
            let excess = old.inflight - new.inflight;
            let rest = excess - self.permits.forget_permits(excess);
            if rest > 0 {
                let permits = self.permits.clone();
                tokio::spawn(async move {
                    if let Ok(taken) = permits.acquire_many_owned(rest as u32).await {
                        taken.forget();
                    }
                });
            }
        }
    }

    /// A place at the Manager, at once or after waiting in the queue; `inflight` counts it,
    /// `queued` counts the wait.
    pub async fn enter(&self, inflight: IntGauge, queued: IntGauge) -> Result<Pass, Refused> {
        let config = self.config();
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= config.queue {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(Refused::QueueFull);
                }
                queued.inc();
                let _waiting = Waiting(&self.waiting, queued);
                match tokio::time::timeout(config.wait, self.permits.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    _ => return Err(Refused::TimedOut),
                }
            }
        };
        inflight.inc();
        Ok(Pass {
            _permit: permit,
            inflight,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn gate(inflight: usize, queue: usize) -> Arc<Gate> {
        Arc::new(Gate::new(Concurrency {
            inflight,
            queue,
            wait: Duration::from_secs(10),
        }))
    }

    fn gauge() -> IntGauge {
        IntGauge::new("inflight", "test").unwrap()
    }

    /// `inflight` pass at once; the next wait, `queue` of them; the one after is refused at once;
    /// a waiter gets the place given back, or is refused after `wait`.
    #[tokio::test(start_paused = true)]
    async fn inflight_then_queue_then_refused() {
        let gate = gate(2, 1);
        let inflight = gauge();
        let first = gate.enter(inflight.clone(), gauge()).await.unwrap();
        let _second = gate.enter(inflight.clone(), gauge()).await.unwrap();
        assert_eq!(inflight.get(), 2);
        let waiter = tokio::spawn({
            let (gate, inflight) = (gate.clone(), inflight.clone());
            async move { gate.enter(inflight, gauge()).await.map(|_| ()) }
        });
        // The waiter is queued once it has run up to its wait.
        while gate.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            gate.enter(inflight.clone(), gauge()).await.err(),
            Some(Refused::QueueFull)
        );
        drop(first);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(gate.waiting.load(Ordering::SeqCst), 0);
        // Both places are taken again (the waiter's pass was dropped with its task: one left).
        let _third = gate.enter(inflight.clone(), gauge()).await.unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(
            gate.enter(inflight.clone(), gauge()).await.err(),
            Some(Refused::TimedOut)
        );
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert_eq!(inflight.get(), 2);
    }

    /// More places apply at once; fewer are taken back as the passes holding them end.
    #[tokio::test(start_paused = true)]
    async fn sizes_change_on_reconfigure() {
        let gate = gate(1, 0);
        let first = gate.enter(gauge(), gauge()).await.unwrap();
        assert_eq!(gate.enter(gauge(), gauge()).await.err(), Some(Refused::QueueFull));
        let sizes = |inflight| Concurrency {
            inflight,
            queue: 0,
            wait: Duration::from_secs(10),
        };
        gate.reconfigure(sizes(3));
        let second = gate.enter(gauge(), gauge()).await.unwrap();
        let third = gate.enter(gauge(), gauge()).await.unwrap();
        gate.reconfigure(sizes(1));
        drop(first);
        drop(second);
        // Two places given back were taken away: still one too many in use.
        tokio::task::yield_now().await;
        assert_eq!(gate.enter(gauge(), gauge()).await.err(), Some(Refused::QueueFull));
        drop(third);
        assert!(gate.enter(gauge(), gauge()).await.is_ok());
    }

    /// A waiter whose request is abandoned leaves the queue.
    #[tokio::test(start_paused = true)]
    async fn abandoned_waiters_leave_the_queue() {
        let gate = gate(1, 1);
        let _only = gate.enter(gauge(), gauge()).await.unwrap();
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(gauge(), gauge()).await.map(|_| ()) }
        });
        while gate.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(gate.waiting.load(Ordering::SeqCst), 0);
    }
}
