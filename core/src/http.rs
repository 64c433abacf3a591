//! HTTP contract (being written).
