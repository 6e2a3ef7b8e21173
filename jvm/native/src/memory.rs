//! Giving freed heap memory back to the operating system.
//!
//! glibc's malloc keeps memory that native code (the JVM's own, Arrow's and
//! ours) has freed in its arenas for reuse, so a long-running executor's RSS
//! creeps up although the memory in use does not. `malloc_trim` hands the free
//! pages back. Other C libraries have no such call; there this does nothing.

/// What one trim did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    /// glibc gave some memory back.
    Released,
    /// glibc had nothing it could give back.
    NothingToRelease,
    /// This C library has no `malloc_trim`; nothing was done.
    // Built only where the C library is not glibc.
    #[cfg_attr(all(target_os = "linux", target_env = "gnu"), allow(dead_code))]
    Unsupported,
}

impl Trim {
    /// The code `Native.mallocTrim` returns; `NativeMemory` on the Java side reads it.
    pub fn code(self) -> i32 {
        match self {
            Trim::Released => 1,
            Trim::NothingToRelease => 0,
            Trim::Unsupported => -1,
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() -> Trim {
    unsafe extern "C" {
        // glibc's <malloc.h>: int malloc_trim(size_t pad).
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointers and is thread-safe (it locks each arena).
    if unsafe { malloc_trim(0) } != 0 {
        Trim::Released
    } else {
        Trim::NothingToRelease
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() -> Trim {
    Trim::Unsupported
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_after_freeing_does_what_this_c_library_allows() {
        drop(vec![1u8; 64 << 20]);
        let outcome = trim();
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert_ne!(outcome, Trim::Unsupported);
        } else {
            assert_eq!(outcome, Trim::Unsupported);
        }
    }

    #[test]
    fn codes_are_distinct() {
        let codes = [Trim::Released, Trim::NothingToRelease, Trim::Unsupported].map(Trim::code);
        assert_eq!(codes, [1, 0, -1]);
    }
}
