//! `CLOCK_MONOTONIC` read from the time-stamp counter, on x86-64 Linux where the kernel itself
//! keeps time with it.
//!
//! # Why
//!
//! A decision on the default clock reads the clock once, and on the 2-core KVM guest where
//! ratewall is measured `clock_gettime(CLOCK_MONOTONIC)` costs 30–35 ns: a third of a Node
//! `check(key)`. The kernel's vDSO computes that time from the time-stamp counter (TSC) with a
//! multiply and a shift, behind a sequence lock and a serialising read of the counter; reading
//! the counter alone costs 17 ns there. So each thread here extrapolates the kernel's clock from
//! the counter: it keeps an *anchor* (a counter reading and the `CLOCK_MONOTONIC` reading taken
//! with it) and the clock's rate in nanoseconds per tick, measured between its last two anchors,
//! and answers `anchor + ticks since × rate`.
//!
//! # Staying on the kernel's clock
//!
//! - A thread takes a new anchor (one `clock_gettime`, between two counter readings whose
//!   midpoint is the anchor's tick) once [`SPAN`] ticks (8 ms at 2.1 GHz) have passed since the
//!   last: an extrapolation never runs longer than that. An anchor is taken only when the two
//!   counter readings are at most [`MAX_GAP`] ticks apart (1 µs here; about 130 ticks when
//!   nothing interrupts), so its tick is off by at most half a microsecond and the rate,
//!   measured over a span, by at most 125 ppm. The kernel may slew its clock against the
//!   counter by at most 500 ppm (NTP). So a reading is within 6 µs of `CLOCK_MONOTONIC` at
//!   worst, and within about 100 ns while the kernel's rate holds.
//! - Readings never step back on a thread: each is at least the one before (an extrapolation
//!   that ran a little ahead holds still until the clock catches up).
//! - Until a thread has two anchors a span apart, and whenever a measured rate is not
//!   plausible (the counter went back, or a rate outside 1/16 to 16 ns per tick), it reads
//!   `clock_gettime` itself: exact, at the old cost.
//! - It is used only where the kernel's current clocksource is `tsc`
//!   (`/sys/devices/system/clocksource/clocksource0/current_clocksource`): there the kernel
//!   has found the counter constant-rate and synchronised across CPUs. Elsewhere (another
//!   clocksource, another architecture or system) [`monotonic_ns`](super::monotonic_ns) is
//!   `clock_gettime`.
//!
//! Not `quanta`: it calibrates the counter once, at start, and scales by that rate for the life
//! of the process, so its clock drifts from `CLOCK_MONOTONIC` (parts per million, seconds a
//! week), while the bindings promise the scale of their host's clock (`performance.now()`,
//! `time.monotonic_ns()`).

use std::cell::Cell;
use std::sync::OnceLock;

/// Counter ticks an extrapolation may span before a new anchor is taken: 2^24.
pub(crate) const SPAN: u64 = 1 << 24;

/// The most ticks between the two counter readings around an anchor's clock reading: 2^11
/// (1 µs at 2.1 GHz, where a quiet pair takes about 130). An anchor's tick is their midpoint, so
/// it is off by at most half of this.
const MAX_GAP: u64 = 1 << 11;

/// Bounds of a plausible rate, in 32.32 fixed-point nanoseconds per tick: 1/16 to 16 ns per
/// tick (a counter of 62.5 MHz to 16 GHz).
const MIN_RATE: u64 = 1 << 28;
const MAX_RATE: u64 = 1 << 36;

/// One thread's extrapolation of a clock from a counter. Pure: given the counter reading and a
/// way to read the clock, so tests drive it with made-up readings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Extrapolator {
    /// Counter reading at the anchor.
    anchor_ticks: u64,
    /// Clock reading at the anchor; 0 before the first anchor.
    anchor_ns: u64,
    /// Nanoseconds per tick, 32.32 fixed point; 0 while no plausible rate is known.
    rate: u64,
    /// The last reading returned.
    last: u64,
}

impl Extrapolator {
    /// No anchor yet: the first read reads the clock.
    pub(crate) const fn new() -> Extrapolator {
        Extrapolator {
            anchor_ticks: 0,
            anchor_ns: 0,
            rate: 0,
            last: 0,
        }
    }

    /// The time at counter reading `ticks`: extrapolated from the anchor within a span, else
    /// from `sample()`, which reads the clock and then the counter again (and may anchor
    /// there). Never below the previous reading.
    #[inline]
    pub(crate) fn read(&mut self, ticks: u64, sample: impl FnOnce() -> (u64, u64)) -> u64 {
        let since = ticks.wrapping_sub(self.anchor_ticks);
        let t = if self.rate != 0 && since < SPAN {
            // since < 2^24 and rate < 2^36: the product fits in 60 bits.
            self.anchor_ns + ((since * self.rate) >> 32)
        } else {
            let (ns, after) = sample();
            self.anchor(ticks, after, ns)
        };
        let t = t.max(self.last);
        self.last = t;
        t
    }

