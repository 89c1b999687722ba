//! Run slots shared fairly between callers.
//!
//! A plain semaphore serves waiters first come, first served: one caller that sends 200
//! runs at once holds every slot and queues in front of everyone else. Here each caller
//! may hold at most `per_caller` slots, and when a slot frees up it goes to the waiting
//! caller that holds the fewest (the longest-waiting of them on a tie), so a flood waits
//! behind its own runs while a caller with one short run is served next.
//!
//! The state is one small map behind a mutex, held only to count and to pick; waiters
//! whose callers gave up (cancelled, timed out) are dropped when they would be picked,
//! or when the same caller queues again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// The slots.
pub struct FairSlots {
    total: usize,
    per_caller: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    free: usize,
    /// Slots held, per caller holding any.
    held: HashMap<Arc<str>, usize>,
    /// Waiters per caller, oldest first (callers with none are removed).
    waiting: HashMap<Arc<str>, VecDeque<Waiter>>,
    /// Ticket counter: a lower ticket waited longer.
    next_ticket: u64,
}

struct Waiter {
    ticket: u64,
    grant: oneshot::Sender<Slot>,
}

/// One slot, held until dropped.
pub struct Slot {
    slots: Arc<FairSlots>,
    caller: Arc<str>,
    counted: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.counted {
            self.slots.release(&self.caller);
        }
    }
}

/// A wait for a slot: resolves when one is granted.
pub enum Acquire {
    /// Granted at once.
    Ready(Slot),
    /// Granted when the receiver resolves (dropping it gives the place up).
    Queued(oneshot::Receiver<Slot>),
}

impl FairSlots {
    /// `total` slots, at most `per_caller` of them held by one caller.
    pub fn new(total: usize, per_caller: usize) -> Arc<Self> {
        let total = total.max(1);
        Arc::new(Self {
            total,
            per_caller: per_caller.clamp(1, total),
            state: Mutex::new(State {
                free: total,
                ..State::default()
            }),
        })
    }

    /// How many slots there are.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The most one caller may hold.
    pub fn per_caller(&self) -> usize {
        self.per_caller
    }

    /// Ask for a slot for `caller`.
    pub fn acquire(self: &Arc<Self>, caller: &str) -> Acquire {
        let mut state = self.lock();
        let held = state.held.get(caller).copied().unwrap_or(0);
        let ahead = state.waiting.get(caller).is_some_and(|q| !q.is_empty());
        if state.free > 0 && held < self.per_caller && !ahead {
            state.free -= 1;
            let caller: Arc<str> = Arc::from(caller);
            *state.held.entry(caller.clone()).or_insert(0) += 1;
            return Acquire::Ready(Slot {
                slots: self.clone(),
                caller,
                counted: true,
            });
        }
        let (grant, granted) = oneshot::channel();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        let waiter = Waiter { ticket, grant };
        match state.waiting.get_mut(caller) {
            Some(queue) => {
                // Waiters of this caller that gave up go now, not only when they would
                // be picked: a caller whose calls keep giving up while every slot is
                // busy does not grow the queue.
                queue.retain(|w| !w.grant.is_closed());
                queue.push_back(waiter);
            }
            None => {
                state
                    .waiting
                    .insert(Arc::from(caller), VecDeque::from([waiter]));
            }
        }
        Acquire::Queued(granted)
    }

    /// Slots held by `caller` now.
    pub fn held_by(&self, caller: &str) -> usize {
        self.lock().held.get(caller).copied().unwrap_or(0)
    }

