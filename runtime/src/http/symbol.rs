//! `/debug/pprof/symbol`: `0xA+0xB` (query on GET, body on POST) to
//! `num_symbols: 1` and one `0xADDR name` line per address we can name,
//! like Go's handler; words that are not numbers are skipped, as in Go.

use std::fmt::Write as _;

/// Most addresses looked up per request.
const MAX_ADDRESSES: usize = 4096;

/// The answer for a `+`-separated list of addresses. Profiles hotprof
/// writes carry each location's lookup address, so each is looked up as is.
pub(crate) fn answer(input: &str) -> String {
    let addrs: Vec<usize> = input
        .split('+')
        .take(MAX_ADDRESSES)
        .filter_map(parse_address)
        .filter(|pc| *pc != 0)
        .filter_map(|pc| usize::try_from(pc).ok())
        .collect();
    let names = crate::capture::get().function_names(&addrs);
    let mut out = String::from("num_symbols: 1\n");
    for (pc, name) in addrs.iter().zip(names) {
        if let Some(name) = name {
            let _ = writeln!(out, "{pc:#x} {name}");
        }
    }
    out
}

/// Like Go's `strconv.ParseUint(word, 0, 64)`: `0x` hex, `0o`/`0` octal, `0b` binary, else decimal.
pub(crate) fn parse_address(word: &str) -> Option<u64> {
    let w = word.trim();
    let (digits, radix) = match w.get(..2) {
        Some("0x" | "0X") => (&w[2..], 16),
        Some("0o" | "0O") => (&w[2..], 8),
        Some("0b" | "0B") => (&w[2..], 2),
        _ if w.len() > 1 && w.starts_with('0') => (&w[1..], 8),
        _ => (w, 10),
    };
    if digits.starts_with(['+', '-']) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn marker_function_for_symbol_test() -> usize {
        marker_function_for_symbol_test as *const () as usize
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_address("0x10"), Some(16));
        assert_eq!(parse_address("010"), Some(8));
        assert_eq!(parse_address("10"), Some(10));
        assert_eq!(parse_address("0"), Some(0));
        for bad in ["", "0x", "zz", "-1", "0x-1", "0x+1"] {
            assert_eq!(parse_address(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_known_addresses_and_skips_the_rest() {
        let pc = marker_function_for_symbol_test() + 1;
        let out = answer(&format!("{pc:#x}+nonsense+0x0"));
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("num_symbols: 1"));
        let line = lines.next().unwrap();
        assert!(line.starts_with(&format!("{pc:#x} ")), "{out}");
        assert!(line.contains("marker_function_for_symbol_test"), "{out}");
        assert_eq!(lines.next(), None, "{out}");
    }
}
