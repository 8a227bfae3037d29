//! TODO(helper): interpolate
