fn main() {
    eprintln!("hz3-stress: not built yet");
    std::process::exit(2);
}
