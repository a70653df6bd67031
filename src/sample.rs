//! Placeholder: the sample stream generator lands here.
