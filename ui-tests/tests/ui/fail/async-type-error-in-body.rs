// Through the runtime attribute too.
#[hotprof::main]
#[tokio::main]
async fn main() {
    let port: u16 = "8080";
}
