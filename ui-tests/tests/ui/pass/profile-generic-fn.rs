//! Generics stay as written: type parameters with bounds and a `where`
//! clause, lifetimes, const generics, `impl Trait` arguments. All
//! instantiations share one scope.

use std::fmt::Display;

#[hotprof::profile]
fn longest<'a, T>(items: &'a [T]) -> Option<&'a T>
where
    T: AsRef<str>,
{
    items.iter().max_by_key(|item| item.as_ref().len())
}

#[hotprof::profile]
fn sum<const N: usize>(values: [u64; N]) -> u64 {
    values.iter().sum()
}

#[hotprof::profile]
fn show(value: impl Display) -> String {
    value.to_string()
}

fn main() {
    assert_eq!(longest(&["a", "abc", "ab"]), Some(&"abc"));
    assert_eq!(longest::<String>(&[]), None);
    assert_eq!(sum([1, 2, 3]), 6);
    assert_eq!(sum([4; 8]), 32);
    assert_eq!(show(7), "7");
    assert_eq!(show("seven"), "seven");
}
