# Recipes for Docket; CI runs `.ci/run`, which does what `just ci` does.

export DOCKET_TEST_DATABASE_URL := env_var_or_default("DOCKET_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")

# Run the embedded default.
run:
    cargo run --release -p docket -- serve --demo

# All tests (PostgreSQL ones against DOCKET_TEST_DATABASE_URL).
test:
    cargo test --workspace

# Formatting and clippy, warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Benchmarks: the event log on both backends beside their raw limits, and the decider.
bench:
    cargo run --release -p docket -- bench append
    cargo bench -p domain

# What CI runs.
ci:
    bash .ci/run
