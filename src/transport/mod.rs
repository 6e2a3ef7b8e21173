//! Record-batch streams between a caller and Python executor processes.
//!
//! The protocol is written down in `PROTOCOL.md` beside this file. `codec`
//! turns messages into bytes and back, `batch` turns record batches into
//! Arrow IPC messages and back (`batch_checks` holds what a received one
//! must pass, and `caught_panic` keeps arrow's asserts on a peer's
//! bytes from printing; `flat_batch` writes the message of a batch of flat
//! columns held as raw buffers, without arrays), `wire` moves whole frames over any byte
//! stream, `unix` is the local transport over a Unix domain socket (reading
//! large bodies into memory from `body_pool`), and
//! `client` is a blocking caller of one stream for callers that are not
//! Python (the Spark plugin, through JNI). With the `flight` feature,
//! `flight_map` maps the same messages onto Arrow Flight `DoExchange` and
//! `flight_front` serves it, forwarding each exchange to a worker over the
//! local transport, and `flight_client` is the blocking client's connection
//! to such a front (a remote pool).

pub mod batch;
mod batch_checks;
mod body_pool;
mod caught_panic;
pub mod client;
pub mod codec;
pub mod flat_batch;
#[cfg(feature = "flight")]
pub mod flight_client;
#[cfg(feature = "flight")]
pub mod flight_front;
#[cfg(feature = "flight")]
pub mod flight_map;
pub mod unix;
pub mod wire;
