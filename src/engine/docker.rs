//! TODO(helper): bollard implementation of the Engine trait.
