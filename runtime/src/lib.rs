//! hotprof: hot sampling for live Rust services.
#![warn(missing_docs)]

#[doc(inline)]
pub use hotprof_macros::main;

#[doc(hidden)]
/// Not public API: what `#[hotprof::main]` expands to.
pub mod __private {
    /// Arguments captured by `#[hotprof::main]` in the user's crate.
    #[derive(Debug, Clone)]
    pub struct MainArgs {
        /// `CARGO_PKG_NAME` of the user's crate.
        pub pkg_name: &'static str,
        /// `CARGO_PKG_VERSION` of the user's crate.
        pub pkg_version: &'static str,
        /// `CARGO_BIN_NAME` of the user's binary, when built as a bin target.
        pub bin_name: Option<&'static str>,
        /// `dir = "..."` from the attribute.
        pub dir: Option<&'static str>,
        /// `enabled = true|false` from the attribute.
        pub enabled: Option<bool>,
    }

    impl MainArgs {
        /// Starts a set of arguments with the user's crate identity.
        pub const fn new(
            pkg_name: &'static str,
            pkg_version: &'static str,
            bin_name: Option<&'static str>,
        ) -> Self {
            MainArgs { pkg_name, pkg_version, bin_name, dir: None, enabled: None }
        }
        /// `dir = "..."`.
        pub const fn dir(mut self, dir: &'static str) -> Self {
            self.dir = Some(dir);
            self
        }
        /// `enabled = ...`.
        pub const fn enabled(mut self, enabled: bool) -> Self {
            self.enabled = Some(enabled);
            self
        }
        /// Installs hotprof; the returned guard shuts it down when dropped.
        pub fn install(self) -> InstallGuard {
            InstallGuard { _private: () }
        }
    }

    /// Shuts hotprof down when `main` returns or unwinds.
    #[derive(Debug)]
    #[must_use]
    pub struct InstallGuard {
        _private: (),
    }
}
