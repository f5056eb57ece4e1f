//! Links DPDK, generates the raw bindings and compiles the C shim.

use std::env;
use std::path::PathBuf;
use std::process::Command;

include!("../build-support/check.rs");

fn main() {
    check_prerequisites();
    for f in [
        "build.rs",
        "wrapper.h",
        "shim/shim.h",
        "shim/shim.c",
        "../build-support/check.rs",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }

    // Emits one rustc-link-lib per -lrte_* (53 on Debian's 22.11) and the search paths.
    pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
        .expect("pkg-config libdpdk passed check_prerequisites, so the probe cannot fail");
    // `rte_eth_from_rings` lives in a PMD library that libdpdk.pc does not list.
    println!("cargo:rustc-link-lib=rte_net_ring");
    // Likewise `rte_vdev_init` (exception taps created at run time) lives in the vdev bus driver.
    println!("cargo:rustc-link-lib=rte_bus_vdev");

    // The pkg-config crate keeps only -I and -D; DPDK also needs `-include rte_config.h`
    // (and was built for -march=corei7), so the raw cflags go to both clang and cc.
    let cflags = dpdk_cflags();

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&cflags)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .allowlist_function("rte_.*|ripvs_.*")
        .allowlist_type("rte_.*")
        // E...: <errno.h> constants, so errors compare against the platform's values.
        .allowlist_var("RTE_.*|RING_F_.*|SOCKET_ID_ANY|LCORE_ID_ANY|E_RTE_.*|E[A-Z0-9]+")
        // Packed structs holding aligned members: rustc rejects bindgen's rendering
        // of them (E0588). Nothing here reads their fields.
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_generic_hdr")
        .opaque_type("rte_arp_ipv4")
        .opaque_type("rte_arp_hdr")
        // DPDK's comments would become doctests (their indented examples do not
        // compile); the headers are the documentation of the raw layer.
        .generate_comments(false)
        .prepend_enum_name(false)
        .derive_default(true)
        .layout_tests(false)
        .generate()
        .expect("bindgen failed on wrapper.h (see the clang diagnostics above)")
        .write_to_file(out.join("bindings.rs"))
        .expect("cannot write bindings.rs to OUT_DIR");

    let mut cc = cc::Build::new();
    cc.file("shim/shim.c")
        .include("shim")
        .warnings(true)
        .extra_warnings(true);
    for f in &cflags {
        cc.flag(f);
    }
    cc.compile("ripvs_dpdk_shim");
}

/// `pkg-config --cflags libdpdk`, split into arguments.
fn dpdk_cflags() -> Vec<String> {
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into());
    let out = Command::new(&pkg_config)
        .args(["--cflags", "libdpdk"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {pkg_config}: {e}"));
    assert!(out.status.success(), "{pkg_config} --cflags libdpdk failed");
    String::from_utf8(out.stdout)
        .expect("pkg-config output is UTF-8")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}
