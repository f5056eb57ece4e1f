// Fails early, in one sentence, when DPDK or libclang is missing.
include!("build-support/check.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    check_prerequisites();
}
