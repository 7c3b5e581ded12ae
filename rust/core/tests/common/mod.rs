//! What the property tests (`etf_props.rs`, `convert_props.rs`) share: their proptest
//! configuration.

use proptest::test_runner::{Config, RngSeed};

/// Cases per property when `PROPTEST_CASES` is unset: well under a second each in a release
/// build, so `cargo test --workspace --release` stays fast. `make fuzz` sets the variable for
/// long runs.
pub const CASES: u32 = 1024;

/// The generator's seed when `PROPTEST_RNG_SEED` is unset: a run's outcome depends on the code
/// alone. `make fuzz` sets a random seed and prints it; setting it again replays that run.
pub const SEED: u64 = 20_261_208;

/// The configuration of every property: [`CASES`] cases unless `PROPTEST_CASES` is set, the
/// seed [`SEED`] unless `PROPTEST_RNG_SEED` is set, and no failure files.
///
/// `Config::default()` has already read `PROPTEST_CASES` and the other `PROPTEST_*` variables,
/// so only the built-in default of 256 is replaced here, never a count the environment gave
/// (`Config::with_cases` would override the variable).
///
/// Failure persistence is off rather than `proptest-regressions/` gitignored: a failing run
/// prints its shrunk input, and the regression it reveals belongs in `etf.rs` or `ext.rs` as a
/// named test that says what it guards, not as an opaque seed file that `make fuzz` (millions of
/// cases, on any machine) would leave in the source tree.
pub fn config() -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = CASES;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(SEED);
    }
    config.failure_persistence = None;
    config
}
