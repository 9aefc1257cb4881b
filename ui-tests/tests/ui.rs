//! Every `#[hotprof::main]` and `#[hotprof::profile]` a user can write: what
//! compiles (and runs), and each error with its message and span; the
//! `profile-*` cases are `#[hotprof::profile]`'s. Regenerate the `.stderr`
//! files with `TRYBUILD=overwrite cargo test -p ui-tests` and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
