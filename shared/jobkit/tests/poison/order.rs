//! The job the poison corpus is written against, shared by the poison test and the fuzzer so
//! that both judge messages by the same arguments.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use jobkit::{Job, JobContext, JobError};
use serde::{Deserialize, Serialize};

/// An order's arguments: unknown fields, a missing `order_id` or `quantity`, or a wrong type
/// make a message poison.
#[derive(Debug, Serialize, Deserialize)]
pub struct OrderArgs {
    pub order_id: String,
    pub quantity: u32,
    #[serde(default)]
    pub note: Option<String>,
}

/// Counts its runs per order id.
#[derive(Clone, Default)]
pub struct Order {
    pub runs: Arc<Mutex<BTreeMap<String, u32>>>,
}

impl Job for Order {
    type Args = OrderArgs;
    const NAME: &'static str = "order";

    async fn perform(&self, args: OrderArgs, _ctx: &mut JobContext) -> Result<(), JobError> {
        *self.runs.lock().unwrap_or_else(|p| p.into_inner()).entry(args.order_id).or_default() += 1;
        Ok(())
    }
}
