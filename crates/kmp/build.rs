//! Build script: only declares the `fuzzing` cfg that cargo-fuzz sets, so rustc's
//! `unexpected_cfgs` check knows it (the workspace lint table cannot be extended per crate).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fuzzing)");
}
