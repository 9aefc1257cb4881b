//! Parsing and validation of the arguments of `#[hotprof::main(...)]`; the
//! skeleton they share with `#[hotprof::profile]`'s is in `attr_args.rs`.

use proc_macro2::Span;
use syn::Lit;
use syn::parse::{Lookahead1, Parse, ParseStream};

use crate::attr_args::{self, Arg, AttrArgs, Known, Setter};

mod kw {
    syn::custom_keyword!(dir);
    syn::custom_keyword!(enabled);
    syn::custom_keyword!(http);
}

/// An example `dir`, as messages show it.
const DIR_EXAMPLE: &str = "`dir = \"/var/tmp/hotprof\"`";
/// An example `http`, as messages show it.
const HTTP_EXAMPLE: &str = "`http = \"127.0.0.1:6060\"`";

/// The validated arguments of one `#[hotprof::main(...)]`, each with the
/// span of the literal the user wrote.
#[derive(Debug, Default)]
pub(crate) struct MainArgs {
    /// `dir = "..."`: the folder for dumps and profiles.
    pub(crate) dir: Option<(String, Span)>,
    /// `enabled = true|false`: whether capture starts on.
    pub(crate) enabled: Option<(bool, Span)>,
    /// `http = "addr:port"`: where the debug HTTP server listens, unless
    /// `HOTPROF_HTTP` says otherwise at run time.
    pub(crate) http: Option<(String, Span)>,
}

impl Parse for MainArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        attr_args::parse(input)
    }
}

impl AttrArgs for MainArgs {
    const KNOWN: Known = Known {
        valid: "`#[hotprof::main]` takes `dir = \"<folder>\"`, `enabled = true|false` and `http = \"<addr:port>\"`",
        names: &["dir", "enabled", "http"],
        aliases: &[
            ("directory", "dir"),
            ("folder", "dir"),
            ("path", "dir"),
            ("out_dir", "dir"),
            ("output_dir", "dir"),
            ("enable", "enabled"),
            ("on", "enabled"),
            ("addr", "http"),
            ("bind", "http"),
            ("listen", "http"),
            ("http_addr", "http"),
            ("pprof", "http"),
            ("debug_http", "http"),
        ],
    };

    fn setter(lookahead: &Lookahead1<'_>) -> Option<Setter<Self>> {
        if lookahead.peek(kw::dir) {
            Some(Self::set_dir)
        } else if lookahead.peek(kw::enabled) {
            Some(Self::set_enabled)
        } else if lookahead.peek(kw::http) {
            Some(Self::set_http)
        } else {
            None
        }
    }
}

impl MainArgs {
    fn set_dir(&mut self, arg: &Arg) -> syn::Result<()> {
        if self.dir.is_some() {
            return Err(arg.repeated());
        }
        let Some(Lit::Str(lit)) = arg.literal(DIR_EXAMPLE)? else {
            let message = format!("`dir` takes a string literal naming a folder, e.g. {DIR_EXAMPLE}");
            return Err(syn::Error::new_spanned(&arg.value, message));
        };
        arg.plain(&lit)?;
        let dir = lit.value();
        if dir.trim().is_empty() {
            let message = format!(
                "`dir` is empty: name a folder, e.g. {DIR_EXAMPLE}, or leave `dir` out to use the default"
            );
            return Err(syn::Error::new_spanned(&lit, message));
        }
        self.dir = Some((dir, lit.span()));
        Ok(())
    }

    fn set_http(&mut self, arg: &Arg) -> syn::Result<()> {
        if self.http.is_some() {
            return Err(arg.repeated());
        }
        let lit = match arg.literal(HTTP_EXAMPLE)? {
            Some(Lit::Str(lit)) => lit,
            Some(Lit::Int(port)) => {
                let message = format!(
                    "`http` takes a string `addr:port`, not a port: write `http = \"127.0.0.1:{}\"`",
                    port.base10_digits()
                );
                return Err(syn::Error::new_spanned(&port, message));
            }
            _ => {
                let message = format!("`http` takes a string literal `addr:port`, e.g. {HTTP_EXAMPLE}");
                return Err(syn::Error::new_spanned(&arg.value, message));
            }
        };
        arg.plain(&lit)?;
        let addr = lit.value();
        if !is_bind_address(&addr) {
            let message = format!(
                "`http = {addr:?}` is not an address: expected `addr:port` such as {HTTP_EXAMPLE}, \
                 `[::1]:6060` or `:6060` (loopback); port 0 takes any free port"
            );
            return Err(syn::Error::new_spanned(&lit, message));
        }
        self.http = Some((addr, lit.span()));
        Ok(())
    }

