//! Docs, attributes, inner attributes and visibility stay on the user's
//! function, in their order; `#![deny(...)]` here makes a dropped
//! `#[allow]` fail the build.
#![deny(unused_mut, unused_variables, dead_code)]

mod api {
    /// The answer.
    #[hotprof::profile]
    #[must_use = "the answer matters"]
    #[inline]
    #[allow(unused_variables)]
    pub fn answer(unused: u32) -> u32 {
        #![allow(unused_mut)]
        let mut answer = 42;
        answer
    }

    /// Never called: the `#[allow]` must survive.
    #[allow(dead_code)]
    #[hotprof::profile]
    fn never() {}

    #[hotprof::profile]
    #[cfg(any())]
    pub fn compiled_out() -> u32 {
        this_does_not_exist()
    }
}

fn main() {
    assert_eq!(api::answer(0), 42);
}
