//! A sync `fn` returning `impl Future`: the future it returns is wrapped, an
//! early `return` included, and it may borrow `self`.

use std::future::{Future, ready};

struct Cache {
    hit: Option<u32>,
}

impl Cache {
    #[hotprof::profile]
    fn fetch(&self) -> impl Future<Output = u32> + '_ {
        async move { self.hit.unwrap_or(0) }
    }

    #[hotprof::profile]
    fn fetch_mut(&mut self) -> impl Future<Output = u32> + Send + '_ {
        async move {
            let value = self.hit.get_or_insert(7);
            *value
        }
    }

    #[hotprof::profile]
    fn ready_or_slow(&self, slow: bool) -> impl Future<Output = u32> {
        if !slow {
            return ready(1);
        }
        let value = self.hit.unwrap_or(2);
        ready(value)
    }
}

#[hotprof::profile]
fn answer() -> impl Future<Output = u32> {
    // A closure's `return` is its own.
    let pick = |n: u32| {
        if n > 40 {
            return n;
        }
        0
    };
    ready(pick(42))
}

#[tokio::main]
async fn main() {
    let mut cache = Cache { hit: None };
    assert_eq!(cache.fetch().await, 0);
    assert_eq!(cache.fetch_mut().await, 7);
    assert_eq!(cache.ready_or_slow(false).await, 1);
    assert_eq!(cache.ready_or_slow(true).await, 7);
    assert_eq!(tokio::spawn(answer()).await.ok(), Some(42));
}
