//! TODO(helper): suggest
