//! Records the target triple for the metadata in every file hotprof writes.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_string());
    println!("cargo:rustc-env=HOTPROF_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
