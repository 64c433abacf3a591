//! Sliding log: exact, `limit` timestamps per subject.
//!
//! The log remembers when each of the last `limit` permits was admitted. A request of cost `c` at
//! `now` is admitted iff the permits admitted in `(now - period, now]`, plus `c`, are at most
//! `limit`. No boundary bursts and no approximation, at the price of `limit` slots of memory
//! (16 bytes each) per subject: right for small quotas that must hold exactly (logins, OTPs, SMS),
//! wasteful for "10 000 per hour".
//!
//! # Exact semantics
//!
//! - Each permit of a request is one entry; an entry admitted at `t` counts while `t > now - period`
//!   (and also while `t > now`: a clock that steps back never frees permits).
//! - An entry is recorded at `max(now, t_seen)`, where `t_seen` is the latest time the log has
//!   seen (its latest recorded admission or refund), so a clock stepping back never makes the log
//!   unsorted.
//! - [`refund`](crate::RateLimiter::refund) acts at `max(now, t_seen)` too and forgets the `c`
//!   *oldest* entries live then: the capacity freed is the same as forgetting the newest, and
//!   never more later (stricter, never looser). A forgotten entry's slot is free from that instant
//!   on, but still counts for a `now` before it: the slot may have held an older entry that such a
//!   `now` must still count, and a clock that steps back never frees permits.
//! - An entry whose expiry would reach `u64::MAX` never expires (stricter, never looser).
//!
//! # Lock-free state
//!
//! The log is a ring of `limit` slots, each holding the entry's *expiry* (`t + period`) and a
//! sequence number saying which position of the log it holds, plus one `head` counter: the number
//! of entries ever admitted. A request looks at the `c` oldest entries; if all have expired it
//! claims the positions with one compare-and-swap on `head`, then writes and publishes the slots.
//! It raises `t_seen` to its recording time *before* claiming, so whoever claims after it records
//! no earlier, even with an older `now` and before the slots are published: the log stays sorted.
//! (So `t_seen` may also hold the `now` of a request that then lost the race to claim: stricter.)
//! A refund forgets the oldest published entries; one racing a check whose older slot is not
//! yet published gives back less than asked (never more) rather than unsort the log.
//! A slot claimed but not yet published by another thread counts as live (the claimer's entry is
//! about to be there), so a race can deny early but never admit beyond the limit. A denial
//! revalidates `head` and never writes. `head` packs the number of positions ever claimed as
//! laps of the ring plus the slot index (so finding a slot needs no division) and never wraps.
//! [`reset`](crate::RateLimiter::reset) is not atomic with checks running at the same moment.
//! A request of one permit whose oldest entry is published takes a short path: the usual
//! denial when that entry is live, the usual admission when it has expired; they decide as the
//! general plan does, in fewer instructions (the model tests compare both with the reference).
//!
//! An admission reports `remaining`, so it counts the live entries. They are a suffix of the
//! log, and a hint remembers where it began at the last count; the hint also promises that the
//! entries before it had all expired by the `t_seen` read after it (whoever stores it raised
//! `t_seen` first). A count at a `now` no earlier than that `t_seen` (every request of a burst,
//! every request of a steady stream) then reads one slot, the hint's; one with an older `now`
//! (a clock stepping back, a thread racing with a newer reading) also reads the slot before it
//! to check the boundary, as every count did before.
//!
//! `head` and `t_seen` change with every admission; the quota and the slots' address are read by
//! every check. [`Padded`] keeps the former on a cache line of their own so that threads sharing
//! one log do not pull the latter back and forth with them; the keyed store, whose logs each
//! serve one key, keeps its logs compact instead (see [`Placement`]).

use crate::error::{validate_cost, CheckError, QuotaError};
use crate::limiter::RateLimiter;
use crate::sync::{AtomicU64, Ordering};
use crate::{Decision, Quota};
use crossbeam_utils::CachePadded;

/// One entry of a sliding log: 16 bytes.
#[derive(Debug, Default)]
pub struct LogSlot {
    /// `position + 1` of the entry the slot holds once published.
    seq: AtomicU64,
    /// When the entry stops counting (`0`: an empty slot; a refunded slot holds the instant from
    /// which it is free).
    expiry: AtomicU64,
}

