//! Property tests of everything that parses outside input: environment
//! values, HTTP query parameters, symbol requests and Alertmanager bodies.
//! Whatever comes in, the answer is a value or a clear error, never a panic.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;

use crate::config::parse;
use crate::config::{Config, Env, MacroArgs, VARIABLES};

proptest! {
    /// Any value of any variable: a config, and one line per rejected
    /// value naming its variable; secrets never echoed.
    #[test]
    fn any_environment_loads(values in prop::collection::vec(".{0,40}", VARIABLES.len())) {
        let map: HashMap<&str, String> = VARIABLES.iter().map(|v| v.0).zip(values.iter().cloned()).collect();
        let lookup = |k: &str| map.get(k).cloned();
        let (config, lines) = Config::load(&MacroArgs::default(), Env::from_fn(&lookup));
        prop_assert!(config.cpu_hz >= 1 && config.cpu_hz <= 1000);
        prop_assert!(!config.dump_timeout.is_zero() && config.guard.burst > 0);
        for line in &lines {
            prop_assert!(line.starts_with("hotprof: ignoring HOTPROF"), "{line}");
        }
    }

    #[test]
    fn durations_read_back(n in 1u64..1_000_000, unit in prop::sample::select(vec!["", "ns", "us", "µs", "ms", "s", "m"])) {
        let nanos = match unit { "ns" => 1, "us" | "µs" => 1_000, "ms" => 1_000_000, "m" => 60_000_000_000, _ => 1_000_000_000 };
        prop_assert_eq!(parse::duration(&format!("{n}{unit}")), Some(Duration::from_nanos(n * nanos)));
    }

    #[test]
    fn any_text_is_a_duration_or_none(v in "\\PC{0,20}") {
        let _ = parse::duration(&v);
        let _ = parse::bytes(&v);
        let _ = parse::listen(&v);
        let _ = parse::allow(&v);
    }
}

#[cfg(feature = "http")]
mod http {
    use super::*;
    use crate::http::{params, routes, symbol};

    proptest! {
        /// Any query: `seconds` within the limit or Go's 400 text; `debug` a
        /// small number or an error.
        #[test]
        fn any_query_is_an_answer(q in "[a-z=&%0-9+.-]{0,60}", max in 1u64..86_400) {
            match params::seconds(Some(&q), max) {
                Ok(d) => prop_assert!(d.as_secs() >= 1 && d.as_secs() <= max),
                Err(message) => prop_assert!(!message.is_empty()),
            }
            let _ = params::debug(Some(&q));
        }

        #[test]
        fn any_symbol_word_is_an_address_or_skipped(word in "\\PC{0,24}") {
            let _ = symbol::parse_address(&word);
        }

        /// Any bytes, JSON or not: an alert or a 400 text; names short and printable.
        #[test]
        fn any_webhook_body_is_an_answer(body in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(alert) = routes::webhook(&body) {
                prop_assert!(alert.names.chars().count() <= 200);
                prop_assert!(!alert.names.chars().any(char::is_control));
            }
        }

        #[test]
        fn any_alertmanager_shaped_body_is_an_answer(
            status in "[a-z]{0,10}",
            names in prop::collection::vec("\\PC{0,30}", 0..5),
        ) {
            let alerts: Vec<serde_json::Value> =
                names.iter().map(|n| serde_json::json!({"labels": {"alertname": n}})).collect();
            let body = serde_json::json!({"status": status, "alerts": alerts}).to_string();
            let alert = routes::webhook(body.as_bytes());
            prop_assert!(alert.is_ok(), "{body}");
        }
    }
}
