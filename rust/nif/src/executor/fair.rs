//! Fair turns at the GIL on GIL builds (docs/architecture.md, "Fair turns at the GIL"): which
//! executor takes the GIL next when several want it, and which queued request an executor takes
//! next. Executor threads only.
//!
//! CPython hands the GIL to its waiters in no fair order: a thread that lets it go at the end
//! of a job takes it straight back before the woken waiter runs, and a waiter whose timed wait
//! ran out waits again behind the others, so a light call could wait many switch intervals
//! behind CPU-bound ones. Two mechanisms put the choice in our hands:
//!
//! - **The turnstile.** An executor about to take the GIL for a request passes a gate first: at
//!   most one executor at a time waits for the GIL in CPython; the others wait in a line here.
//!   When the one at the gate has the GIL, it lets the next one through. The next one is the
//!   longest waiting, unless the caller of another waiter used markedly less GIL time lately
//!   ([`Usage`], [`PICK_MARGIN_US`]): then the lightest one, as long as the longest waiting has
//!   not waited [`OVERDUE`]: no caller starves, and callers of similar use keep arrival order. If that next one's
//!   caller used markedly less than its own ([`YIELD_MARGIN_US`]), the executor that just got the
//!   GIL gives it up to it and queues again, so a light call does not wait behind a heavy one
//!   that reached the gate first.
//! - **The queue order** (`pool.rs`): of the requests waiting for an executor, an executor takes
//!   the one [`pick`] chooses, by the same rule.
//!
//! Uncontended, the gate costs two atomic compare-and-swaps and a load per request, and nothing
//! is timed: a request is timed and charged to its caller only when another executor waits at
//! the gate as it starts. Threads that are not executors, and executors taking the GIL back
//! inside a request (after a callback, a sleep, I/O), go straight to CPython: whoever holds the
//! GIL never waits for the line, and a waiter in line holds no GIL and no lock, so the line
//! cannot deadlock. Free-threaded builds have no GIL: everything here is off. Own-GIL
//! sub-interpreters do not come here.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use rustler::LocalPid;

use crate::interp;

/// Half-life of a caller's recorded GIL time: what it used a few hundred ms ago hardly counts.
const HALF_LIFE_MS: f64 = 100.0;
/// A waiter that has waited this long goes before any caller that used less (oldest first).
pub const OVERDUE: Duration = Duration::from_millis(50);
/// A waiter goes before longer-waiting ones only when its caller used this much less GIL time
/// lately (µs): between callers of about the same use, arrival order.
const PICK_MARGIN_US: f64 = 1000.0;
/// The executor that got the GIL gives it up to the next in line when that one's caller used
/// this much less GIL time lately (a light call behind a CPU-bound one), never between equals.
const YIELD_MARGIN_US: f64 = 1000.0;
/// Callers are accounted in this many buckets (by pid); two callers in one bucket share it.
const BUCKETS: usize = 1024;

/// True where there is a GIL to be fair about.
pub const ENABLED: bool = !interp::FREE_THREADED;

/// GIL time (µs) each bucket of callers used, decayed: the high 32 bits are the time of the
/// last update (ms since [`epoch`], wrapping), the low 32 bits the usage then (µs, saturating).
static ACCOUNTS: [AtomicU64; BUCKETS] = [const { AtomicU64::new(0) }; BUCKETS];

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u32 {
    // Wraps after 49 days; differences are taken wrapping.
    epoch().elapsed().as_millis() as u32
}

fn decayed(packed: u64, now: u32) -> f64 {
    let at = (packed >> 32) as u32;
    let usage = (packed & 0xffff_ffff) as f64;
    if usage == 0.0 {
        return 0.0;
    }
    let age = now.wrapping_sub(at) as f64;
    usage * (-age / HALF_LIFE_MS).exp2()
}

/// A pid is one word: a multiplicative (Fibonacci) hash spreads its bits, cheaper than SipHash.
struct Mix(u64);

impl Hasher for Mix {
    fn finish(&self) -> u64 {
        self.0 >> 32
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }
}

/// The GIL time a caller used lately, as a bucket of [`ACCOUNTS`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Usage(usize);

impl Usage {
    /// The account of `caller`.
    pub fn of(caller: &LocalPid) -> Usage {
        let mut hasher = Mix(0);
        caller.hash(&mut hasher);
        Usage(hasher.finish() as usize % BUCKETS)
    }

