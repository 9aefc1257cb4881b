//! "Did you mean": the known name closest to one the user wrote.

/// The name in `names` that `written` most likely means: the same name in
/// another case, an alias users reach for (`aliases` maps it to the name),
/// or a close misspelling. `None` when nothing is close.
pub(crate) fn suggest(
    written: &str,
    names: &[&'static str],
    aliases: &[(&str, &'static str)],
) -> Option<&'static str> {
    let lower = written.to_lowercase();
    if let Some(&known) = names.iter().find(|known| **known == lower) {
        return Some(known);
    }
    if let Some(&(_, meant)) = aliases.iter().find(|(alias, _)| *alias == lower) {
        return Some(meant);
    }
    // As rustc's "did you mean": at most one edit per three characters.
    let limit = lower.chars().count().max(3) / 3;
    names
        .iter()
        .map(|known| (edit_distance(&lower, known), *known))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and swaps of two neighbours each cost one (`dri` -> `dir` is one edit).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j].
    let mut rows = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut best =
                (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::same;

    #[test]
    fn edit_distance_counts_swaps_as_one() -> Result<(), String> {
        same(edit_distance("dri", "dir"), 1)?;
        same(edit_distance("dir", "dir"), 0)?;
        same(edit_distance("", "dir"), 3)?;
        same(edit_distance("enable", "enabled"), 1)?;
        same(edit_distance("enabeld", "enabled"), 1)?;
        same(edit_distance("threshhold", "threshold"), 1)?;
        same(edit_distance("kitten", "sitting"), 3)
    }

    #[test]
    fn prefers_case_then_alias_then_the_closest_name() -> Result<(), String> {
        let names = ["name", "threshold"];
        let aliases = [("label", "name")];
        same(suggest("NAME", &names, &aliases), Some("name"))?;
        same(suggest("label", &names, &aliases), Some("name"))?;
        same(suggest("threshhold", &names, &aliases), Some("threshold"))?;
        same(suggest("treshold", &names, &aliases), Some("threshold"))?;
        same(suggest("nmae", &names, &aliases), Some("name"))?;
        same(suggest("enabled", &names, &aliases), None)?;
        same(suggest("x", &names, &aliases), None)
    }
}
