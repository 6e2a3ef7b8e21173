//! The core of flightpickle, shared by the Python extension and the JNI library.
//!
//! It knows neither Python nor the JVM: the fronts in `python/` and `jvm/native/`
//! translate their own types to and from what is here.

pub mod command;
pub mod envelope;
pub mod pickle;
#[cfg(feature = "transport")]
pub mod transport;

/// The version of this build of the core, as written in `Cargo.toml`.
///
/// Both fronts report it, so a mismatch between the Python package and the
/// plugin jar can be told apart from other failures.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_package_version() {
        let parts: Vec<&str> = VERSION.split('.').collect();
        assert_eq!(parts.len(), 3, "expected major.minor.patch, got {VERSION}");
        assert!(parts.iter().all(|p| p.parse::<u32>().is_ok()));
    }
}
