//! The compile errors a user meets when the stack is put together wrongly name the fix: each
//! case under `ui/` must fail to compile with exactly the message next to it (`.stderr`).
//! `TRYBUILD=overwrite cargo test --all-features --test diagnostics` rewrites the messages after a
//! deliberate change.

#[test]
fn misassembled_stacks_say_how_to_fix_them() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/diagnostics/ui/*.rs");
}
