//! The remote-free workload (not built yet).
