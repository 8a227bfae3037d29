//! TODO(helper): ports
