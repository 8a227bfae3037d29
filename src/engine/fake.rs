//! TODO(helper): in-memory fake engine.
