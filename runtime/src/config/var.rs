//! One environment variable as declared once (name, default, parser,
//! "expected" text; its doc line goes to `VARIABLES`) and the one way every
//! reader reads it.
//!
//! The failure policy is the same for every variable: an empty value counts
//! as unset, and a bad value yields one line naming the variable and what it
//! accepts, after which the reader goes on with the default. A secret's
//! value is never shown.

/// Where values come from: the process environment, or a test's own map.
#[derive(Clone, Copy)]
pub(crate) struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Env") // never the values: some are secrets
    }
}

fn process_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl<'a> Env<'a> {
    /// The environment of this process.
    pub(crate) fn process() -> Env<'static> {
        Env(&process_var)
    }

    /// A lookup of the caller's (tests).
    #[cfg(test)]
    pub(crate) fn from_fn(lookup: &'a dyn Fn(&str) -> Option<String>) -> Env<'a> {
        Env(lookup)
    }

    /// The trimmed value of `name`; `None` when unset or empty.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }
}

/// A variable hotprof reads, and everything said about it.
#[derive(Debug)]
pub(crate) struct Var<T: 'static> {
    pub name: &'static str,
    /// The default as the docs show it; `unset` means "no value".
    pub default: &'static str,
    /// The accepted values, as error lines say them ("a duration such as 2s").
    pub expected: &'static str,
    /// Reads a trimmed, non-empty value.
    pub parse: fn(&str) -> Option<T>,
    /// Credentials: error lines never echo the value.
    pub secret: bool,
}

/// The default of a variable without one.
pub(crate) const UNSET: &str = "unset";

impl<T> Var<T> {
    /// `Ok(None)` when unset, the value when valid, else why not: the
    /// variable, the value (unless secret) and what it accepts.
    pub(crate) fn read(&self, env: Env<'_>) -> Result<Option<T>, String> {
        let Some(value) = env.get(self.name) else { return Ok(None) };
        match (self.parse)(&value) {
            Some(v) => Ok(Some(v)),
            None if self.secret => {
                Err(format!("{} must hold {}; the value is not shown", self.name, self.expected))
            }
            None => Err(format!("{}={value:?}: expected {}", self.name, self.expected)),
        }
    }

    /// The value, else `fallback` (shown in the line as `shown`); a bad
    /// value adds one line to `lines`.
    pub(crate) fn or(&self, env: Env<'_>, lines: &mut Vec<String>, fallback: T, shown: &str) -> T {
        match self.read(env) {
            Ok(Some(v)) => v,
            Ok(None) => fallback,
            Err(why) => {
                lines.push(format!("hotprof: ignoring {why}; using {shown}"));
                fallback
            }
        }
    }

    /// The declared default as a value (`None` for [`UNSET`]).
    pub(crate) fn default_value(&self) -> Option<T> {
        (self.parse)(self.default)
    }
}

impl<T: Default> Var<T> {
    /// The value, else the declared default; a bad value adds one line.
    /// (Every declared default parses: `vars::tests` checks it.)
    pub(crate) fn get(&self, env: Env<'_>, lines: &mut Vec<String>) -> T {
        let fallback = self.default_value().unwrap_or_default();
        self.or(env, lines, fallback, self.default)
    }
}
