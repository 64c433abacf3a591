//! The atomics the algorithms use: `core`'s normally, loom's under `--cfg loom` so the model
//! checker can explore every interleaving of the very same code.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