impl LogSlot {
    /// An empty slot. [`SlidingLog::with_storage`] initialises the slots it is given.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Writes a claimed slot's expiry: a release store. Under loom, the equivalent swap: loom models
/// a plain store racing a compare-and-swap too weakly (it can let a refund's CAS that read the
/// slot's previous value take effect after the store, which the memory model forbids).
#[inline]
fn publish_expiry(slot: &LogSlot, expiry: u64) {
    #[cfg(not(loom))]
    slot.expiry.store(expiry, Ordering::Release);
    #[cfg(loom)]
    slot.expiry.swap(expiry, Ordering::Release);
}

/// `now`, or `u64::MAX - 1` for `u64::MAX`. The log decides alike at both: an entry counts at
/// `u64::MAX` only if it never expires (expiry `u64::MAX`), which is the one expiry above
/// `u64::MAX - 1`; every expiry recorded from either saturates to `u64::MAX`; and a refund acting
/// at either frees its slots from `u64::MAX - 1`. With it, "counts at `now`" is one comparison.
#[inline(always)]
fn before_end(now: u64) -> u64 {
    now.min(u64::MAX - 1)
}

/// How many positions a count steps forward from its hint before it searches.
const SCAN: u32 = 4;

/// What a slot holds for one log position.
enum Entry {
    /// Published: the entry's expiry.
    Published(u64),
    /// Claimed by another thread and not yet written.
    InFlight,
    /// Already overwritten by a later position: the caller's view of `head` is stale.
    Stale,
}

/// The ring positions `oldest..oldest + limit` and the slot index of `oldest`: slots are then
/// found by additions (a `%` per slot access cost more than the rest of a check).
#[derive(Clone, Copy)]
struct Span {
    oldest: u64,
    base: usize,
}

/// One snapshot of `head`: the packed word (for the compare-and-swap), the position it stands
/// for and that position's slot index.
#[derive(Clone, Copy)]
struct Head {
    word: u64,
    position: u64,
    index: usize,
}

impl Head {
    /// The positions `position - limit..position`: `oldest` has the same slot as `position`.
    fn span(self, limit: u64) -> Span {
        Span {
            oldest: self.position - limit,
            base: self.index,
        }
    }
}

/// What a decision reads first: `head` and the oldest entry's slot. The short denial and `plan`
/// both start from it: reading them twice cost a second round of cache misses when two threads
/// share the log. (`t_seen`, which only an admission needs, is read by `plan` when it admits:
/// one load less for every denial.)
struct Look {
    head: Head,
    /// The oldest position's entry.
    first: Entry,
}

/// Where a count of live entries starts looking: see [`Cursor::live_from`].
#[derive(Clone, Copy)]
struct Hint {
    /// The stored hint: the live entries began there (any value; clamped to the count's span).
    position: u64,
    /// `now` is no earlier than the `t_seen` read after the hint: every entry before
    /// `position` has stopped counting at `now`.
    settled: bool,
}

/// What a request would do, decided from one snapshot of `head`.
enum Plan {
    Retry,
    Deny(Report),
    Admit {
        head: Head,
        span: Span,
        /// The recording time, `max(now, t_seen)`, plus the period.
        expiry: u64,
        report: Report,
    },
}

/// A planned decision's numbers; `allowed` is the plan's variant and `limit` the log's.
///
/// Not a [`Decision`]: a plan goes through memory, and a `Decision` copied out of it carries
/// the seven padding bytes after `allowed` along as data. Every decision of the log then had
/// to store them too (an 8-byte load, three shifts and four stores each time), since its
/// other paths build their `Decision` in registers and the copies meet at the return.
#[derive(Clone, Copy)]
struct Report {
    remaining: u64,
    retry_after: u64,
    reset_after: u64,
}

/// The log's moving words: `head`, `t_seen` and the hint of where the live entries begin.
#[doc(hidden)]
#[derive(Debug)]
pub struct Cursor {
    /// The next position, packed as `laps << index_bits | index` with
    /// `position = laps * limit + index`: the slot index comes without a division, and a claim
    /// is still one compare-and-swap. `laps` has `64 - bits(limit)` bits: at least 2^63 permits before it
    /// could wrap (centuries at a billion permits per second).
    head: AtomicU64,
    /// `t_seen`: the latest recording time of an admission or acting time of a refund.
    seen: AtomicU64,
    /// The position where the live entries began at the last admission or refund that
    /// counted them: counting checks the slots around it first, so a steady stream of checks
    /// reads one or two slots instead of `log2(limit)`. Beside `head` and `t_seen`: read with
    /// them, and written by admissions as they are.
    ///
    /// It is also a promise: every entry at a position below it had stopped counting at some
    /// time no later than the `t_seen` read after it. Whoever stores it has found those
    /// entries expired at its `now` (the log is sorted: up to its last expired entry) and
    /// raised `t_seen` to at least that `now` first; the release store and the acquire load
    /// carry that to the reader. An entry that stopped counting never counts again (a refund
    /// only lowers an expiry; a slot is reused only by a position at or beyond `head`), so a
    /// count at a `now` no earlier than that `t_seen` needs not read the entry before the hint
    /// ([`Hint::settled`]): one slot read less for every admission of a burst or a steady
    /// stream, the usual ones.
    live_from: AtomicU64,
}

/// Where a sliding log keeps the words admissions change (the next position, the latest time
/// seen, the hint of where the live entries begin): on a cache line of their own ([`Padded`],
/// the one public choice), or beside the quota (the keyed store's compact logs). Sealed.
pub trait Placement: sealed::Sealed {
    /// Places `cursor`.
    #[doc(hidden)]
    fn place(cursor: Cursor) -> Self;
    /// The placed cursor.
    #[doc(hidden)]
    fn cursor(&self) -> &Cursor;
}

mod sealed {
    pub trait Sealed {}
}

/// The cursor on a cache line of its own: every admission changes it, and when several threads
/// share one log, the quota and the slots' address (read by every check) must not move between
/// cores with it. Two threads on one log of the benchmark's quota decide about a fifth faster
/// than with the compact placement (61 against 76 ns per decision: medians of ten alternating
/// runs of the `rounds` report of `make bench`). The price is the padding: a log takes 256
/// bytes besides its slots, against 64.
#[derive(Debug)]
pub struct Padded(CachePadded<Cursor>);

/// The cursor beside the quota: 64 bytes besides the slots. The keyed store's choice, where
/// each key has its own log and memory per key counts more than two threads racing on one key.
#[cfg_attr(not(feature = "std"), allow(dead_code))]
#[derive(Debug)]
pub(crate) struct Compact(Cursor);

impl sealed::Sealed for Padded {}
impl sealed::Sealed for Compact {}

impl Placement for Padded {
    fn place(cursor: Cursor) -> Self {
        Padded(CachePadded::new(cursor))
    }
    #[inline(always)]
    fn cursor(&self) -> &Cursor {
        &self.0
    }
}

impl Placement for Compact {
    fn place(cursor: Cursor) -> Self {
        Compact(cursor)
    }
    #[inline(always)]
    fn cursor(&self) -> &Cursor {
        &self.0
    }
}

/// An exact sliding-log limiter for one subject, over any slot storage.
///
/// With feature `alloc`, [`SlidingLog::new`] allocates its slots; without it, hand it an array
/// or slice of exactly `limit` slots with [`SlidingLog::with_storage`].
///
/// ```
/// use ratewall::{LogSlot, Quota, RateLimiter, SlidingLog, time::SECOND};
/// let slots: [LogSlot; 3] = Default::default();
/// let log = SlidingLog::with_storage(Quota::per_second(3)?, slots)?;
/// assert!(log.check(0, 2)?.allowed);
/// assert!(log.check(SECOND / 2, 1)?.allowed);
/// let denied = log.check(SECOND - 1, 1)?;
/// // The two permits taken at 0 stop counting at exactly 1 s.
/// assert_eq!((denied.allowed, denied.retry_after), (false, 1));
/// assert!(log.check(SECOND, 2)?.allowed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SlidingLog<S, P = Padded> {
    limit: u64,
    period: u64,
    /// Bits of `head` that hold the slot index.
    index_bits: u32,
    /// `head`, `t_seen` and the live-count hint, which admissions change: see [`Placement`].
    placed: P,
    slots: S,
}

