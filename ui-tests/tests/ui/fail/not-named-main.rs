#[hotprof::main]
fn serve() {}

fn main() {
    serve();
}
