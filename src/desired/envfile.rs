//! TODO(helper): envfile
