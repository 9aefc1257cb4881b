//! Methods with every receiver, and an associated function, in an inherent
//! `impl`.

struct Counter {
    count: u32,
}

impl Counter {
    #[hotprof::profile]
    fn new() -> Self {
        Counter { count: 0 }
    }

    #[hotprof::profile]
    fn get(&self) -> u32 {
        self.count
    }

    #[hotprof::profile(name = "Counter::bump")]
    pub fn bump(&mut self) -> &mut Self {
        self.count += 1;
        self
    }

    #[hotprof::profile]
    fn into_count(self) -> u32 {
        self.count
    }

    #[hotprof::profile]
    fn boxed(self: Box<Self>) -> u32 {
        self.count
    }
}

fn main() {
    let mut counter = Counter::new();
    counter.bump().bump();
    assert_eq!(counter.get(), 2);
    assert_eq!(Box::new(Counter::new()).boxed(), 0);
    assert_eq!(counter.into_count(), 2);
}
