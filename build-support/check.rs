// Build prerequisites shared by every build script of the workspace.
//
// `include!` this file from a build script that has `pkg-config` as a
// build-dependency, then call `check_prerequisites()` first thing, so that a
// machine without DPDK or libclang fails with one sentence naming the fix
// instead of a page of bindgen or linker errors.
//
// (Plain comments, not doc comments: an included file cannot carry `//!`.)

/// Oldest DPDK whose API the bindings and the C shim are written against.
const RIPVS_MIN_DPDK: (u32, u32) = (22, 11);

/// Stops the build with one actionable sentence if DPDK or libclang is missing.
fn check_prerequisites() {
    println!("cargo:rerun-if-env-changed=LIBCLANG_PATH");
    if let Some(sentence) = ripvs_dpdk_problem().or_else(ripvs_libclang_problem) {
        // The warning survives cargo's output filtering; the exit makes it fatal.
        println!("cargo:warning={sentence}");
        eprintln!("{sentence}");
        std::process::exit(1);
    }
}

/// Says why the installed DPDK will not do, or `None` if it will.
fn ripvs_dpdk_problem() -> Option<String> {
    let (want_major, want_minor) = RIPVS_MIN_DPDK;
    // Metadata off: this only looks; the crate that links DPDK probes again. The
    // env metadata stays on, so a changed PKG_CONFIG_PATH reruns the check.
    let lib = match pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(_) => {
            return Some(format!(
                "ripvs needs DPDK >= {want_major}.{want_minor} but pkg-config cannot find libdpdk; \
                 run `sudo tools/setup` to install it."
            ))
        }
    };
    let mut parts = lib
        .version
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if found < RIPVS_MIN_DPDK {
        return Some(format!(
            "ripvs needs DPDK >= {want_major}.{want_minor} but pkg-config libdpdk reports {}; \
             install a newer libdpdk-dev (Debian 12's, which `sudo tools/setup` installs).",
            lib.version
        ));
    }
    None
}

/// Says why bindgen will not find libclang, or `None` if it will.
fn ripvs_libclang_problem() -> Option<String> {
    fn has_libclang(dir: &std::path::Path) -> bool {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("libclang")
                    && name.contains(".so")
                    && !name.starts_with("libclang-cpp")
            })
        })
    }
    // Same places clang-sys looks first: LIBCLANG_PATH, then the usual library dirs.
    if let Some(p) = std::env::var_os("LIBCLANG_PATH") {
        let p = std::path::PathBuf::from(p);
        if p.is_file() || has_libclang(&p) {
            return None;
        }
    }
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("llvm"))
        .map(|e| e.path().join("lib"))
        .collect();
    for d in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/lib",
    ] {
        dirs.push(d.into());
    }
    if dirs.iter().any(|d| has_libclang(d)) {
        None
    } else {
        Some(
            "ripvs needs libclang to generate the DPDK bindings but none was found; \
             run `sudo tools/setup` to install libclang-dev (or set LIBCLANG_PATH)."
                .to_string(),
        )
    }
}