    /// The clock read `ns` between counter readings `before` and `after`: anchors there when
    /// the two are close (else the thread was interrupted between them, and the pair would not
    /// say which tick `ns` belongs to) and a span has passed since the last anchor, measuring
    /// the rate between the two anchors. Returns `ns`.
    #[cold]
    #[inline(never)]
    fn anchor(&mut self, before: u64, after: u64, ns: u64) -> u64 {
        let gap = after.wrapping_sub(before);
        if gap > MAX_GAP {
            return ns;
        }
        let ticks = before + gap / 2;
        let since = ticks.wrapping_sub(self.anchor_ticks);
        if self.anchor_ns == 0 {
            // The first anchor: no rate until a span has passed.
            self.anchor_ticks = ticks;
            self.anchor_ns = ns;
            return ns;
        }
        if since < SPAN {
            // Not yet a span since the anchor (no rate known yet): the clock itself.
            return ns;
        }
        self.rate = match ns.checked_sub(self.anchor_ns) {
            // A counter gone back shows as a huge `since`; a rate beyond the bounds is refused.
            Some(elapsed) if since < 1 << 62 => {
                let rate = ((u128::from(elapsed) << 32) / u128::from(since)) as u64;
                if (MIN_RATE..=MAX_RATE).contains(&rate) {
                    rate
                } else {
                    0
                }
            }
            _ => 0,
        };
        self.anchor_ticks = ticks;
        self.anchor_ns = ns;
        ns
    }
}

/// The time-stamp counter.
#[inline(always)]
fn counter() -> u64 {
    // SAFETY: RDTSC exists on every x86-64 CPU; it only reads the counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Whether the kernel keeps time with the TSC (read once per process).
fn kernel_uses_tsc() -> bool {
    static TSC: OnceLock<bool> = OnceLock::new();
    *TSC.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .map(|s| s.trim() == "tsc")
            .unwrap_or(false)
    })
}

/// One thread's reader of `CLOCK_MONOTONIC` through the counter (see the module docs).
#[derive(Debug)]
pub(crate) struct Reader {
    state: Cell<Extrapolator>,
    /// Whether the kernel keeps time with the counter; otherwise every read is the clock's.
    counter: bool,
}

impl Reader {
    pub(crate) fn new() -> Reader {
        Reader {
            state: Cell::new(Extrapolator::new()),
            counter: kernel_uses_tsc(),
        }
    }

    #[inline]
    pub(crate) fn now(&self, clock: fn() -> u64) -> u64 {
        if !self.counter {
            return clock();
        }
        read_counter(&self.state, clock)
    }
}

/// Reads the counter and extrapolates `clock` from `state` (see [`Extrapolator::read`]).
#[inline]
fn read_counter(state: &Cell<Extrapolator>, clock: fn() -> u64) -> u64 {
    let ticks = counter();
    let mut x = state.get();
    let t = x.read(ticks, || (clock(), counter()));
    state.set(x);
    t
}

std::thread_local! {
    static THREAD: Cell<Extrapolator> = const { Cell::new(Extrapolator::new()) };
}

