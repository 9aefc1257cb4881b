#[hotprof::main]
fn main()
where
    u8: Copy,
{
}
