//! Small helpers the rest of the crate shares, each written once: the short form of an ID
//! (`id`) and the clock and calendar (`time`). Pure, except [`time::unix_now`], the one place
//! that reads the wall clock for the modules that take `now` from their caller, and `colour`
//! (whether a stream is a terminal that may be coloured).

pub mod colour;
pub mod id;
pub mod time;
