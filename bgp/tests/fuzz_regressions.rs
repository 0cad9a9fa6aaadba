//! Every input the decoder fuzz target ever failed on, replayed through the
//! same property (`fuzz/check.rs`). Each file under `tests/fuzz-regressions/`
//! is one input in hex, with a comment on what it found.

#[path = "../fuzz/check.rs"]
mod check;

mod common;

#[test]
fn every_fuzz_finding_stays_fixed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("regression directory") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("readable");
        check::check(&common::hex(&text));
        count += 1;
    }
    assert!(count > 0, "no regression inputs in {}", dir.display());
}
