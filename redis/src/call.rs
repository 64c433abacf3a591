//! One decision's call of the policy script: the policy's fixed parts, rendered once, plus what
//! changes per request (the client's hashed key, the operation, the cost, a test-only time).
//!
//! Keys and arguments are written straight into the command's buffer when the call is sent
//! (numbers as digits, each key from its three parts), not first built as strings: building a
//! key string per limit and an argument string per parameter cost a Node process with 64
//! concurrent callers about a tenth of its event loop's time in the allocator.

use std::io::Write as _;
use std::sync::Arc;

use redis::{Cmd, RedisWrite as _};

use crate::keys::HashedKey;

/// What every call of one policy shares.
#[derive(Debug)]
pub(crate) struct CallForm {
    /// `{prefix}:{{{name}:`: every key of the policy starts with it.
    pub(crate) head: String,
    /// Per limit: `}}:{algorithm}:{limit}:{period_us}`, the end of its key.
    pub(crate) tails: Vec<String>,
    /// The script's algorithm code (`tb`, `fw`, …).
    pub(crate) algorithm: &'static str,
    /// Per limit: the script's two parameters.
    pub(crate) params: Vec<(u64, u64)>,
}

impl CallForm {
    /// A client's Redis keys, one per limit, as strings (diagnostics, resets).
    pub(crate) fn keys(&self, hash: &HashedKey) -> Vec<String> {
        self.tails
            .iter()
            .map(|tail| format!("{}{}{tail}", self.head, hash.as_str()))
            .collect()
    }
}

/// One decision to ask the script for.
#[derive(Debug)]
pub(crate) struct ScriptCall {
    pub(crate) form: Arc<CallForm>,
    pub(crate) hash: HashedKey,
    /// `check`, `peek` or `refund`.
    pub(crate) op: &'static str,
    pub(crate) cost: u64,
    /// Tests only: an explicit time (µs) and the TTL slack (ms) instead of Redis `TIME`.
    pub(crate) at: Option<(u64, u64)>,
}

impl ScriptCall {
    pub(crate) fn key_count(&self) -> usize {
        self.form.tails.len()
    }

    pub(crate) fn arg_count(&self) -> usize {
        3 + 2 * self.form.params.len() + if self.at.is_some() { 2 } else { 0 }
    }

    /// Whether `other` sends the same arguments (same policy, operation, cost and time): the
    /// batch script then takes them once for both.
    pub(crate) fn same_args(&self, other: &ScriptCall) -> bool {
        Arc::ptr_eq(&self.form, &other.form)
            && self.op == other.op
            && self.cost == other.cost
            && self.at == other.at
    }

    /// Appends the call's keys to `cmd`, one argument each.
    pub(crate) fn write_keys(&self, cmd: &mut Cmd) {
        for tail in &self.form.tails {
            let mut arg = cmd.writer_for_next_arg();
            // Writing into the command's own buffer cannot fail.
            let _ = arg.write_all(self.form.head.as_bytes());
            let _ = arg.write_all(self.hash.as_str().as_bytes());
            let _ = arg.write_all(tail.as_bytes());
        }
    }

    /// Appends the call's arguments to `cmd`, in the order the script reads them (see
    /// `lua/prelude.lua`).
    pub(crate) fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(self.op).arg(self.form.algorithm).arg(self.cost);
        for &(a, b) in &self.form.params {
            cmd.arg(a).arg(b);
        }
        if let Some((now_us, slack_ms)) = self.at {
            cmd.arg(now_us).arg(slack_ms);
        }
    }
}
