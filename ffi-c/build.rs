//! Gives the shared library its soname, so that `make install` can lay out
//! libratewall.so -> libratewall.so.0 -> libratewall.so.0.1.0 like any C library.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "freebsd" || os == "android" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libratewall.so.0");
    }
}
