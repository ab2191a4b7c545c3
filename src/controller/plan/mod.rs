//! Decide: pure functions from what is known (the spec, the status, what SiteWise reports) to
//! the next thing to do. No IO happens here; `apply` and `cleanup` observe, ask, act, and ask
//! again. [`delete`] plans a deletion step by step; [`apply`] plans the lifecycle of a live
//! resource: which asset it is, whether it owns it, what to change, where to link it.

pub mod apply;
pub mod delete;
pub mod sweep;

pub use delete::*;
