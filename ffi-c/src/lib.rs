//! # ratewall-ffi: the C ABI of ratewall
//!
//! This crate builds `libratewall.so` and `libratewall.a` (as `libratewall_ffi.*`; `make -C ffi-c
//! install` installs them under the C names) and is the source of `include/ratewall.h`, which
//! cbindgen generates from the items below (`make -C ffi-c header`; CI checks it is fresh).
//!
//! Everything a C service needs, with the concepts of the Rust crate:
//!
//! - handles: [`rw_policy`] (one named policy: one or more limits checked together per key) and
//!   [`rw_config`] (every policy of a TOML file, string or the `RATEWALL_*` environment, on the
//!   store its `storage` URL names: in-process, or Redis shared by a fleet);
//! - Redis: blocking decisions bounded by the command timeout, never an error on an outage (the
//!   policy's fail mode decides; [`rw_decision`]`.source` says who decided), store options and
//!   an event callback ([`rw_store_options`]), health counters ([`rw_config_health`]);
//! - decisions: [`rw_check`], [`rw_peek`], [`rw_refund`] with an explicit `now` (nanoseconds on
//!   any monotonic scale), their `_now` twins reading the built-in monotonic clock ([`rw_now`],
//!   or the cheaper [`rw_now_coarse`] with [`RW_POLICY_COARSE_CLOCK`]), and [`rw_reset`]; every
//!   decision fills an [`rw_decision`];
//! - the HTTP contract: [`rw_render_headers`] and [`rw_render_denied_body`] write the exact bytes
//!   every ratewall binding sends into caller-provided buffers;
//! - errors: every fallible function returns an [`rw_status`]; [`rw_last_error`] explains the
//!   last failure of the calling thread. No panic crosses the ABI: every entry point runs under
//!   `catch_unwind` and turns a panic into [`rw_status::RW_INTERNAL`].
//!
//! The functions are `unsafe` for Rust callers because they take raw pointers; they are meant to
//! be called from C (the Rust bench calls them to measure the ABI's overhead).

#![deny(missing_docs)]
// The C names (`rw_policy`, `RW_OK`) are the API: the header shows exactly these.
#![allow(non_camel_case_types)]

// Every entry point turns a panic into RW_INTERNAL with `catch_unwind`, which does nothing when
// panics abort: refuse to build a library that could abort its host process.
#[cfg(panic = "abort")]
compile_error!("ratewall-ffi must be built with panic = \"unwind\" (the default)");

// Declaration order is the header's order (rustfmt sorts only within a group, so each module
// is its own group).
mod error;

mod util;

mod store;

mod policy;

mod config;

mod render;

pub use config::*;
pub use error::*;
pub use policy::*;
pub use render::*;
pub use store::*;
pub use util::*;

#[cfg(test)]
mod abi_rules {
    /// Every exported function either runs its body under the panic guard or is one of the few
    /// that cannot panic (a constant lookup or `catch_unwind` of its own).
    #[test]
    fn every_entry_point_catches_panics() {
        let sources = [
            include_str!("config.rs"),
            include_str!("error.rs"),
            include_str!("policy.rs"),
            include_str!("render.rs"),
            include_str!("store.rs"),
            include_str!("util.rs"),
        ];
        let mut exported = 0;
        for source in sources {
            for (i, _) in source.match_indices("#[no_mangle]") {
                exported += 1;
                let rest = &source[i..];
                let signature = &rest[..rest.find('{').expect("a body")];
                let name = signature
                    .split("fn ")
                    .nth(1)
                    .and_then(|s| s.split('(').next())
                    .expect("a function name");
                let body_end = rest.find("\n}\n").expect("the end of the body");
                let body = &rest[..body_end];
                let guarded =
                    body.contains(&format!("guard(\"{name}\"")) || body.contains("catch_unwind");
                let trivial = matches!(
                    name,
                    "rw_status_str" | "rw_version" | "rw_retry_after_seconds"
                );
                assert!(
                    guarded || trivial,
                    "{name} neither runs under guard(\"{name}\", ..) nor catch_unwind"
                );
            }
        }
        assert_eq!(exported, 32, "update this test when adding entry points");
    }
}
