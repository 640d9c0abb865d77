fn main() { eprintln!("cells-router: not built yet"); std::process::exit(1); }
