//! Settings from the environment and from `#[hotprof::main(...)]`, validated.
//!
//! The environment beats the macro arguments, which beat the defaults. An
//! invalid value never stops the program: it yields one line naming the
//! variable and the accepted values, and the setting falls back (`var.rs`).
//! Each variable is declared once, in `vars.rs`.

pub(crate) mod parse;
mod var;
pub(crate) mod vars;

use std::path::PathBuf;
use std::time::Duration;

// The debug server's settings (feature `http`) read the same declarations.
#[cfg_attr(not(feature = "http"), allow(unused_imports))]
pub(crate) use parse::{Listen, UnwinderChoice};
#[cfg_attr(not(feature = "http"), allow(unused_imports))]
pub(crate) use var::{Env, Var};
pub use vars::VARIABLES;

use crate::guard::GuardConfig;

/// Validated settings.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub enabled: bool,
    /// Which traffic scopes are recorded for.
    pub scopes: crate::switch::ScopeCapture,
    pub dir: PathBuf,
    pub dump_timeout: Duration,
    pub cpu_window: Duration,
    pub cpu_hz: u32,
    pub slow_cpu: bool,
    /// What `SIGUSR2` profiles.
    pub sigusr2: parse::Sigusr2,
    /// Mean bytes between heap samples; 0 for off.
    pub heap_rate: u64,
    pub guard: GuardConfig,
    pub max_files: usize,
    pub max_bytes: u64,
    pub unwinder: UnwinderChoice,
    pub quiet: bool,
}

/// What `#[hotprof::main(...)]` said; `None` means "not given".
#[derive(Debug, Clone, Default)]
pub(crate) struct MacroArgs {
    pub dir: Option<&'static str>,
    pub enabled: Option<bool>,
    /// Read by the debug HTTP server, which only exists with feature `http`.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub http: Option<&'static str>,
}

