//! The peer of the tests that keep requests not safe to repeat off stale connections, for the
//! pooled and the detour strategy alike.

use std::time::Duration;

use tower_reset::lab::{Idle, Lab};

/// A lab that silently forgets connections idle over 1.5 s, as a NAT does: the next request on
/// such a connection is reset as it arrives, unread.
pub(crate) async fn forgetful() -> Lab {
    Lab::builder()
        .idle_timeout(Duration::from_millis(1500), Idle::Forget)
        .start()
        .await
        .expect("the lab starts")
}