#[cfg(feature = "alloc")]
impl SlidingLog<alloc::boxed::Box<[LogSlot]>> {
    /// A sliding log with `quota.limit()` slots on the heap.
    pub fn new(quota: Quota) -> Result<Self, QuotaError> {
        Self::placed(quota, heap_slots(quota)?)
    }
}

/// The number of slots a log of `quota` needs, if a heap allocation can hold them (at most
/// `isize::MAX` bytes).
#[cfg(feature = "alloc")]
pub(crate) fn slot_count(quota: Quota) -> Result<usize, QuotaError> {
    usize::try_from(quota.limit())
        .ok()
        .filter(|n| {
            n.checked_mul(core::mem::size_of::<LogSlot>())
                .is_some_and(|bytes| bytes <= isize::MAX as usize)
        })
        .ok_or(QuotaError::LimitTooLarge {
            max: (isize::MAX as usize / core::mem::size_of::<LogSlot>()) as u64,
        })
}

/// `quota.limit()` empty slots on the heap.
#[cfg(feature = "alloc")]
pub(crate) fn heap_slots(quota: Quota) -> Result<alloc::boxed::Box<[LogSlot]>, QuotaError> {
    Ok((0..slot_count(quota)?).map(|_| LogSlot::new()).collect())
}

impl<S: AsRef<[LogSlot]>> SlidingLog<S> {
    /// A sliding log over caller-provided storage of exactly `quota.limit()` slots.
    pub fn with_storage(quota: Quota, slots: S) -> Result<Self, QuotaError> {
        Self::placed(quota, slots)
    }
}

impl<S: AsRef<[LogSlot]>, P: Placement> SlidingLog<S, P> {
    /// [`with_storage`](SlidingLog::with_storage) with the cursor placed by `P`.
    pub(crate) fn placed(quota: Quota, slots: S) -> Result<Self, QuotaError> {
        let given = slots.as_ref().len() as u64;
        if given != quota.limit() {
            return Err(QuotaError::StorageSize {
                needed: quota.limit(),
                given,
            });
        }
        let log = SlidingLog {
            limit: quota.limit(),
            period: quota.period(),
            index_bits: u64::BITS - quota.limit().leading_zeros(),
            placed: P::place(Cursor {
                // Position `limit`: one lap, index 0.
                head: AtomicU64::new(1 << (u64::BITS - quota.limit().leading_zeros())),
                seen: AtomicU64::new(0),
                live_from: AtomicU64::new(0),
            }),
            slots,
        };
        log.clear();
        Ok(log)
    }