impl Config {
    /// Builds the config from `env` over the macro arguments. Returns the
    /// config and one line per rejected value (which fell back).
    pub(crate) fn load(args: &MacroArgs, env: Env<'_>) -> (Config, Vec<String>) {
        let mut lines = Vec::new();
        let l = &mut lines;
        let enabled = args.enabled.unwrap_or(true);
        let dir_default = args.dir.unwrap_or(vars::DIR.default);
        let config = Config {
            enabled: vars::ENABLED.or(env, l, enabled, if enabled { "on" } else { "off" }),
            dir: vars::DIR.or(env, l, PathBuf::from(dir_default), dir_default),
            dump_timeout: vars::DUMP_TIMEOUT.get(env, l),
            cpu_window: vars::CPU_SECONDS.get(env, l),
            cpu_hz: vars::CPU_HZ.get(env, l),
            scopes: vars::SCOPES.get(env, l),
            slow_cpu: vars::SLOW_CPU.get(env, l),
            sigusr2: vars::SIGUSR2.get(env, l),
            heap_rate: vars::HEAP_RATE.get(env, l),
            guard: GuardConfig {
                burst: vars::RATE_BURST.get(env, l),
                refill: vars::RATE_REFILL.get(env, l),
                lock_after: vars::LOCK_AFTER.get(env, l),
                lock_window: vars::LOCK_WINDOW.get(env, l),
                lock_cooldown: vars::LOCK_COOLDOWN.get(env, l),
                breaker_after: vars::BREAKER_AFTER.get(env, l),
                breaker_window: vars::BREAKER_WINDOW.get(env, l),
                breaker_cooldown: vars::BREAKER_COOLDOWN.get(env, l),
                breaker_max: vars::BREAKER_MAX.get(env, l),
            },
            max_files: vars::MAX_FILES.get(env, l) as usize,
            max_bytes: vars::MAX_BYTES.get(env, l),
            unwinder: vars::UNWINDER.get(env, l),
            quiet: vars::QUIET.get(env, l),
        };
        (config, lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)], args: MacroArgs) -> (Config, Vec<String>) {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = |k: &str| map.get(k).cloned();
        Config::load(&args, Env::from_fn(&lookup))
    }

    #[test]
    fn defaults_without_env_or_args() {
        let (c, errors) = load(&[], MacroArgs::default());
        assert!(errors.is_empty());
        assert!(c.enabled);
        assert_eq!(c.dir, PathBuf::from("./hotprof"));
        assert_eq!(c.dump_timeout, Duration::from_secs(1));
        assert_eq!((c.guard.burst, c.guard.refill), (5, Duration::from_secs(12)));
        assert_eq!(
            (c.guard.lock_after, c.guard.lock_window, c.guard.lock_cooldown),
            (20, Duration::from_secs(10), Duration::from_secs(60))
        );
        assert_eq!(
            (c.guard.breaker_after, c.guard.breaker_cooldown, c.guard.breaker_max),
            (3, Duration::from_secs(300), Duration::from_secs(3600))
        );
        assert_eq!((c.max_files, c.max_bytes), (50, 256 << 20));
        assert_eq!(c.unwinder, UnwinderChoice::Auto);
        assert_eq!((c.cpu_window, c.cpu_hz), (Duration::from_secs(10), 99));
    }

    #[test]
    fn cpu_settings_are_validated() {
        let (c, errors) =
            load(&[("HOTPROF_CPU_HZ", "5000"), ("HOTPROF_CPU_SECONDS", "0s")], MacroArgs::default());
        assert_eq!((c.cpu_window, c.cpu_hz), (Duration::from_secs(10), 99));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("HOTPROF_CPU_SECONDS=\"0s\": expected a duration above 0"), "{errors:?}");
        assert!(
            errors[1].contains("HOTPROF_CPU_HZ=\"5000\": expected a whole number from 1 to 1000"),
            "{errors:?}"
        );
        let (c, _) = load(&[("HOTPROF_CPU_HZ", "250"), ("HOTPROF_CPU_SECONDS", "3s")], MacroArgs::default());
        assert_eq!((c.cpu_window, c.cpu_hz), (Duration::from_secs(3), 250));
        let (c, errors) =
            load(&[("HOTPROF_CPU_SECONDS", "3"), ("HOTPROF_RATE_REFILL", "30")], MacroArgs::default());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!((c.cpu_window, c.guard.refill), (Duration::from_secs(3), Duration::from_secs(30)));
    }

    #[test]
    fn env_beats_macro_args() {
        let args = MacroArgs { dir: Some("/var/macro"), enabled: Some(false), http: None };
        let (c, _) = load(&[("HOTPROF", "ON"), ("HOTPROF_DIR", "/var/env")], args.clone());
        assert!(c.enabled);
        assert_eq!(c.dir, PathBuf::from("/var/env"));
        let (c, _) = load(&[], args);
        assert!(!c.enabled);
        assert_eq!(c.dir, PathBuf::from("/var/macro"));
    }

    #[test]
    fn invalid_values_name_the_variable_and_fall_back() {
        let args = MacroArgs { dir: None, enabled: Some(false), http: None };
        let (c, errors) = load(
            &[("HOTPROF", "maybe"), ("HOTPROF_DUMP_TIMEOUT", "250 millis"), ("HOTPROF_MAX_BYTES", "lots")],
            args,
        );
        assert!(!c.enabled, "falls back to the macro's value, not to a guess");
        assert_eq!(c.dump_timeout, Duration::from_secs(1));
        assert_eq!(errors.len(), 3);
        assert_eq!(
            errors[0],
            "hotprof: ignoring HOTPROF=\"maybe\": expected one of on, off, true, false, 1, 0, yes, no; using off"
        );
        assert!(errors[1].contains("HOTPROF_DUMP_TIMEOUT=\"250 millis\": expected a duration"));
        assert!(errors[2].contains("HOTPROF_MAX_BYTES"));
    }

    #[test]
    fn empty_value_means_unset() {
        let (c, errors) = load(&[("HOTPROF", ""), ("HOTPROF_RATE_BURST", " ")], MacroArgs::default());
        assert!(errors.is_empty());
        assert!(c.enabled);
        assert_eq!(c.guard.burst, 5);
    }

    #[test]
    fn zero_counts_are_rejected() {
        let (c, errors) =
            load(&[("HOTPROF_RATE_BURST", "0"), ("HOTPROF_MAX_FILES", "-3")], MacroArgs::default());
        assert_eq!((c.guard.burst, c.max_files), (5, 50));
        assert_eq!(errors.len(), 2);
    }
}
