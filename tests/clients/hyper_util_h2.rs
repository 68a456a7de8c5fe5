//! hyper-util's legacy `Client` speaking HTTP/2 with prior knowledge (`http2_only`), under the
//! same stack as over HTTP/1.1 (see `hyper_util_h1`). The only client of the suite, with tonic,
//! that meets `GOAWAY` and `REFUSED_STREAM`.

use crate::matrix::Client as Column;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix() {
    crate::matrix::check_client(Column::HyperUtilH2).await;
}