    #[inline(always)]
    fn cursor(&self) -> &Cursor {
        self.placed.cursor()
    }

    /// Marks every slot as an expired entry at positions `0..limit`; `head` starts at `limit`.
    fn clear(&self) {
        for (i, slot) in self.slots.as_ref().iter().enumerate() {
            slot.expiry.store(0, Ordering::Relaxed);
            slot.seq.store(i as u64 + 1, Ordering::Release);
        }
    }

    fn head(&self) -> Head {
        let word = self.cursor().head.load(Ordering::Acquire);
        let laps = word >> self.index_bits;
        // The low bits, without building a mask: one instruction less.
        let index = word - (laps << self.index_bits);
        Head {
            word,
            position: laps * self.limit + index,
            index: index as usize,
        }
    }

    #[inline(always)]
    fn look(&self) -> Look {
        let head = self.head();
        let slot = self.slot_at(head.index);
        let seq = slot.seq.load(Ordering::Acquire);
        let expiry = slot.expiry.load(Ordering::Acquire);
        Look {
            head,
            first: Self::entry(seq, expiry, head.position - self.limit),
        }
    }

    /// `head`'s word after claiming `cost <= limit` positions.
    fn advanced(&self, head: Head, cost: u64) -> u64 {
        let laps = head.word >> self.index_bits;
        let index = head.index as u64 + cost;
        if index >= self.limit {
            (laps + 1) << self.index_bits | (index - self.limit)
        } else {
            laps << self.index_bits | index
        }
    }

    /// The slot of `position`, one of `span`'s.
    #[inline]
    fn slot(&self, span: Span, position: u64) -> &LogSlot {
        self.slot_at(self.index(span, position))
    }

    /// The slot index of `position`, one of `span`'s.
    #[inline(always)]
    fn index(&self, span: Span, position: u64) -> usize {
        let len = self.slots.as_ref().len();
        let index = span.base + (position - span.oldest) as usize;
        if index >= len {
            index - len
        } else {
            index
        }
    }

    /// The slot index before `index`, around the ring.
    #[inline(always)]
    fn index_before(&self, index: usize) -> usize {
        index
            .checked_sub(1)
            .unwrap_or(self.slots.as_ref().len() - 1)
    }

    fn read(&self, span: Span, position: u64) -> Entry {
        let slot = self.slot(span, position);
        let seq = slot.seq.load(Ordering::Acquire);
        let expiry = slot.expiry.load(Ordering::Acquire);
        Self::entry(seq, expiry, position)
    }

    /// The slot of index `index` (below `limit`): `head`'s index is the oldest position's.
    #[inline(always)]
    fn slot_at(&self, index: usize) -> &LogSlot {
        &self.slots.as_ref()[index]
    }

    /// What a slot read as `seq` and `expiry` holds for `position`.
    #[inline(always)]
    fn entry(seq: u64, expiry: u64, position: u64) -> Entry {
        match seq.cmp(&(position + 1)) {
            core::cmp::Ordering::Equal => Entry::Published(expiry),
            core::cmp::Ordering::Less => Entry::InFlight,
            core::cmp::Ordering::Greater => Entry::Stale,
        }
    }

    /// Like [`read`](Self::read), but sure that a published expiry is `position`'s own: a
    /// claimer clears `seq` before it overwrites `expiry`, so a `seq` unchanged across the
    /// `expiry` read means no later position's claimer had written it yet.
    fn read_exact(&self, span: Span, position: u64) -> Entry {
        match self.read(span, position) {
            Entry::Published(_)
                if self.slot(span, position).seq.load(Ordering::Acquire) != position + 1 =>
            {
                Entry::Stale
            }
            entry => entry,
        }
    }

    /// Whether `position` counts at `now`, for counting the live entries: a published entry
    /// that is live, or an entry claimed and not yet published. The claimer's entry is about to
    /// be there, recorded at its `now` or later; read as the expired value the slot still holds,
    /// two requests racing for the same count would both report the `remaining` of the first.
    /// (A slot already overwritten by a later lap counts too: the caller's `head` is stale, and
    /// its compare-and-swap will fail.)
    #[inline(always)]
    fn counts(&self, span: Span, position: u64, now: u64) -> bool {
        Self::counts_in(self.slot(span, position), position, now)
    }

