//! (This package holds only the `it` integration test.)
