//! The concurrency gate in front of each Manager (docs/rate-limiting.md, "The Manager's
//! concurrency"): at most `inflight` requests at the Manager at once, each counted from the moment
//! it is sent until its answer's body has ended. `logins` of the places are kept for logins and
//! revocations, so that a Manager full of requests still logs users in; of the others, no user
//! holds more than `per_user`. Up to `queue` more requests wait, each at most `wait`, and are
//! let in fairly: logins first, then one request of each waiting user in turn, not first come,
//! first served. Beyond that, or after waiting that long, a request is refused with a 503 and
//! never sent.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use prometheus::IntGauge;
use tokio::sync::oneshot;

use crate::config::Concurrency;

pub(crate) struct Gate {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
}

/// On whose behalf a request goes to the Manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller<'a> {
    /// A user's request, or the gateway's question on their behalf: `per_user` places at most,
    /// and a fair turn among the users waiting. The name is the user's (`user@profile`), or the
    /// client address for a token passed through.
    User(&'a str),
    /// A login, the questions that complete it, or a revocation: the places kept for logins
    /// too, and ahead of users when waiting.
    Login,
}

/// Why a request was not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `queue` requests were already waiting.
    QueueFull,
    /// No place came free within `wait`.
    TimedOut,
}

impl Refused {
    /// Why, as a client is told.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Refused::QueueFull => "too many requests are waiting for it",
            Refused::TimedOut => "no place came free in time",
        }
    }
}

struct State {
    config: Concurrency,
    in_use: usize,
    /// Places each user holds now; the name is shared with the passes.
    held: HashMap<Arc<str>, usize>,
    logins_waiting: VecDeque<Waiter>,
    users_waiting: HashMap<String, VecDeque<Waiter>>,
    /// Users with requests waiting, in the order of their next turn.
    turns: VecDeque<String>,
    waiting: usize,
    next_id: u64,
}

struct Waiter {
    id: u64,
    grant: oneshot::Sender<Pass>,
    inflight: IntGauge,
    queued: IntGauge,
}

/// A place at the Manager, given back when dropped.
pub(crate) struct Pass {
    shared: Arc<Shared>,
    user: Option<Arc<str>>,
    inflight: IntGauge,
}

impl State {
    fn user_may_enter(&self, user: &str) -> bool {
        self.in_use + self.config.logins < self.config.inflight
            && self.held.get(user).copied().unwrap_or(0) < self.config.per_user
    }

    fn take(&mut self, shared: &Arc<Shared>, user: Option<&str>, inflight: IntGauge) -> Pass {
        self.in_use += 1;
        let user = user.map(|user| match self.held.get_key_value(user) {
            Some((name, _)) => name.clone(),
            None => Arc::from(user),
        });
        if let Some(user) = &user {
            *self.held.entry(user.clone()).or_default() += 1;
        }
        inflight.inc();
        Pass {
            shared: shared.clone(),
            user,
            inflight,
        }
    }

    /// Hands free places to waiters: logins first, then users in turn. The passes are sent once
    /// the lock is released (a pass whose waiter is gone is dropped, which frees it again).
    fn dispatch(&mut self, shared: &Arc<Shared>) -> Vec<(oneshot::Sender<Pass>, Pass)> {
        let mut grants = Vec::new();
        while self.in_use < self.config.inflight
            && let Some(waiter) = self.logins_waiting.pop_front()
        {
            grants.push(self.grant(shared, waiter, None));
        }
        // One turn over the users waiting: each that may enter gets one place, then goes to
        // the back; repeated while places last.
        let mut passed = 0;
        while passed < self.turns.len() && self.in_use + self.config.logins < self.config.inflight {
            let user = self.turns.pop_front().expect("checked above");
            if !self.user_may_enter(&user) {
                self.turns.push_back(user);
                passed += 1;
                continue;
            }
            passed = 0;
            let queue = self.users_waiting.get_mut(&user).expect("a turn has waiters");
            let waiter = queue.pop_front().expect("a turn has waiters");
            if queue.is_empty() {
                self.users_waiting.remove(&user);
            } else {
                self.turns.push_back(user.clone());
            }
            grants.push(self.grant(shared, waiter, Some(&user)));
        }
        grants
    }

    fn grant(
        &mut self,
        shared: &Arc<Shared>,
        waiter: Waiter,
        user: Option<&str>,
    ) -> (oneshot::Sender<Pass>, Pass) {
        self.waiting -= 1;
        waiter.queued.dec();
        let pass = self.take(shared, user, waiter.inflight);
        (waiter.grant, pass)
    }

    /// Takes a waiter that gave up out of its queue; false when it was granted meanwhile.
    fn leave(&mut self, id: u64, user: Option<&str>) -> bool {
        let queue = match user {
            None => &mut self.logins_waiting,
            Some(user) => match self.users_waiting.get_mut(user) {
                Some(queue) => queue,
                None => return false,
            },
        };
        let Some(at) = queue.iter().position(|w| w.id == id) else {
            return false;
        };
        let waiter = queue.remove(at).expect("found above");
        waiter.queued.dec();
        self.waiting -= 1;
        if let Some(user) = user
            && queue.is_empty()
        {
            self.users_waiting.remove(user);
            self.turns.retain(|u| u != user);
        }
        true
    }
}

