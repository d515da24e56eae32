//! Table definitions shared by both backends (kept by hand: one schema serves two databases).
