//! Writes `include/ratewall.h` from this crate's source with cbindgen (used as a library, so no
//! global `cargo install cbindgen` is needed), or with `--check` fails if the committed header
//! differs from a fresh generation.
//!
//! ```sh
//! cargo run -p ratewall-ffi --features header --bin gen-header            # regenerate
//! cargo run -p ratewall-ffi --features header --bin gen-header -- --check # CI freshness check
//! ```

use std::path::Path;
use std::process::ExitCode;

/// Definitions placed right after the `#include`s.
fn after_includes() -> String {
    format!(
        r#"
/**
 * The version of ratewall this header belongs to. rw_version() returns the version of the
 * library actually loaded; they should be equal.
 */
#define RW_VERSION "{version}"

/**
 * The Content-Type of the 429 body written by rw_render_denied_body.
 */
#define RW_DENIED_CONTENT_TYPE "{content_type}"

/**
 * Initialiser for rw_policy_options: sets struct_size and leaves every option at its default
 * (every zero field means "the default").
 *
 *     rw_policy_options opts = RW_POLICY_OPTIONS_INIT;
 *     opts.algorithm = "sliding-log";
 */
#define RW_POLICY_OPTIONS_INIT {{ sizeof(rw_policy_options), NULL, NULL, 0, 0, 0, 0 }}

/**
 * Initialiser for rw_store_options: sets struct_size and leaves every option at its default
 * (every zero field means "the default").
 *
 *     rw_store_options opts = RW_STORE_OPTIONS_INIT;
 *     opts.command_timeout_ms = 20;
 */
#define RW_STORE_OPTIONS_INIT {{ sizeof(rw_store_options), 0, 0, 0.0, 0, 0, NULL, NULL }}"#,
        version = ratewall_ffi::RW_VERSION,
        content_type = ratewall_ffi::RW_DENIED_CONTENT_TYPE,
    )
}

fn main() -> ExitCode {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => {
            eprintln!("gen-header: unknown argument {other:?}; usage: gen-header [--check]");
            return ExitCode::from(2);
        }
    };
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = crate_dir.join("../include/ratewall.h");
    let mut config = match cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("gen-header: cbindgen.toml: {e}");
            return ExitCode::FAILURE;
        }
    };
    // What cbindgen cannot derive from the source: string constants and the options
    // initialiser, written from the crate's own values.
    config.after_includes = Some(after_includes());
    let bindings = match cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => bindings,
        Err(e) => {
            eprintln!("gen-header: cbindgen failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    if check {
        let committed = std::fs::read(&header).unwrap_or_default();
        if committed == fresh {
            println!("include/ratewall.h is up to date");
            ExitCode::SUCCESS
        } else {
            eprintln!(
                "include/ratewall.h is stale: it differs from what cbindgen generates from \
                 ffi-c/src. Run `make -C ffi-c header` and commit the result."
            );
            ExitCode::FAILURE
        }
    } else {
        if let Err(e) = std::fs::write(&header, &fresh) {
            eprintln!("gen-header: cannot write {}: {e}", header.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", header.display());
        ExitCode::SUCCESS
    }
}
