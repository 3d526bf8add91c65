fn main() {
    eprintln!("hz3-bench: not built yet");
    std::process::exit(2);
}
