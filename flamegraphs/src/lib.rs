//! Folding and flamegraph rendering (not built yet).
