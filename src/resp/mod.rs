//! RESP, both ways: packing commands (`pack`), reading replies within their bounds (`parse`),
//! and turning replies into Python values (`reply`).

pub mod pack;
pub mod parse;
pub mod reply;
