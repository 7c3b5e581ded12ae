//! Links the NIF against the libpython that PYO3_PYTHON names, with an rpath so the BEAM finds
//! it at load, and tells the crate where that library and the default interpreter live.

use std::path::Path;

/// The Python minor versions the NIF is built and tested for (3.x); scripts/build_nif.sh says
/// the same to whoever builds with another.
const SUPPORTED_MINORS: [u8; 3] = [11, 12, 13];

fn main() {
    let cfg = pyo3_build_config::get();
    if cfg.version.major != 3 || !SUPPORTED_MINORS.contains(&cfg.version.minor) {
        let supported: Vec<String> = SUPPORTED_MINORS.iter().map(|m| format!("3.{m}")).collect();
        panic!(
            "erlang_python: Python {}.{} ({}) is not supported; supported: {}. \
             Set PYO3_PYTHON (or ERLANG_PYTHON_EXECUTABLE for scripts/build_nif.sh) to one of them.",
            cfg.version.major,
            cfg.version.minor,
            cfg.executable.as_deref().unwrap_or("unknown interpreter"),
            supported.join(", ")
        );
    }
    pyo3_build_config::add_libpython_rpath_link_args();
    // `Py_3_12`, `Py_GIL_DISABLED`, ...: the sub-interpreter pool exists on 3.12+ GIL builds.
    pyo3_build_config::use_pyo3_cfgs();
    pyo3_build_config::print_expected_cfgs();
    let lib_dir = cfg.lib_dir.clone().unwrap_or_default();
    let lib_name = cfg.lib_name.clone().unwrap_or_default();
    let versioned = Path::new(&lib_dir).join(format!("lib{lib_name}.so.1.0"));
    let plain = Path::new(&lib_dir).join(format!("lib{lib_name}.so"));
    let lib = if versioned.exists() { versioned } else { plain };
    println!("cargo:rustc-env=EP_LIBPYTHON={}", lib.display());
    println!("cargo:rerun-if-env-changed=ERLANG_PYTHON_DEFAULT_EXECUTABLE");
    let exe = std::env::var("ERLANG_PYTHON_DEFAULT_EXECUTABLE")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| cfg.executable.clone())
        .unwrap_or_default();
    println!("cargo:rustc-env=EP_DEFAULT_EXECUTABLE={exe}");
    let gil_disabled = cfg
        .build_flags
        .0
        .iter()
        .any(|f| f.to_string() == "Py_GIL_DISABLED");
    println!("cargo:rustc-env=EP_GIL_DISABLED={}", u8::from(gil_disabled));
    println!("cargo:rustc-env=EP_PY_MINOR={}", cfg.version.minor);
    // The version the NIF records and checks an interpreter against at start: "3.12", "3.13t".
    let ft = if gil_disabled { "t" } else { "" };
    println!(
        "cargo:rustc-env=EP_PY_VERSION={}.{}{ft}",
        cfg.version.major, cfg.version.minor
    );
}
