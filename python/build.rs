//! Gives the crate the cfgs of the interpreter it is built for (`Py_3_14`
//! and the like), as PyO3's own crates have them, and declares the cfg a
//! profile-guided build sets.

fn main() {
    pyo3_build_config::use_pyo3_cfgs();
    // Set by python/build_extension.sh on the rustc line of a profile-guided
    // build, so that the module can say which kind of build it is.
    println!("cargo::rustc-check-cfg=cfg(flightpickle_profile_guided)");
}
