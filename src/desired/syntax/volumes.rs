//! TODO(helper): volumes
