//! TODO(helper): units
