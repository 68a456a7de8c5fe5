//! Decide **on which connection** an attempt goes out.
//!
//! The most common reset is a pooled keep-alive connection that the server, a NAT or a load
//! balancer closed while it sat idle. Retrying on another connection from the same pool often
//! fails the same way: after a server restart every idle connection to it is dead, and
//! hyper-util's pool hands them out one failure at a time (measured: three stale connections
//! cost three failed attempts before a new one is opened). A `Connection: close` header does not
//! help either: it closes the connection *after* the request, it does not pick a fresh one for
//! it.
//!
//! This module makes the connection fresh where the client keeps its connections:
//!
//! * [`FreshConnection`] (pooled, feature `hyper-util`) poisons connections inside hyper-util's
//!   pool: the one that failed, its idle siblings when the peer seems to have dropped idle
//!   connections, any that outlived the policy's limits, and, before a request that is not safe
//!   to repeat, those the evidence says are likely stale;
//! * [`Reconnect`] owns a single connection made by a `MakeService` and replaces it;
//! * [`Detour`] sends the attempt to a second client that never reuses connections, for clients
//!   whose pool cannot be reached (reqwest).
//!
//! The same [`ConnectionPolicy`](policy::ConnectionPolicy) drives all three: which failures
//! condemn a connection, and the limits on a connection's age, idle time and requests.
//! hyper-util's pool has its own `pool_idle_timeout`, which bounds how long a connection sits
//! idle; what it lacks is a maximum age and a maximum number of requests per connection
//! (hyper#2236, reqwest#3033), the retirement of the idle siblings of a stale connection, and
//! learning a peer's idle timeout: that is what the pooled strategy adds.
//!
//! # Cost
//!
//! The pooled strategy captures each request's connection (`capture_connection`: a small
//! allocation per request) and takes a mutex twice per request to keep its registry (three
//! times for a request that fails without condemning its connection, or whose future is
//! dropped before it ends). It holds no lock across an await and spawns no task. With a
//! [`diagnose`](crate::diagnose) collector attached ([`FreshConnectionLayer::diagnose`]), a
//! request costs a few relaxed atomic operations more, and a second look-up in the registry
//! while its lock is held; no allocation.
//!
//! The detour strategy keeps a record of each host for
//! [`protect_unrepeatable`](policy::ConnectionPolicy::protect_unrepeatable) (on by default): a
//! mutex taken twice per request that goes through the primary, a scan of the hosts under it,
//! and a copy of the request's scheme and authority, which shares their bytes (no allocation
//! once the host is known). With the protection off it takes no lock.

mod detour;
mod host;
mod host_map;
// Learning a limit and testing it are the pooled strategy's (feature `hyper-util`).
#[cfg_attr(not(feature = "hyper-util"), allow(dead_code))]
mod idle_evidence;
mod layer;
pub mod policy;
#[cfg(feature = "hyper-util")]
mod pooled;
mod reconnect;

pub use self::detour::{Detour, DetourFuture};
pub use self::layer::{DetourTo, FreshConnectionLayer, Pooled, ReconnectTo};
#[cfg(feature = "hyper-util")]
pub use self::pooled::{FreshConnection, ResponseFuture};
pub use self::reconnect::{Reconnect, ReconnectFuture};
