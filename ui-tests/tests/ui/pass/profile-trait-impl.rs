//! A method in a trait `impl`, and a trait method's default body.

trait Shape {
    fn area(&self) -> f64;

    #[hotprof::profile]
    fn describe(&self) -> String {
        format!("area {}", self.area())
    }
}

struct Square(f64);

impl Shape for Square {
    #[hotprof::profile(name = "Square::area")]
    fn area(&self) -> f64 {
        self.0 * self.0
    }
}

impl std::fmt::Display for Square {
    #[hotprof::profile]
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "square {}", self.0)
    }
}

fn main() {
    let square = Square(2.0);
    assert_eq!(square.area(), 4.0);
    assert_eq!(square.describe(), "area 4");
    assert_eq!(square.to_string(), "square 2");
}