    /// [`counts`](Self::counts) of `position`'s slot, found already.
    #[inline(always)]
    fn counts_in(slot: &LogSlot, position: u64, now: u64) -> bool {
        // `read`'s three cases, two of which count alike, as one comparison of `seq`.
        let seq = slot.seq.load(Ordering::Acquire);
        let expiry = slot.expiry.load(Ordering::Acquire);
        seq != position + 1 || Self::live(expiry, now)
    }

    /// Whether an entry counts at `now`. An expiry of `u64::MAX` means "never expires": every
    /// entry point passes its `now` through [`before_end`], so `now < u64::MAX` and such an
    /// entry is always later than `now`.
    #[inline(always)]
    fn live(expiry: u64, now: u64) -> bool {
        debug_assert!(now < u64::MAX);
        expiry > now
    }

    /// The hint of where the live entries begin and `t_seen`, read in that order (see
    /// [`Cursor::live_from`]): the hint for a count at `now`, and `t_seen`.
    #[inline(always)]
    fn hint(&self, now: u64) -> (Hint, u64) {
        let position = self.cursor().live_from.load(Ordering::Acquire);
        let seen = self.cursor().seen.load(Ordering::Acquire);
        let hint = Hint {
            position,
            settled: now >= seen,
        };
        (hint, seen)
    }

    /// Live entries among positions `from..to` (all in `span`), every entry before `from`
    /// having stopped counting at `now`. The log is sorted by expiry (refunded slots read 0 and
    /// sit among expired ones), so the live entries are a suffix: where it starts is looked for
    /// from the hint on. `learn` stores what was found as the next hint (never on a denial or a
    /// peek: they never write); a caller that learns has raised `t_seen` to `now` or beyond.
    #[inline(always)]
    fn live_count(
        &self,
        span: Span,
        (from, to): (u64, u64),
        now: u64,
        hint: Hint,
        learn: bool,
    ) -> u64 {
        let start = hint.position;
        let first = if hint.settled && from < start && start < to {
            // The usual count, in branches the processor predicts: the hint inside the span
            // and its promise holding, the live entries begin at the hint or after it.
            if self.counts(span, start, now) {
                start
            } else {
                self.scan_live(span, start + 1, to, now)
            }
        } else {
            // `from <= to`: `clamp`'s check that they are in order would cost two instructions.
            let start = start.max(from).min(to);
            self.first_live(span, start, from, to, now, hint.settled)
        };
        if learn && first != start {
            self.cursor().live_from.store(first, Ordering::Release);
        }
        to - first
    }

    /// The first live position among `from..to`, starting from `hint` (in that range). If the
    /// entry before it has expired, the boundary is at `hint` or a little later: entries expire
    /// in order, so a steady stream of requests finds it there, one or two positions on since
    /// the last count. Otherwise (or further on) a binary search finds it. `settled`: the
    /// entries before `hint` are known to have expired by `now` ([`Cursor::live_from`]'s
    /// promise), so the one before it is not read.
    #[inline(always)]
    fn first_live(
        &self,
        span: Span,
        hint: u64,
        from: u64,
        to: u64,
        now: u64,
        settled: bool,
    ) -> u64 {
        // `hint`'s slot index, found once: the one before is the previous index, around the
        // ring.
        let index = self.index(span, hint);
        // `hint`'s slot, found before its neighbour's: one instruction less (callgrind).
        let at = self.slot_at(index);
        if hint > from
            && !settled
            && Self::counts_in(self.slot_at(self.index_before(index)), hint - 1, now)
        {
            return self.search_live(span, from, hint - 1, now);
        }
        if hint == to || Self::counts_in(at, hint, now) {
            return hint;
        }
        self.scan_live(span, hint + 1, to, now)
    }

    /// The first live position among `from..to` when the one before `from` has expired: up to
    /// [`SCAN`] positions on, then a binary search. Out of line: the hint is usually right.
    #[inline(never)]
    fn scan_live(&self, span: Span, from: u64, to: u64, now: u64) -> u64 {
        let mut first = from;
        for _ in 0..SCAN {
            if first == to || self.counts(span, first, now) {
                return first;
            }
            first += 1;
        }
        self.search_live(span, first, to, now)
    }

