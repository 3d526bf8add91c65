//! hz3 (not built yet).
#![no_std]
