//! The collector's bounds (hosts, failures kept), the generic layer, and the happy path's
//! cost in allocations.
