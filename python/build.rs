//! Gives the crate the cfgs of the interpreter it is built for (`Py_3_14`
//! and the like), as PyO3's own crates have them.

fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
