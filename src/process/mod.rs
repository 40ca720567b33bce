//! What the process shares: fork safety (`fork`) and the async runtime with its bridge to
//! asyncio (`runtime`).

pub mod fork;
pub mod runtime;
