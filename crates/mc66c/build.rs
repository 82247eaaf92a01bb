//! Declares the `fuzzing` cfg (set by cargo-fuzz) so `cfg!(fuzzing)` does not warn.
//! Under it the readout BCC check passes, letting the fuzzer reach the register parsing.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fuzzing)");
}
