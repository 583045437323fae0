//! The carelog binary's wiring, as a library so that the end-to-end tests start the
//! application exactly as `carelog serve` does.

pub mod app;
pub mod checkpointer;
pub mod seed;
