//! The access log's pure logic, no I/O: the operation table, events and their leaf encoding,
//! signed checkpoints, and the verifier.

mod checkpoint;
mod events;
mod operations;
pub mod stats;
mod verifier;

pub use checkpoint::{parse_checkpoints, Checkpoint, PublicKeys};
pub use events::{
    format_time, write_time, AuditEvent, LoggedAction, LoggedEvent, Outcome, OPERATOR_ROLE,
};
pub use operations::{
    actions, operation, protected_routes, Operation, PERSONAL_DATA_PURGE, REFERRAL_EXPIRE,
    WEBHOOK_DELIVERED,
};
pub use verifier::{
    compare_outside, verify_export, verify_export_against_outside, Finding, FindingKind,
    MissingRow, OutsideComparison, RangeEnd, RangeStart, Report, Verifier, LATE_GRACE,
};
