//! What the cache tells about itself: its counters (`metrics`) and each request's record
//! for OpenTelemetry's spans (`spans`).

pub mod metrics;
pub mod spans;
