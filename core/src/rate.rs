//! Rate strings (being written).
