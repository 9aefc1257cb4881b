//! The environment tables of the README and docs/configuration.md say what
//! `hotprof::VARIABLES` declares: the same variables, in the same order,
//! with the same defaults.
#![allow(clippy::unwrap_used)]

use std::path::Path;

/// (names, default) of each row of the first table that lists `HOTPROF`
/// variables in `file`: every `HOTPROF` name in the first cell, and the
/// second cell without backticks.
fn env_table(file: &str) -> Vec<(Vec<String>, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut rows = Vec::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let names: Vec<String> = cells
            .get(1)
            .map(|c| {
                c.split('`')
                    .skip(1)
                    .step_by(2)
                    .filter(|n| n.starts_with("HOTPROF"))
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if names.is_empty() || cells.len() < 4 {
            if !rows.is_empty() {
                break; // the table ended
            }
            continue;
        }
        rows.push((names, cells[2].replace('`', "")));
    }
    rows
}

fn check(file: &str) {
    let rows = env_table(file);
    let documented: Vec<(&str, &str)> = rows
        .iter()
        .flat_map(|(names, default)| names.iter().map(move |n| (n.as_str(), default.as_str())))
        .collect();
    let declared: Vec<&str> = hotprof::VARIABLES.iter().map(|v| v.0).collect();
    let names: Vec<&str> = documented.iter().map(|d| d.0).collect();
    assert_eq!(names, declared, "{file}: the table's variables, in order");
    for ((name, shown), (_, default, _)) in documented.iter().zip(hotprof::VARIABLES) {
        assert!(
            shown.starts_with(default),
            "{file}: {name} is documented with default {shown:?}, declared {default:?}"
        );
    }
}

#[test]
fn readme_table_matches_the_declarations() {
    check("README.md");
}

#[test]
fn configuration_table_matches_the_declarations() {
    check("docs/configuration.md");
}