    /// The decayed GIL time (µs) of this account now.
    pub fn now(self) -> f64 {
        self.at(now_ms())
    }

    /// The decayed GIL time (µs) of this account at `now` (ms since [`epoch`]).
    fn at(self, now: u32) -> f64 {
        decayed(ACCOUNTS[self.0].load(Ordering::Relaxed), now)
    }

    /// Adds `held` of GIL time to the account.
    pub fn charge(self, held: Duration) {
        if !ENABLED {
            return;
        }
        let add = held.as_micros().min(u32::MAX as u128) as f64;
        let now = now_ms();
        let account = &ACCOUNTS[self.0];
        let mut old = account.load(Ordering::Relaxed);
        loop {
            let usage = (decayed(old, now) + add).min(u32::MAX as f64) as u64;
            let new = (u64::from(now) << 32) | usage;
            match account.compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => old = seen,
            }
        }
    }
}

/// Of candidates `(waiting since, account)`, the index of the one to serve next: the longest
/// waiting, unless a caller that used markedly less GIL time lately ([`PICK_MARGIN_US`]) waits
/// too and the longest waiting is not [`OVERDUE`]: then the one whose caller used the least.
/// Callers that used about as much as each other (the connections of a web server, the
/// callers of one workload) are served in arrival order, which keeps their tail short.
pub fn pick<I>(candidates: I, now: Instant) -> Option<usize>
where
    I: IntoIterator<Item = (Instant, Usage)>,
{
    // One instant for all, so that requests of one caller keep their order.
    let ms = now_ms();
    let mut best: Option<(usize, f64, Instant)> = None;
    let mut oldest: Option<(usize, f64, Instant)> = None;
    for (i, (since, usage)) in candidates.into_iter().enumerate() {
        let used = usage.at(ms);
        if oldest.is_none_or(|(_, _, t)| since < t) {
            oldest = Some((i, used, since));
        }
        if best.is_none_or(|(_, u, t)| used < u || (used == u && since < t)) {
            best = Some((i, used, since));
        }
    }
    let (oldest, oldest_used, since) = oldest?;
    match best {
        Some((i, used, _))
            if used + PICK_MARGIN_US < oldest_used
                && now.saturating_duration_since(since) < OVERDUE =>
        {
            Some(i)
        }
        _ => Some(oldest),
    }
}

const FREE: u8 = 0;
/// An executor is through the gate and waits for (or is just taking) the GIL; nobody in line.
const AT_GATE: u8 = 1;
/// As [`AT_GATE`], with executors in line.
const LINE: u8 = 2;

/// One executor waiting in line.
struct Waiter {
    usage: Usage,
    since: Instant,
    turn: Mutex<bool>,
    ready: Condvar,
}

