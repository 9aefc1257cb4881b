// Argument and signature errors are reported together.
#[hotprof::main(dri = "/var/tmp/hotprof", enabled = 1)]
fn serve(port: u16) {}

fn main() {}
