#[hotprof::main]
struct Service {
    port: u16,
}

fn main() {}
