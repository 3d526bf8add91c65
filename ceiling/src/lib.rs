//! The ceiling allocator (not built yet).
