//! HTTP/1.1 as bytes: the heads parsed with httparse and written back, and
//! where each body ends. The proxy moves the bytes between these points as
//! they arrive; nothing here does I/O.

pub(crate) mod framing;
pub(crate) mod head;