    /// Runs waiting for a slot now (callers that gave up included until they would be
    /// picked).
    pub fn waiting(&self) -> usize {
        self.lock().waiting.values().map(VecDeque::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release(self: &Arc<Self>, caller: &Arc<str>) {
        let mut refused = Vec::new();
        {
            let mut state = self.lock();
            if let Some(held) = state.held.get_mut(caller) {
                *held -= 1;
                if *held == 0 {
                    state.held.remove(caller);
                }
            }
            state.free += 1;
            self.dispatch(&mut state, &mut refused);
        }
        // Slots whose waiter had gone are dropped here, outside the lock, uncounted.
        drop(refused);
    }

    /// Give free slots to waiting callers: each to the eligible caller holding the
    /// fewest, the longest-waiting first on a tie.
    fn dispatch(self: &Arc<Self>, state: &mut State, refused: &mut Vec<Slot>) {
        while state.free > 0 {
            let next = state
                .waiting
                .iter()
                .filter_map(|(caller, queue)| {
                    let held = state.held.get(caller).copied().unwrap_or(0);
                    let oldest = queue.front()?.ticket;
                    (held < self.per_caller).then_some((held, oldest, caller.clone()))
                })
                .min_by_key(|(held, oldest, _)| (*held, *oldest));
            let Some((_, _, caller)) = next else { return };
            let queue = state.waiting.get_mut(&caller).expect("picked from the map");
            let waiter = queue.pop_front().expect("picked a non-empty queue");
            if queue.is_empty() {
                state.waiting.remove(&caller);
            }
            let slot = Slot {
                slots: self.clone(),
                caller: caller.clone(),
                counted: true,
            };
            match waiter.grant.send(slot) {
                Ok(()) => {
                    state.free -= 1;
                    *state.held.entry(caller).or_insert(0) += 1;
                }
                Err(mut slot) => {
                    // The waiter gave up: this slot was never counted.
                    slot.counted = false;
                    refused.push(slot);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(acquire: Acquire) -> Slot {
        match acquire {
            Acquire::Ready(slot) => slot,
            Acquire::Queued(_) => panic!("expected a slot at once"),
        }
    }

    fn queued(acquire: Acquire) -> oneshot::Receiver<Slot> {
        match acquire {
            Acquire::Queued(rx) => rx,
            Acquire::Ready(_) => panic!("expected to wait"),
        }
    }

    #[test]
    fn one_caller_cannot_hold_more_than_its_share() {
        let slots = FairSlots::new(8, 3);
        let held: Vec<_> = (0..3).map(|_| ready(slots.acquire("flood"))).collect();
        let mut fourth = queued(slots.acquire("flood"));
        // Another caller still gets a slot at once.
        let other = ready(slots.acquire("other"));
        assert_eq!(slots.held_by("flood"), 3);
        drop(held);
        // The flood's own wait is served when its runs end.
        assert!(fourth.try_recv().is_ok());
        drop(other);
    }

    #[test]
    fn a_freed_slot_goes_to_the_waiting_caller_holding_the_fewest() {
        let slots = FairSlots::new(4, 4);
        let mut flood: Vec<_> = (0..4).map(|_| ready(slots.acquire("flood"))).collect();
        // The flood queues more first...
        let mut flood_waits: Vec<_> = (0..10).map(|_| queued(slots.acquire("flood"))).collect();
        // ...then a short caller arrives.
        let mut short = queued(slots.acquire("short"));
        flood.pop();
        let _short_slot = short.try_recv().expect("the short caller is served first");
        assert!(flood_waits.iter_mut().all(|w| w.try_recv().is_err()));
        flood.pop();
        assert!(
            flood_waits[0].try_recv().is_ok(),
            "then the flood, in order"
        );
    }

    #[test]
    fn a_waiter_that_gave_up_does_not_keep_a_slot() {
        let slots = FairSlots::new(1, 1);
        let first = ready(slots.acquire("a"));
        let gone = queued(slots.acquire("b"));
        let mut next = queued(slots.acquire("c"));
        drop(gone);
        drop(first);
        let slot = next.try_recv().expect("c is served, b's place was skipped");
        drop(slot);
        let again = ready(slots.acquire("a"));
        assert_eq!(slots.waiting(), 0);
        drop(again);
        assert_eq!(slots.held_by("a"), 0);
    }

    #[test]
    fn waiters_that_gave_up_do_not_pile_up_while_every_slot_is_busy() {
        let slots = FairSlots::new(1, 1);
        let _busy = ready(slots.acquire("a"));
        for _ in 0..1000 {
            drop(queued(slots.acquire("b")));
        }
        let _live = queued(slots.acquire("b"));
        assert_eq!(slots.waiting(), 1);
    }

    #[test]
    fn a_granted_slot_dropped_unreceived_is_returned() {
        let slots = FairSlots::new(1, 1);
        let first = ready(slots.acquire("a"));
        let waiting = queued(slots.acquire("b"));
        drop(first); // granted to b, sitting in the channel
        drop(waiting); // b goes away without taking it
        let _again = ready(slots.acquire("c"));
    }
}
