//! `tessera`: the command line of the tessera reward pipeline (the code is in `lib.rs`).

fn main() {
    tessera_cli::main();
}
