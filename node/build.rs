//! Links the addon against the Node-API symbols of the host process, and compiles the direct
//! V8 callbacks (`src/direct.cc`, see `src/direct.rs`) when the Node that builds the addon has
//! its C++ headers beside it.
//!
//! The Node is `$RATEWALL_NODE` (set by `scripts/build.js` to the Node running it) or `node` on
//! `PATH`. Its headers are `<prefix>/include/node`, where Node's own installers put them, and
//! the V8 configuration macros come from its `process.config`, as node-gyp derives them. When
//! anything is missing (no Node, no headers, no C++ compiler, no `objcopy`), the addon is
//! built without the direct callbacks and every call goes through Node-API: a `cargo:warning`
//! says why.
use std::path::{Path, PathBuf};
use std::process::Command;

/// Prints the include directory on the first line and the V8 defines (space-separated) on the
/// second, mirroring node-gyp's `common.gypi`.
const QUERY: &str = r#"
const path = require('path')
const v = process.config.variables
const d = []
if (v.v8_enable_v8_checks == 1) d.push('V8_ENABLE_CHECKS')
if (v.v8_enable_pointer_compression == 1) d.push('V8_COMPRESS_POINTERS')
if (v.v8_enable_pointer_compression_shared_cage == 1) d.push('V8_COMPRESS_POINTERS_IN_SHARED_CAGE')
if (v.v8_enable_pointer_compression == 1 && v.v8_enable_pointer_compression_shared_cage != 1) d.push('V8_COMPRESS_POINTERS_IN_ISOLATE_CAGE')
if (v.v8_enable_pointer_compression == 1 || v.v8_enable_31bit_smis_on_64bit_arch == 1) d.push('V8_31BIT_SMIS_ON_64BIT_ARCH')
if (v.v8_enable_zone_compression == 1) d.push('V8_COMPRESS_ZONES')
if (v.v8_enable_sandbox == 1) d.push('V8_ENABLE_SANDBOX')
if (v.v8_enable_external_code_space == 1) d.push('V8_EXTERNAL_CODE_SPACE')
if (v.v8_use_perfetto == 1) d.push('V8_USE_PERFETTO')
if (v.v8_enable_map_packing == 1) d.push('V8_MAP_PACKING')
if (v.tsan == 1) d.push('V8_IS_TSAN')
if (v.v8_enable_conservative_stack_scanning == 1) d.push('V8_ENABLE_CONSERVATIVE_STACK_SCANNING')
if (v.v8_enable_direct_local == 1) d.push('V8_ENABLE_DIRECT_LOCAL')
console.log(path.join(path.dirname(process.execPath), '..', 'include', 'node'))
console.log(d.join(' '))
"#;

fn main() {
    napi_build::setup();
    println!("cargo::rustc-check-cfg=cfg(ratewall_direct)");
    println!("cargo::rerun-if-changed=src/direct.cc");
    println!("cargo::rerun-if-env-changed=RATEWALL_NODE");
    match build_direct() {
        Ok(()) => println!("cargo::rustc-cfg=ratewall_direct"),
        Err(why) => println!(
            "cargo::warning=ratewall: direct V8 callbacks left out ({why}); every call goes through Node-API"
        ),
    }
}

fn build_direct() -> Result<(), String> {
    let (include, defines) = query_node()?;
    if !include.join("v8.h").is_file() || !include.join("node_version.h").is_file() {
        return Err(format!("no Node headers in {}", include.display()));
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .cpp_link_stdlib(None)
        .std("c++20")
        .file("src/direct.cc")
        .include(&include)
        .flag_if_supported("-fno-exceptions")
        .flag_if_supported("-fno-rtti")
        .flag_if_supported("-fvisibility=hidden")
        .warnings(false)
        .cargo_warnings(false);
    for define in &defines {
        build.define(define, None);
    }
    build
        .try_compile("ratewall_direct")
        .map_err(|e| format!("the C++ compiler failed: {e}"))?;
    // Every V8 symbol the object references becomes weak: a host that does not export V8's API
    // still loads the addon (which then never calls it: direct.cc's `ratewall_direct_ready`).
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    weaken(&out.join("libratewall_direct.a"))
}

fn query_node() -> Result<(PathBuf, Vec<String>), String> {
    let node = std::env::var("RATEWALL_NODE").unwrap_or_else(|_| "node".into());
    let output = Command::new(&node)
        .args(["-e", QUERY])
        .output()
        .map_err(|e| format!("could not run {node}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{node} could not report its configuration"));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let include = PathBuf::from(lines.next().ok_or("no include directory")?);
    let defines = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    Ok((include, defines))
}

fn weaken(archive: &Path) -> Result<(), String> {
    let objcopy = std::env::var("OBJCOPY").unwrap_or_else(|_| "objcopy".into());
    let status = Command::new(&objcopy)
        .arg("--weaken")
        .arg(archive)
        .status()
        .map_err(|e| format!("could not run {objcopy}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{objcopy} --weaken failed"))
    }
}
