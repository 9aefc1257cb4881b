//! The generated names cannot clash with the user's, and profiled functions
//! nest: one defined and called inside another has its own scope.

#[hotprof::profile]
fn outer() -> u32 {
    static __HOTPROF_SCOPE: u32 = 1;
    let __hotprof_scope = 2;
    let __hotprof_fake_return = 3;

    #[hotprof::profile]
    fn inner() -> u32 {
        4
    }

    __HOTPROF_SCOPE + __hotprof_scope + __hotprof_fake_return + inner()
}

#[hotprof::profile]
async fn outer_async() -> u32 {
    let __hotprof_fake_return = 5;
    '__hotprof_body: {
        if __hotprof_fake_return > 0 {
            break '__hotprof_body;
        }
    }
    __hotprof_fake_return + outer()
}

#[hotprof::profile]
fn future() -> impl std::future::Future<Output = u32> {
    let __hotprof_body = 6;
    if __hotprof_body == 0 {
        return std::future::ready(0);
    }
    std::future::ready(__hotprof_body)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(outer(), 10);
    assert_eq!(outer_async().await, 15);
    assert_eq!(future().await, 6);
}
