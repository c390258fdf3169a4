//! System-test support: the stack as deployed on moto (`template.yaml` through the SAM
//! translator and moto's CloudFormation), a local Lambda that runs built function binaries under
//! a Runtime API stub on their queues, and helpers to reach the moto server the test script
//! starts.

pub mod cost;
pub mod example_stack;
pub mod function;
pub mod lambda;
pub mod moto;
pub mod runtime_api;
pub mod scheduler;
pub mod sqs;
pub mod stack;
pub mod tables;
