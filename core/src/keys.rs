//! Key helpers (being written).