fn send(grants: Vec<(oneshot::Sender<Pass>, Pass)>) {
    for (grant, pass) in grants {
        // A waiter gone meanwhile: its pass is dropped here, which frees the place again.
        let _ = grant.send(pass);
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.inflight.dec();
        let grants = {
            let mut state = self.shared.lock();
            state.in_use -= 1;
            if let Some(user) = &self.user
                && let Some(held) = state.held.get_mut(user)
            {
                *held -= 1;
                if *held == 0 {
                    state.held.remove(user);
                }
            }
            state.dispatch(&self.shared)
        };
        send(grants);
    }
}

/// Removes a waiter from its queue when its request is abandoned or times out.
struct Leave<'a> {
    shared: &'a Arc<Shared>,
    id: u64,
    user: Option<&'a str>,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.shared.lock().leave(self.id, self.user);
    }
}

impl Gate {
    pub(crate) fn new(config: Concurrency) -> Gate {
        Gate {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    config,
                    in_use: 0,
                    held: HashMap::new(),
                    logins_waiting: VecDeque::new(),
                    users_waiting: HashMap::new(),
                    turns: VecDeque::new(),
                    waiting: 0,
                    next_id: 0,
                }),
            }),
        }
    }

    pub(crate) fn config(&self) -> Concurrency {
        self.shared.lock().config
    }

    /// New sizes for the requests that follow. Places over a smaller size are taken back as
    /// the requests holding them end; the requests at the Manager are never cut short.
    pub(crate) fn reconfigure(&self, new: Concurrency) {
        let grants = {
            let mut state = self.shared.lock();
            state.config = new;
            state.dispatch(&self.shared)
        };
        send(grants);
    }

    /// A place at the Manager for `caller`, at once or after waiting its turn; `inflight`
    /// counts it, `queued` counts the wait.
    pub(crate) async fn enter(
        &self,
        caller: Caller<'_>,
        inflight: IntGauge,
        queued: IntGauge,
    ) -> Result<Pass, Refused> {
        let user = match caller {
            Caller::User(user) => Some(user),
            Caller::Login => None,
        };
        let (id, granted, wait) = {
            let mut state = self.shared.lock();
            let now = match user {
                Some(user) => state.user_may_enter(user) && !state.users_waiting.contains_key(user),
                None => state.in_use < state.config.inflight && state.logins_waiting.is_empty(),
            };
            if now {
                return Ok(state.take(&self.shared, user, inflight));
            }
            if state.waiting >= state.config.queue {
                return Err(Refused::QueueFull);
            }
            let (grant, granted) = oneshot::channel();
            let id = state.next_id;
            state.next_id += 1;
            state.waiting += 1;
            queued.inc();
            let waiter = Waiter {
                id,
                grant,
                inflight,
                queued,
            };
            match user {
                None => state.logins_waiting.push_back(waiter),
                Some(user) => {
                    if !state.users_waiting.contains_key(user) {
                        state.turns.push_back(user.to_owned());
                    }
                    state
                        .users_waiting
                        .entry(user.to_owned())
                        .or_default()
                        .push_back(waiter);
                }
            }
            (id, granted, state.config.wait)
        };
        let _leave = Leave {
            shared: &self.shared,
            id,
            user,
        };
        match tokio::time::timeout(wait, granted).await {
            Ok(Ok(pass)) => Ok(pass),
            _ => Err(Refused::TimedOut),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn gate(inflight: usize, per_user: usize, logins: usize, queue: usize) -> Arc<Gate> {
        Arc::new(Gate::new(Concurrency {
            inflight,
            per_user,
            logins,
            queue,
            wait: Duration::from_secs(10),
        }))
    }

    fn gauge() -> IntGauge {
        IntGauge::new("inflight", "test").unwrap()
    }

    fn waiting(gate: &Gate) -> usize {
        gate.shared.lock().waiting
    }

    async fn enter(gate: &Gate, caller: Caller<'_>) -> Result<Pass, Refused> {
        gate.enter(caller, gauge(), gauge()).await
    }

    /// A waiter, spawned: records in `order` when it got its place, and gives it back at once.
    fn wait_in_turn(
        gate: &Arc<Gate>,
        user: &'static str,
        order: &Arc<Mutex<Vec<&'static str>>>,
    ) -> tokio::task::JoinHandle<Result<(), Refused>> {
        let (gate, order) = (gate.clone(), order.clone());
        tokio::spawn(async move {
            let pass = enter(&gate, Caller::User(user)).await?;
            order.lock().unwrap().push(user);
            drop(pass);
            Ok(())
        })
    }

    async fn until_waiting(gate: &Gate, count: usize) {
        while waiting(gate) < count {
            tokio::task::yield_now().await;
        }
    }

    /// `inflight` pass at once; the next wait, `queue` of them; the one after is refused at once;
    /// a waiter gets the place given back, or is refused after `wait`.
    #[tokio::test(start_paused = true)]
    async fn inflight_then_queue_then_refused() {
        let gate = gate(2, 2, 0, 1);
        let inflight = gauge();
        let first = gate
            .enter(Caller::User("a"), inflight.clone(), gauge())
            .await
            .unwrap();
        let _second = gate
            .enter(Caller::User("a"), inflight.clone(), gauge())
            .await
            .unwrap();
        assert_eq!(inflight.get(), 2);
        let order = Arc::default();
        let waiter = wait_in_turn(&gate, "b", &order);
        until_waiting(&gate, 1).await;
        assert_eq!(
            enter(&gate, Caller::User("c")).await.err(),
            Some(Refused::QueueFull)
        );
        drop(first);
        assert!(waiter.await.unwrap().is_ok());
        assert_eq!(waiting(&gate), 0);
        // Both places are taken again (the waiter's pass was dropped with its task: one left).
        let _third = gate
            .enter(Caller::User("d"), inflight.clone(), gauge())
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(
            enter(&gate, Caller::User("e")).await.err(),
            Some(Refused::TimedOut)
        );
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert_eq!(inflight.get(), 2);
    }

    /// A user at `per_user` waits while places are free for others.
    #[tokio::test(start_paused = true)]
    async fn one_user_holds_at_most_its_share() {
        let gate = gate(4, 2, 0, 10);
        let _a1 = enter(&gate, Caller::User("a")).await.unwrap();
        let a2 = enter(&gate, Caller::User("a")).await.unwrap();
        let order = Arc::default();
        let a3 = wait_in_turn(&gate, "a", &order);
        until_waiting(&gate, 1).await;
        let _b1 = enter(&gate, Caller::User("b")).await.unwrap();
        let _b2 = enter(&gate, Caller::User("b")).await.unwrap();
        drop(a2);
        assert!(a3.await.unwrap().is_ok());
    }

    /// Waiting users take turns: one with many requests waiting does not go before one that came
    /// later with few.
    #[tokio::test(start_paused = true)]
    async fn waiting_users_take_turns() {
        let gate = gate(1, 1, 0, 10);
        let only = enter(&gate, Caller::User("x")).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for _ in 0..4 {
            waiters.push(wait_in_turn(&gate, "a", &order));
            until_waiting(&gate, waiters.len()).await;
        }
        for _ in 0..2 {
            waiters.push(wait_in_turn(&gate, "b", &order));
            until_waiting(&gate, waiters.len()).await;
        }
        drop(only);
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), Ok(()));
        }
        assert_eq!(*order.lock().unwrap(), ["a", "b", "a", "b", "a", "a"]);
    }

    /// With every place users may take in use, a login still gets in; and a waiting login goes
    /// before waiting users.
    #[tokio::test(start_paused = true)]
    async fn logins_have_places_of_their_own() {
        let gate = gate(3, 2, 1, 10);
        let a1 = enter(&gate, Caller::User("a")).await.unwrap();
        let _b1 = enter(&gate, Caller::User("b")).await.unwrap();
        let order = Arc::default();
        let c1 = wait_in_turn(&gate, "c", &order);
        until_waiting(&gate, 1).await;
        let login = enter(&gate, Caller::Login).await.unwrap();
        let login_waits = {
            let gate = gate.clone();
            tokio::spawn(async move { enter(&gate, Caller::Login).await.map(drop) })
        };
        until_waiting(&gate, 2).await;
        drop(login);
        assert_eq!(login_waits.await.unwrap(), Ok(()));
        drop(a1);
        assert!(c1.await.unwrap().is_ok());
    }

    /// More places apply at once; fewer are taken back as the passes holding them end.
    #[tokio::test(start_paused = true)]
    async fn sizes_change_on_reconfigure() {
        let gate = gate(1, 3, 0, 0);
        let first = enter(&gate, Caller::User("a")).await.unwrap();
        assert_eq!(
            enter(&gate, Caller::User("a")).await.err(),
            Some(Refused::QueueFull)
        );
        let sizes = |inflight| Concurrency {
            inflight,
            per_user: 3,
            logins: 0,
            queue: 0,
            wait: Duration::from_secs(10),
        };
        gate.reconfigure(sizes(3));
        let second = enter(&gate, Caller::User("a")).await.unwrap();
        let third = enter(&gate, Caller::User("a")).await.unwrap();
        gate.reconfigure(sizes(1));
        drop(first);
        drop(second);
        // Two places given back, still one too many in use.
        assert_eq!(
            enter(&gate, Caller::User("a")).await.err(),
            Some(Refused::QueueFull)
        );
        drop(third);
        assert!(enter(&gate, Caller::User("a")).await.is_ok());
    }

    /// A waiter whose request is abandoned leaves the queue, and its turn.
    #[tokio::test(start_paused = true)]
    async fn abandoned_waiters_leave_the_queue() {
        let gate = gate(1, 1, 0, 1);
        let _only = enter(&gate, Caller::User("x")).await.unwrap();
        let order = Arc::default();
        let waiter = wait_in_turn(&gate, "a", &order);
        until_waiting(&gate, 1).await;
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(waiting(&gate), 0);
        assert!(gate.shared.lock().turns.is_empty());
    }
}