    /// The first live position among `from..to` when the hint missed: a binary search, kept
    /// out of line so the common case stays small.
    #[inline(never)]
    fn search_live(&self, span: Span, from: u64, to: u64, now: u64) -> u64 {
        let live_at = |position| self.counts(span, position, now);
        let (mut lo, mut hi) = (from, to);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if live_at(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    /// Nanoseconds from `now` until `expiry` (0 once it has passed; `u64::MAX` for "never").
    /// Of the newest entry's expiry, the `reset_after` of the log: until it stops counting, 0
    /// when it no longer does (an entry that counts at `now` expires after it, or never).
    #[inline(always)]
    fn until(expiry: u64, now: u64) -> u64 {
        let wait = expiry.saturating_sub(now);
        if expiry == u64::MAX {
            u64::MAX
        } else {
            wait
        }
    }

    /// [`until`](Self::until) of an `expiry` that counts at `now` (so `expiry > now`).
    #[inline(always)]
    fn until_live(expiry: u64, now: u64) -> u64 {
        debug_assert!(Self::live(expiry, now));
        if expiry == u64::MAX {
            u64::MAX
        } else {
            expiry - now
        }
    }

    // Always inlined, as `check` is: a `Plan` (or a `Decision`) returned through memory from an
    // out-of-line call is written field by field and read back by the caller in 16-byte pairs,
    // loads the CPU cannot forward from those stores. That stall cost a denial 6 ns of 16; the
    // cold parts (`search_live`) stay out of line.
    #[inline(always)]
    fn plan(&self, now: u64, cost: u64, look: Look, learn: bool) -> Plan {
        let snapshot = look.head;
        let head = snapshot.position;
        let span = snapshot.span(self.limit);
        let oldest = span.oldest;
        let first = look.first;
        let mut blocked_until = 0;
        let mut oldest_live = false;
        let mut in_flight = false;
        let mut entry = first;
        for position in oldest..oldest + cost {
            if position > oldest {
                entry = self.read(span, position);
            }
            match entry {
                Entry::Published(e) if Self::live(e, now) => {
                    oldest_live |= position == oldest;
                    blocked_until = blocked_until.max(e)
                }
                Entry::Published(_) => {}
                Entry::InFlight => in_flight = true,
                Entry::Stale => return Plan::Retry,
            }
        }
        if blocked_until > 0 || in_flight {
            let newest = self.newest(snapshot);
            if self.cursor().head.load(Ordering::Acquire) != snapshot.word {
                return Plan::Retry;
            }
            let mut retry_after = Self::until(blocked_until, now);
            if in_flight {
                // The claimer's entry will expire about one period from now.
                retry_after = retry_after.max(self.period);
            }
            return Plan::Deny(Report {
                remaining: if in_flight {
                    let (hint, _) = self.hint(now);
                    self.limit - self.live_count(span, (oldest, head), now, hint, false)
                } else if oldest_live {
                    // The oldest entry is live: the log is sorted, so all are (the usual denial).
                    0
                } else {
                    // A published live entry among the `cost` oldest: the log is sorted, so
                    // every entry after it is live too; only those before it may have expired.
                    let (hint, _) = self.hint(now);
                    cost - self.live_count(span, (oldest, oldest + cost), now, hint, false)
                },
                retry_after,
                // See `full_denial`: at least `retry_after`.
                reset_after: Self::until(newest, now).max(retry_after),
            });
        }
        // `t_seen`, read after `head`: every claimer of a position below `head` raised it first.
        let (hint, seen) = self.hint(now);
        let at = now.max(seen);
        if learn {
            self.raise_seen(seen, at);
        }
        let expiry = at.saturating_add(self.period);
        let older_live = self.live_count(span, (oldest + cost, head), now, hint, learn);
        Plan::Admit {
            head: snapshot,
            span,
            expiry,
            report: Report {
                remaining: self.limit - cost - older_live,
                retry_after: 0,
                reset_after: Self::until(expiry, now),
            },
        }
    }

    /// The decision a plan reported.
    #[inline(always)]
    fn decision(&self, allowed: bool, report: Report) -> Decision {
        Decision {
            allowed,
            limit: self.limit,
            remaining: report.remaining,
            retry_after: report.retry_after,
            reset_after: report.reset_after,
        }
    }

    /// The usual denial, decided from two slots: a request of one permit while the oldest entry
    /// is published and live, so (the log being sorted) every entry is. `plan` decides the same
    /// (`oldest_live`) after a general pass over `cost` slots; a full log that keeps being asked
    /// is the case a limiter meets most under attack, so it gets its own short path. `None`
    /// when the oldest entry is not a published live one, or `head` moved: `plan` decides then.
    #[inline(always)]
    fn full_denial(&self, look: &Look, now: u64) -> Option<Decision> {
        let snapshot = look.head;
        let Entry::Published(expiry) = look.first else {
            return None;
        };
        if !Self::live(expiry, now) {
            return None;
        }
        let mut newest = self.newest(snapshot);
        if self.cursor().head.load(Ordering::Acquire) != snapshot.word {
            return None;
        }
        if newest < expiry {
            newest = Self::raced_newest(expiry);
        }
        // Both count at `now`: `until` without its `saturating_sub`.
        Some(Decision {
            allowed: false,
            limit: self.limit,
            remaining: 0,
            retry_after: Self::until_live(expiry, now),
            reset_after: Self::until_live(newest, now),
        })
    }

    /// The usual admission, on a short path: one permit while the oldest entry is published
    /// and expired (the caller checked). `plan` decides the same (one slot to check, then the
    /// count of the live entries after it); this path goes straight to the claim with what it
    /// read, in fewer instructions: the allow path's time follows its instruction count
    /// closely (callgrind, a loop of admissions in bursts with the loop's own work: 170 per
    /// admission through `plan`, 148 on this path reading two slots to count, 122 reading one
    /// on the hint's promise; the token bucket's, 55).
    /// `None` when another request claimed `head` first: look again.
    #[inline(always)]
    fn quick_admit(&self, head: Head, now: u64) -> Option<Decision> {
        let span = head.span(self.limit);
        let (hint, seen) = self.hint(now);
        let at = now.max(seen);
        self.raise_seen(seen, at);
        let older_live = self.live_count(span, (span.oldest + 1, head.position), now, hint, true);
        let expiry = at.saturating_add(self.period);
        if self
            .cursor()
            .head
            .compare_exchange(
                head.word,
                self.advanced_one(head),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return None;
        }
        // The claimed position's slot is the oldest's: `head`'s index.
        Self::write(self.slot_at(head.index), head.position, expiry);
        Some(Decision {
            allowed: true,
            limit: self.limit,
            remaining: self.limit - 1 - older_live,
            retry_after: 0,
            // `until` without its `saturating_sub`: `expiry >= at >= now`.
            reset_after: if expiry == u64::MAX {
                u64::MAX
            } else {
                expiry - now
            },
        })
    }

    /// The newest expiry for the usual denial when the newest slot was read before its
    /// claimer wrote it (it still held its previous, long expired entry: the claimer had moved
    /// `head` and not yet written the slot): the oldest entry's `expiry`, since the log is
    /// sorted and no entry expires before the oldest. Out of line and returning a word: rare,
    /// and a `Decision` built apart would come back through memory and slow every denial.
    #[cold]
    #[inline(never)]
    fn raced_newest(expiry: u64) -> u64 {
        expiry
    }

    /// Raises `t_seen` from `seen` (read after `head`) to `at`, before claiming: a later
    /// claimer with an older `now` (which may read our slots before we publish them) then still
    /// records after us, and before storing a hint (see [`Cursor::live_from`]). `t_seen` only
    /// grows: when it already holds `at`, there is nothing to raise (a claimer that acquires
    /// our `head` then reads it or a later value), and skipping the read-modify-write halves
    /// the cost of an admission.
    #[inline(always)]
    fn raise_seen(&self, seen: u64, at: u64) {
        if seen < at {
            self.cursor().seen.fetch_max(at, Ordering::AcqRel);
        }
    }

    /// [`advanced`](Self::advanced) by one position.
    #[inline(always)]
    fn advanced_one(&self, head: Head) -> u64 {
        if head.index as u64 + 1 == self.limit {
            ((head.word >> self.index_bits) + 1) << self.index_bits
        } else {
            head.word + 1
        }
    }

    /// Claims the `cost` positions from `head` on: whether the compare-and-swap won.
    #[inline(always)]
    fn claim(&self, head: Head, cost: u64) -> bool {
        self.cursor()
            .head
            .compare_exchange(
                head.word,
                self.advanced(head, cost),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Writes `expiry` into the `cost` positions claimed from `head` on.
    #[inline(always)]
    fn record(&self, span: Span, head: u64, cost: u64, expiry: u64) {
        for position in head..head + cost {
            // `position` holds the slot `position - limit` held: in `span`.
            Self::write(self.slot(span, position - self.limit), position, expiry);
        }
    }

    /// Writes the entry of a claimed `position` into its slot.
    #[inline(always)]
    fn write(slot: &LogSlot, position: u64, expiry: u64) {
        // Mark the slot in flight before overwriting it (see `read_exact`).
        slot.seq.store(0, Ordering::Relaxed);
        publish_expiry(slot, expiry);
        slot.seq.store(position + 1, Ordering::Release);
    }

    /// [`check`](RateLimiter::check) once the cost is valid.
    #[inline(always)]
    fn take(&self, now: u64, cost: u64) -> Decision {
        loop {
            let look = self.look();
            if cost == 1 {
                if let Some(denial) = self.full_denial(&look, now) {
                    return denial;
                }
                if let Entry::Published(expiry) = look.first {
                    if !Self::live(expiry, now) {
                        match self.quick_admit(look.head, now) {
                            Some(decision) => return decision,
                            None => continue,
                        }
                    }
                }
            }
            match self.plan(now, cost, look, true) {
                Plan::Retry => continue,
                Plan::Deny(report) => return self.decision(false, report),
                Plan::Admit {
                    head,
                    span,
                    expiry,
                    report,
                } => {
                    // `plan` raised `t_seen` to the recording time.
                    if !self.claim(head, cost) {
                        continue;
                    }
                    self.record(span, head.position, cost, expiry);
                    return self.decision(true, report);
                }
            }
        }
    }

    /// `true` when no entry counts at `now`: from then on the log decides like an empty one, so
    /// a keyed store may drop it.
    pub fn is_idle(&self, now: u64) -> bool {
        self.idle_after(now) == 0
    }

    /// Nanoseconds from `now` until no entry counts (0 when none does).
    pub fn idle_after(&self, now: u64) -> u64 {
        let now = before_end(now);
        let newest = self.newest(self.head());
        Self::until(newest, now)
    }

    /// Expiry of the newest entry below `head`.
    #[inline(always)]
    fn newest(&self, head: Head) -> u64 {
        self.slot_at(self.index_before(head.index))
            .expiry
            .load(Ordering::Acquire)
    }

    /// The decision a refund at `now` reports; `refund` raised `t_seen` to `now` first.
    fn state_after_refund(&self, now: u64) -> Decision {
        let snapshot = self.head();
        let head = snapshot.position;
        let span = snapshot.span(self.limit);
        let newest = self.newest(snapshot);
        let (hint, _) = self.hint(now);
        let live = self.live_count(span, (head - self.limit, head), now, hint, true);
        Decision {
            allowed: true,
            limit: self.limit,
            remaining: self.limit - live,
            retry_after: 0,
            reset_after: Self::until(newest, now),
        }
    }
}

impl<S: AsRef<[LogSlot]>, P: Placement> RateLimiter for SlidingLog<S, P> {
    // Always inlined: see `plan`.
    #[inline(always)]
    fn check(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        // A literal 1 for the usual request: the compiler then lays out a straight-line
        // single-permit path (no loops over the cost). One permit is always valid: a quota's
        // limit is at least 1.
        if cost == 1 {
            return Ok(self.take(before_end(now), 1));
        }
        validate_cost(cost, self.limit)?;
        Ok(self.take(before_end(now), cost))
    }

    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        validate_cost(cost, self.limit)?;
        let now = before_end(now);
        loop {
            match self.plan(now, cost, self.look(), false) {
                Plan::Retry => continue,
                Plan::Deny(report) => return Ok(self.decision(false, report)),
                Plan::Admit { report, .. } => return Ok(self.decision(true, report)),
            }
        }
    }

    fn refund(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        if cost == 0 {
            return Err(CheckError::ZeroCost);
        }
        let now = before_end(now);
        self.cursor().seen.fetch_max(now, Ordering::AcqRel);
        let mut left = cost;
        'scan: loop {
            let snapshot = self.head();
            let head = snapshot.position;
            let span = snapshot.span(self.limit);
            // Oldest first, from the oldest slot: forgetting an entry while an older one is not
            // yet published (and may count) would unsort the log, so a refund racing a check
            // stops there and gives back less, never more.
            for position in head - self.limit..head {
                if left == 0 {
                    break 'scan;
                }
                let expiry = match self.read_exact(span, position) {
                    Entry::Published(expiry) => expiry,
                    Entry::InFlight => break 'scan,
                    Entry::Stale => continue 'scan, // lapped: start again from the new head
                };
                // Act at the latest time seen (at least `now`), read after `head`, so it covers
                // every entry below `head`; and after the previous slot's, so the instants this
                // refund and any racing one write never decrease along the log.
                let at = self.cursor().seen.load(Ordering::Acquire);
                // The forgotten entry's slot is free from `at` on, and counts before: it may
                // have held an older entry that a `now` before `at` must still count. (Every
                // entry it could have held expired by `at`, so this frees exactly what the exact
                // log frees from `at` on.) `u64::MAX` would read as "never expires".
                if Self::live(expiry, at)
                    && self
                        .slot(span, position)
                        .expiry
                        .compare_exchange(
                            expiry,
                            at.min(u64::MAX - 1),
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        )
                        .is_ok()
                {
                    left -= 1;
                }
            }
            break;
        }
        Ok(self.state_after_refund(now))
    }

    fn reset(&self) {
        for slot in self.slots.as_ref() {
            slot.expiry.store(0, Ordering::Release);
        }
        self.cursor().seen.store(0, Ordering::Release);
    }

    fn capacity(&self) -> u64 {
        self.limit
    }
}

#[cfg(all(test, feature = "alloc", not(loom)))]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use core::mem::{align_of, size_of};

    /// The public log keeps its moving words off the quota's cache line; the keyed store's
    /// compact log is no larger than its fields.
    #[test]
    fn placements_lay_out_as_documented() {
        let padded = SlidingLog::new(Quota::per_second(10).unwrap()).unwrap();
        let line = |p: *const u8| p as usize / 64;
        assert_ne!(
            line(&padded.limit as *const u64 as *const u8),
            line(padded.cursor() as *const Cursor as *const u8)
        );
        assert_ne!(
            line(&padded.slots as *const Box<[LogSlot]> as *const u8),
            line(padded.cursor() as *const Cursor as *const u8)
        );
        assert_eq!(size_of::<SlidingLog<Box<[LogSlot]>, Compact>>(), 64);
        assert_eq!(align_of::<SlidingLog<Box<[LogSlot]>, Compact>>(), 8);
        assert_eq!(size_of::<SlidingLog<Box<[LogSlot]>, Padded>>(), 256);
    }
}