    fn set_enabled(&mut self, arg: &Arg) -> syn::Result<()> {
        if self.enabled.is_some() {
            return Err(arg.repeated());
        }
        match arg.literal("`enabled = true` or `enabled = false`")? {
            Some(Lit::Bool(lit)) => {
                self.enabled = Some((lit.value, lit.span));
                Ok(())
            }
            Some(Lit::Str(lit)) if matches!(lit.value().as_str(), "true" | "false") => {
                let message = format!(
                    "`enabled` takes a bool, not a string: write `enabled = {}` without quotes",
                    lit.value()
                );
                Err(syn::Error::new_spanned(&lit, message))
            }
            _ => Err(syn::Error::new_spanned(
                &arg.value,
                "`enabled` takes `true` or `false`, e.g. `enabled = false`",
            )),
        }
    }
}

/// The forms `HOTPROF_HTTP` takes at run time (the runtime checks again):
/// `ip:port`, `[v6]:port`, `localhost:port` and `:port`.
fn is_bind_address(v: &str) -> bool {
    if v.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    match v.rsplit_once(':') {
        Some(("" | "localhost", port)) => port.parse::<u16>().is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    use super::*;
    use crate::checks::{contains_each, same};

    /// The messages of every error `tokens` produce, in order.
    fn messages(tokens: TokenStream) -> Vec<String> {
        crate::checks::messages::<MainArgs>(tokens)
    }

    #[test]
    fn suggests_close_names_and_aliases() -> Result<(), String> {
        same(MainArgs::KNOWN.suggest("dri"), Some("dir"))?;
        same(MainArgs::KNOWN.suggest("DIR"), Some("dir"))?;
        same(MainArgs::KNOWN.suggest("di"), Some("dir"))?;
        same(MainArgs::KNOWN.suggest("enabeld"), Some("enabled"))?;
        same(MainArgs::KNOWN.suggest("enable"), Some("enabled"))?;
        same(MainArgs::KNOWN.suggest("directory"), Some("dir"))?;
        same(MainArgs::KNOWN.suggest("path"), Some("dir"))?;
        same(MainArgs::KNOWN.suggest("threshold"), None)?;
        same(MainArgs::KNOWN.suggest("x"), None)
    }

    #[test]
    fn accepts_every_argument() -> Result<(), String> {
        let args = syn::parse2::<MainArgs>(quote!(dir = "/var/tmp/hp", enabled = false, http = ":6060",))
            .map_err(|e| e.to_string())?;
        same(args.dir.map(|(dir, _)| dir).as_deref(), Some("/var/tmp/hp"))?;
        same(args.enabled.map(|(on, _)| on), Some(false))?;
        same(args.http.map(|(addr, _)| addr).as_deref(), Some(":6060"))?;
        let args = syn::parse2::<MainArgs>(quote!()).map_err(|e| e.to_string())?;
        same((args.dir.is_none(), args.enabled.is_none(), args.http.is_none()), (true, true, true))
    }

    #[test]
    fn http_takes_the_addresses_hotprof_http_takes() -> Result<(), String> {
        for good in ["127.0.0.1:6060", "0.0.0.0:0", "[::1]:6060", ":6060", "localhost:6060"] {
            same((good, is_bind_address(good)), (good, true))?;
        }
        for bad in ["6060", "127.0.0.1", "host:6060", ":99999", "::1:6060", "", "127.0.0.1:60 60"] {
            same((bad, is_bind_address(bad)), (bad, false))?;
        }
        let found = messages(quote!(http = 6060, listen = ":1", http = "nowhere"));
        contains_each(
            &found,
            &[
                "`http` takes a string `addr:port`, not a port: write `http = \"127.0.0.1:6060\"`",
                "unknown argument `listen`: did you mean `http`?",
                "`http = \"nowhere\"` is not an address",
            ],
        )
    }

    #[test]
    fn reports_every_bad_argument() -> Result<(), String> {
        let found = messages(quote!(dri = "x", enabled = "yes", dir = 5, enabled));
        contains_each(
            &found,
            &[
                "did you mean `dir`?",
                "`enabled` takes `true` or `false`",
                "`dir` takes a string literal",
                "`enabled` needs a value",
            ],
        )
    }

    #[test]
    fn rejects_repeats_and_empty_dir() -> Result<(), String> {
        contains_each(&messages(quote!(dir = "a", dir = "b")), &["given twice"])?;
        contains_each(&messages(quote!(dir = " ")), &["`dir` is empty"])
    }

    #[test]
    fn stops_at_tokens_that_start_no_argument() -> Result<(), String> {
        let found = messages(quote!(dri = 1, "x", dir = 5));
        contains_each(&found, &["unknown argument `dri`", "expected one of: `dir`, `enabled`, `http`"])
    }
}
