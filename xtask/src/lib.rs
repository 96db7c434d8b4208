//! Library half of `cargo xtask`: tasks that tests can call too (the demo inputs generator).

pub mod inputs;
