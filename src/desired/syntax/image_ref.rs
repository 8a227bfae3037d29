//! TODO(helper): image_ref
