//! Zone content (`ZoneData`, from the compiler) and the immutable compiled zone the DNS handler
//! answers from.
pub mod data;
pub mod transfer;
pub use data::{RRsets, RecordSet, SoaData, ZoneData};