/// `CLOCK_MONOTONIC` in nanoseconds, from the counter where the kernel uses it; `None` where it
/// does not (the caller then reads the clock).
#[inline]
pub(crate) fn monotonic_ns(clock: fn() -> u64) -> Option<u64> {
    if !kernel_uses_tsc() {
        return None;
    }
    THREAD.try_with(|cell| read_counter(cell, clock)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads at counter reading `ticks` where the clock, if asked, says `ns` (read at once:
    /// the counter has not moved after it).
    fn read(x: &mut Extrapolator, ticks: u64, ns: u64) -> u64 {
        x.read(ticks, || (ns, ticks))
    }

    /// Reads at `ticks`, requiring an extrapolation (no clock read).
    fn extrapolated(x: &mut Extrapolator, ticks: u64) -> u64 {
        x.read(ticks, || {
            panic!("within a span of a rated anchor: no clock read")
        })
    }

    /// Whether a read at `ticks` asked the clock (which then says `ns`).
    fn asks_clock(x: &mut Extrapolator, ticks: u64, ns: u64) -> bool {
        let mut asked = false;
        x.read(ticks, || {
            asked = true;
            (ns, ticks)
        });
        asked
    }

    #[test]
    fn reads_the_clock_until_a_span_has_passed_then_extrapolates() {
        // A counter ticking twice per nanosecond.
        let clock_at = |ticks: u64| ticks / 2 + 1_000;
        let mut x = Extrapolator::new();
        for ticks in [10, SPAN / 2, SPAN + 10] {
            assert!(asks_clock(&mut x, ticks, clock_at(ticks)), "no rate yet");
        }
        // The rate, measured over the span: half a nanosecond per tick.
        assert_eq!(
            extrapolated(&mut x, SPAN + 2_010),
            clock_at(SPAN + 10) + 1_000
        );
    }

    #[test]
    fn takes_a_new_anchor_after_each_span() {
        let mut x = Extrapolator::new();
        read(&mut x, 0, 5_000);
        read(&mut x, SPAN, 5_000 + SPAN / 2);
        // The kernel slewed: the next span took 1% longer than extrapolated.
        let slewed = 5_000 + SPAN + SPAN / 200;
        assert!(asks_clock(&mut x, 2 * SPAN, slewed));
        // The new rate (1% more per tick) applies from the new anchor (to the nanosecond: the
        // rate's fixed point rounds down).
        let t = extrapolated(&mut x, 2 * SPAN + 1_000_000);
        assert!(t.abs_diff(slewed + 505_000) <= 1, "{t}");
    }

    #[test]
    fn anchors_midway_between_close_counter_readings_only() {
        let mut x = Extrapolator::new();
        // The clock was read between ticks 1_000 and 1_200: the anchor is tick 1_100.
        x.read(1_000, || (50_000, 1_200));
        x.read(SPAN + 1_000, || (50_000 + SPAN, SPAN + 1_200));
        assert_eq!(extrapolated(&mut x, SPAN + 1_100 + 40), 50_000 + SPAN + 40);
        // Interrupted between the readings (a gap over MAX_GAP): the reading is returned but
        // not anchored, so the next read past the span asks the clock again.
        let mut x = Extrapolator::new();
        x.read(0, || (1_000, 0));
        assert_eq!(x.read(SPAN, || (9_000_000, SPAN + MAX_GAP + 1)), 9_000_000);
        assert!(
            asks_clock(&mut x, SPAN + MAX_GAP + 10, 9_000_001),
            "no anchor, no rate"
        );
    }

    #[test]
    fn never_steps_back() {
        let mut x = Extrapolator::new();
        read(&mut x, 0, 1_000);
        read(&mut x, SPAN, 1_000 + SPAN / 2);
        let ahead = extrapolated(&mut x, 2 * SPAN - 1);
        // The clock says the extrapolation ran 300 ns ahead: hold still, do not go back.
        assert_eq!(read(&mut x, 2 * SPAN, ahead - 299), ahead);
        assert!(extrapolated(&mut x, 2 * SPAN + 10) >= ahead);
    }

    #[test]
    fn a_counter_going_back_or_an_odd_rate_falls_back_to_the_clock() {
        let mut x = Extrapolator::new();
        read(&mut x, SPAN * 4, 10_000);
        read(&mut x, SPAN * 5, 10_000 + SPAN / 2);
        // The counter steps back (a host that reset it): the clock is read, no rate is kept.
        assert_eq!(read(&mut x, 7, 20_000_000), 20_000_000);
        assert!(
            asks_clock(&mut x, 8, 20_000_001),
            "no rate after the counter went back"
        );
        // A rate of 100 ns per tick is not a TSC's: refused, the clock is read again.
        let mut x = Extrapolator::new();
        read(&mut x, 0, 1);
        read(&mut x, SPAN, 1 + SPAN * 100);
        assert!(asks_clock(&mut x, SPAN + 1, 2 + SPAN * 100));
    }

    #[test]
    fn the_real_clock_stays_within_microseconds_of_clock_gettime() {
        // Reads alternate: ratewall's clock, the kernel's, ratewall's. Whatever the scheduling
        // between them, the kernel's reading lies between the two around it give or take the
        // bound (module docs: 6 µs); 10 µs leaves room for a kernel slewing faster than NTP.
        let kernel = super::super::clock_gettime_monotonic;
        let reader = super::super::ThreadMonotonicClock::new();
        // Each reader's readings never step back; the two may differ within the bound.
        let mut previous = [0, 0];
        for i in 0..300_000 {
            // Half the rounds through the thread-local clock, half through a reader of its own.
            let read = || {
                if i % 2 == 0 {
                    super::super::monotonic_ns()
                } else {
                    reader.now()
                }
            };
            let a = read();
            let k = kernel();
            let b = read();
            assert!(a >= previous[i % 2] && b >= a, "readings never step back");
            assert!(
                a <= k + 10_000,
                "{a} ran {} ns ahead of the kernel's {k}",
                a - k
            );
            assert!(
                k <= b + 10_000,
                "{b} fell {} ns behind the kernel's {k}",
                k - b
            );
            previous[i % 2] = b;
        }
    }
}
