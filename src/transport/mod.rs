//! Getting bytes to a server and its replies back: the connector and the process-wide pools
//! (`connector`), the blocking connection (`blocking`), the async path's streams (`streams`),
//! TLS, the generic pool, the circuit breaker, and which requests may be sent again (`resend`).

pub mod blocking;
pub mod breaker;
pub mod connector;
pub mod pool;
pub mod resend;
pub mod streams;
pub mod tls;
