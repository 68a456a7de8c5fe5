//! The clients suite: every client this crate supports, each under its full recommended stack
//! over real loopback sockets, against every fault of the reset lab (`tower_reset::lab`).
//!
//! * `matrix`: the fault matrix driver: every fault × {GET, PUT, POST, POST + key} × each
//!   client, each cell against a lab of its own, its outcome compared with an expectation
//!   computed from the crate's rules, and the table of `docs/fault-matrix.md` checked against
//!   them;
//! * one module per client, each with its `fault_matrix` test: `hyper_util_h1`,
//!   `hyper_util_h2`, `tonic_channel`, `reqwest_client`, `reqwest_middleware_client`,
//!   `axum_app`;
//! * `soak`: thousands of mixed requests at once with 5% random faults.
//!
//! Every lab's counts are checked for a `POST` without a key executed twice, and each test
//! also asserts the tally of the whole run so far (`matrix::LEDGER`), which it prints.
//!
//! ```sh
//! cargo test --all-features --test clients                     # the matrix and the short soak
//! cargo test --all-features --test clients -- --ignored        # the long soak
//! TOWER_RESET_BLESS=1 cargo test --all-features --test clients # rewrite docs/fault-matrix.md
//! TOWER_RESET_MATRIX_TRACE=1 cargo test --all-features --test clients -- --nocapture
//! ```

// The generated tonic client, and the messages it names as `crate::echo::…`.
#[path = "../../examples/tonic_client/echo.rs"]
mod echo;

mod axum_app;
#[path = "../support/counting_connector.rs"]
mod counting_connector;
mod hyper_util_h1;
mod hyper_util_h2;
mod matrix;
mod reqwest_client;
mod reqwest_middleware_client;
mod ride_out;
mod soak;
mod support;
mod tonic_channel;
