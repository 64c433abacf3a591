//! Shared helpers for the ratewall benchmarks.
