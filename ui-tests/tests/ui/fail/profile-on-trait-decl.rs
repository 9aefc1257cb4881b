trait Shape {
    #[hotprof::profile]
    fn area(&self) -> f64;
}

fn main() {}
