//! Object feeds: where objects come from (manifest files; the apiserver in cluster mode).
pub mod files;
pub mod index;
pub mod kube;
pub mod yaml;
