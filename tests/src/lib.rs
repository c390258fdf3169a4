//! System-test support: a Lambda Runtime API stub that drives built function binaries, and
//! helpers to reach the moto server the test script starts.

pub mod function;
pub mod lambda;
pub mod moto;
pub mod runtime_api;
pub mod sqs;
pub mod stack;
pub mod tables;