impl Waiter {
    fn wait(&self) {
        let mut turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        while !*turn {
            turn = self
                .ready
                .wait(turn)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn admit(&self) {
        *self.turn.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.ready.notify_one();
    }
}

/// The gate and the line of executors waiting to go through it (one per process: the GIL is).
struct Turnstile {
    gate: AtomicU8,
    line: Mutex<Vec<Arc<Waiter>>>,
    /// Executors waiting in line now.
    waiting: AtomicUsize,
    /// Entries that found the gate taken and waited in line.
    waited: AtomicU64,
    /// Times an executor gave the GIL up to a lighter caller's.
    yielded: AtomicU64,
}

impl Turnstile {
    /// The line; nothing panics while it is held, so a poisoned lock still holds a true line.
    fn line(&self) -> MutexGuard<'_, Vec<Arc<Waiter>>> {
        self.line.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

static TURNSTILE: Turnstile = Turnstile {
    gate: AtomicU8::new(FREE),
    line: Mutex::new(Vec::new()),
    waiting: AtomicUsize::new(0),
    waited: AtomicU64::new(0),
    yielded: AtomicU64::new(0),
};

/// A snapshot of the turnstile, for `py_pool:fairness_stats/0`.
pub struct Stats {
    /// Executors waiting in line now.
    pub waiting: usize,
    /// An executor is through the gate (waiting for the GIL or about to have it).
    pub gate_taken: bool,
    /// Entries that waited in line, since start.
    pub waited: u64,
    /// Times an executor gave the GIL up to a lighter caller's, since start.
    pub yielded: u64,
}

/// The turnstile's counters.
pub fn stats() -> Stats {
    let t = &TURNSTILE;
    Stats {
        waiting: t.waiting.load(Ordering::Acquire),
        gate_taken: t.gate.load(Ordering::Acquire) != FREE,
        waited: t.waited.load(Ordering::Relaxed),
        yielded: t.yielded.load(Ordering::Relaxed),
    }
}

/// Takes the GIL for a request of the caller accounted in `usage`, through the turnstile, and
/// runs `f` with it. While others want the GIL too (someone at the gate when `f` starts), the
/// caller's account is charged with the time `f` held it; uncontended, nothing is timed.
/// Must be called without the GIL.
pub fn attach<R>(usage: Usage, f: impl FnOnce(Python<'_>) -> R) -> R {
    if !ENABLED {
        return Python::attach(f);
    }
    let since = enter(usage);
    Python::attach(|py| {
        through(py, usage, since);
        let contended = TURNSTILE.gate.load(Ordering::Acquire) != FREE;
        let start = contended.then(Instant::now);
        let result = f(py);
        if let Some(start) = start {
            usage.charge(start.elapsed());
        }
        result
    })
}

/// Goes through the gate: at once when it is free, else after waiting in line for a turn;
/// then since when it waited in line (`None`: it did not).
fn enter(usage: Usage) -> Option<Instant> {
    let t = &TURNSTILE;
    if t.gate
        .compare_exchange(FREE, AT_GATE, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        return None;
    }
    let since = Instant::now();
    wait_in_line(usage, since);
    Some(since)
}

fn wait_in_line(usage: Usage, since: Instant) {
    let t = &TURNSTILE;
    let waiter = Arc::new(Waiter {
        usage,
        since,
        turn: Mutex::new(false),
        ready: Condvar::new(),
    });
    {
        let mut line = t.line();
        loop {
            match t.gate.load(Ordering::Acquire) {
                FREE => {
                    if t.gate
                        .compare_exchange(FREE, AT_GATE, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return;
                    }
                }
                AT_GATE => {
                    if t.gate
                        .compare_exchange(AT_GATE, LINE, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        break;
                    }
                }
                _ => break,
            }
        }
        line.push(waiter.clone());
        t.waiting.fetch_add(1, Ordering::AcqRel);
    }
    t.waited.fetch_add(1, Ordering::Relaxed);
    // Admitted: the gate is this executor's now.
    waiter.wait();
}

/// With the GIL, just taken through the gate: lets the next executor in line through, or, when
/// that one's caller is markedly lighter than this one's, gives the GIL up to it and waits for
/// another turn (in line since `since`, or since now when it went straight to the gate).
fn through(py: Python<'_>, usage: Usage, since: Option<Instant>) {
    let t = &TURNSTILE;
    let mut since = since;
    loop {
        if t.gate
            .compare_exchange(AT_GATE, FREE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return;
        }
        let mut line = t.line();
        let now = Instant::now();
        let waited_since = *since.get_or_insert(now);
        let Some(next) = pick(line.iter().map(|w| (w.since, w.usage)), now) else {
            // LINE with nobody in line does not happen (the line is filled under the lock);
            // open the gate rather than keep it shut.
            t.gate.store(FREE, Ordering::Release);
            return;
        };
        let next = line.swap_remove(next);
        t.waiting.fetch_sub(1, Ordering::AcqRel);
        let yields = now.saturating_duration_since(waited_since) < OVERDUE
            && next.usage.now() + YIELD_MARGIN_US < usage.now();
        if !yields {
            if line.is_empty() {
                t.gate.store(AT_GATE, Ordering::Release);
            }
            drop(line);
            next.admit();
            return;
        }
        // Back in line (keeping its place in time), then the lighter one goes through, and
        // this executor lets the GIL go until its turn comes again.
        let me = Arc::new(Waiter {
            usage,
            since: waited_since,
            turn: Mutex::new(false),
            ready: Condvar::new(),
        });
        line.push(me.clone());
        t.waiting.fetch_add(1, Ordering::AcqRel);
        t.gate.store(LINE, Ordering::Release);
        drop(line);
        t.yielded.fetch_add(1, Ordering::Relaxed);
        next.admit();
        py.detach(|| me.wait());
    }
}
