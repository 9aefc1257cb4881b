//! Async methods with `&self`, `&mut self` and `self`: the body's `async move`
//! block captures `self` as the body did. Also `async fn` in a trait `impl`.

struct Store {
    items: Vec<u32>,
}

impl Store {
    #[hotprof::profile]
    async fn len(&self) -> usize {
        tokio::task::yield_now().await;
        self.items.len()
    }

    #[hotprof::profile]
    async fn push(&mut self, item: u32) -> &mut Self {
        tokio::task::yield_now().await;
        self.items.push(item);
        self
    }

    #[hotprof::profile]
    async fn into_items(self) -> Vec<u32> {
        self.items
    }
}

trait Load {
    async fn load(&self, key: u32) -> Option<u32>;
}

impl Load for Store {
    #[hotprof::profile(name = "Store::load")]
    async fn load(&self, key: u32) -> Option<u32> {
        self.items.iter().copied().find(|item| *item == key)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut store = Store { items: Vec::new() };
    store.push(1).await.push(2).await;
    assert_eq!(store.len().await, 2);
    assert_eq!(store.load(2).await, Some(2));
    assert_eq!(store.load(3).await, None);
    assert_eq!(store.into_items().await, vec![1, 2]);
}
