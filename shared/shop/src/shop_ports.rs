//! The ports a job of the store is built from, on AWS or embedded: one value, and one
//! [`ShopJob::build`](crate::declaration::ShopJob::build) per job that asks it for what the job
//! uses. The environment's names (`SHOP_STORES_TABLE`, `SHOP_SECRET_PREFIX`, ...) are written
//! here once, and the embedded backend answers the same questions from its SQLite file.
//!
//! Invariant: asking builds an adapter and reads a setting, nothing more: no request leaves
//! the process, so a function starts (and a missing setting is reported) before any I/O, and a
//! job is asked only for what it declared (its role on AWS grants nothing else).

use std::{collections::BTreeMap, sync::Arc};

use jobkit::{IntegrationError, lambda::SdkConfig, ports::StateStore};

use crate::{
    CartRepository, CatalogRepository, Credentials, CustomerRepository, History, SmsSender, StoreRepository,
    aws::{
        DynamoCarts, DynamoCatalog, DynamoCustomers, DynamoHistory, DynamoStores, SecretsManagerCredentials,
        SnsSms,
    },
    declaration::Table,
    shopify::{ShopifyClient, ShopifyConfig},
    square::{SquareClient, SquareConfig},
};

/// A job could not be built from its ports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting the job needs is missing or unreadable.
    #[error("setting {name} {problem}")]
    Setting {
        /// The setting (the function's environment variable).
        name: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An outside system's client could not be built.
    #[error(transparent)]
    Client(#[from] IntegrationError),
}

/// The ports of the embedded backend (`jobctl dev`, tests): the shop's data in one SQLite file,
/// jobkit's state store, texts to files, the outside systems' addresses, and the settings a
/// function would read from its environment.
#[cfg(feature = "embedded")]
#[derive(Debug, Clone)]
pub struct EmbeddedPorts {
    /// The shop's data (stores, catalog, customers, carts, history, tokens).
    pub shop: crate::embedded::ShopDb,
    /// jobkit's state store (what `clean_database` purges).
    pub job_state: Arc<dyn StateStore>,
    /// Where texts go.
    pub sms: Arc<dyn SmsSender>,
    /// Shopify (the local sandbox, or the real one).
    pub shopify: ShopifyConfig,
    /// The POS.
    pub square: SquareConfig,
    /// Settings by their environment names (`CART_IDLE_AFTER_MINUTES`); a setting not given
    /// takes the job's default, as an unset variable does on AWS.
    pub settings: BTreeMap<&'static str, String>,
}

#[derive(Debug, Clone)]
enum Backend {
    // Boxed: the SDK's configuration is three times the embedded ports, and both are built once.
    Aws(Box<SdkConfig>),
    #[cfg(feature = "embedded")]
    Embedded(EmbeddedPorts),
}

/// What a job of the store is built from. See the module's documentation.
#[derive(Debug, Clone)]
pub struct ShopPorts {
    backend: Backend,
}

impl ShopPorts {
    /// The ports of a function on AWS: DynamoDB, Secrets Manager and SNS through `sdk`, table
    /// names and settings from the environment the template sets.
    pub fn aws(sdk: SdkConfig) -> Self {
        Self { backend: Backend::Aws(Box::new(sdk)) }
    }

    /// The ports of the embedded backend.
    #[cfg(feature = "embedded")]
    pub fn embedded(ports: EmbeddedPorts) -> Self {
        Self { backend: Backend::Embedded(ports) }
    }

    /// A setting, `None` when it is not given.
    pub fn setting(&self, name: &'static str) -> Option<String> {
        let value = match &self.backend {
            Backend::Aws(_) => std::env::var(name).ok(),
            #[cfg(feature = "embedded")]
            Backend::Embedded(ports) => ports.settings.get(name).cloned(),
        };
        value.filter(|v| !v.trim().is_empty())
    }

    /// A setting the job cannot run without.
    ///
    /// # Errors
    /// [`BuildError::Setting`] when it is not given.
    pub fn required_setting(&self, name: &'static str) -> Result<String, BuildError> {
        self.setting(name).ok_or(BuildError::Setting { name, problem: "is not set" })
    }

    /// A positive whole number, `default` when it is not given.
    ///
    /// # Errors
    /// [`BuildError::Setting`] for anything but a positive whole number.
    pub fn positive_setting(&self, name: &'static str, default: u32) -> Result<u32, BuildError> {
        let Some(raw) = self.setting(name) else {
            return Ok(default);
        };
        raw.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(BuildError::Setting { name, problem: "is not a positive whole number" })
    }

    /// The name of `table`, from its setting (`SHOP_STORES_TABLE`).
    fn table(&self, table: Table) -> Result<String, BuildError> {
        self.required_setting(table.setting())
    }

    /// The stores.
    ///
    /// # Errors
    /// Its table's setting missing.
    pub fn stores(&self) -> Result<Arc<dyn StoreRepository>, BuildError> {
        match &self.backend {
            Backend::Aws(sdk) => Ok(Arc::new(DynamoStores::new(
                aws_sdk_dynamodb::Client::new(sdk),
                self.table(Table::Stores)?,
            ))),
            #[cfg(feature = "embedded")]
            Backend::Embedded(ports) => Ok(Arc::new(ports.shop.clone())),
        }
    }

    /// The catalog.
    ///
    /// # Errors
    /// Its table's setting missing.
    pub fn catalog(&self) -> Result<Arc<dyn CatalogRepository>, BuildError> {
        match &self.backend {
            Backend::Aws(sdk) => Ok(Arc::new(DynamoCatalog::new(
                aws_sdk_dynamodb::Client::new(sdk),
                self.table(Table::Products)?,
            ))),
            #[cfg(feature = "embedded")]
            Backend::Embedded(ports) => Ok(Arc::new(ports.shop.clone())),
        }
    }

    /// The POS customers.
    ///
    /// # Errors
    /// Its table's setting missing.
    pub fn customers(&self) -> Result<Arc<dyn CustomerRepository>, BuildError> {
        match &self.backend {
            Backend::Aws(sdk) => Ok(Arc::new(DynamoCustomers::new(
                aws_sdk_dynamodb::Client::new(sdk),
                self.table(Table::Customers)?,
            ))),
            #[cfg(feature = "embedded")]
            Backend::Embedded(ports) => Ok(Arc::new(ports.shop.clone())),
        }
    }

    /// The carts, with the stock their abandon gives back.
    ///
    /// # Errors
    /// The carts' or the inventory's table setting missing.
    pub fn carts(&self) -> Result<Arc<dyn CartRepository>, BuildError> {
        match &self.backend {
            Backend::Aws(sdk) => {
                let (carts, inventory) = (self.table(Table::Carts)?, self.table(Table::Inventory)?);
                Ok(Arc::new(DynamoCarts::new(aws_sdk_dynamodb::Client::new(sdk), carts, inventory)))
            }
            #[cfg(feature = "embedded")]
            Backend::Embedded(ports) => Ok(Arc::new(ports.shop.clone())),
        }
    }

    /// The history (sync runs, audit entries, temporary records).
    ///
    /// # Errors
    /// Its table's setting missing.
    pub fn history(&self) -> Result<Arc<dyn History>, BuildError> {
        match &self.backend {
            Backend::Aws(sdk) => Ok(Arc::new(DynamoHistory::new(
                aws_sdk_dynamodb::Client::new(sdk),
                self.table(Table::History)?,
            ))),
            #[cfg(feature = "embedded")]
            Backend::Embedded(ports) => Ok(Arc::new(ports.shop.clone())),
        }
    }

    /// The stores' API tokens: one Secrets Manager secret per store under `SHOP_SECRET_PREFIX`.
    ///
    /// # Errors
    /// The prefix's setting missing.
    pub fn credentials(&self) -> Result<Arc<dyn Credentials>, BuildError> {
        match &self.backend {
            Backend::Aws(sdk) => {
                let prefix = self.required_setting("SHOP_SECRET_PREFIX")?;
                Ok(Arc::new(SecretsManagerCredentials::new(aws_sdk_secretsmanager::Client::new(sdk), prefix)))
            }
            #[cfg(feature = "embedded")]
            Backend::Embedded(ports) => Ok(Arc::new(ports.shop.clone())),
        }
    }

    /// Texts to phone numbers: SNS, or files in the embedded outbox.
    pub fn sms(&self) -> Arc<dyn SmsSender> {
        match &self.backend {
            Backend::Aws(sdk) => Arc::new(SnsSms::new(aws_sdk_sns::Client::new(sdk))),
            #[cfg(feature = "embedded")]
            Backend::Embedded(ports) => ports.sms.clone(),
        }
    }

    /// jobkit's state store (`JOBKIT_STATE_TABLE`), for a job that looks after it.
    ///
    /// # Errors
    /// The table's setting missing.
    pub fn job_state(&self) -> Result<Arc<dyn StateStore>, BuildError> {
        match &self.backend {
            Backend::Aws(sdk) => {
                let table = self.required_setting("JOBKIT_STATE_TABLE")?;
                Ok(Arc::new(jobkit::aws::DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table)))
            }
            #[cfg(feature = "embedded")]
            Backend::Embedded(ports) => Ok(ports.job_state.clone()),
        }
    }

    /// Shopify's Admin API client (`SHOPIFY_BASE_URL` points it at a sandbox).
    ///
    /// # Errors
    /// An HTTP client that cannot be built.
    pub fn shopify(&self) -> Result<ShopifyClient, BuildError> {
        let config = match &self.backend {
            Backend::Aws(_) => ShopifyConfig::from_env(),
            #[cfg(feature = "embedded")]
            Backend::Embedded(ports) => ports.shopify.clone(),
        };
        Ok(ShopifyClient::new(config)?)
    }

    /// The POS's client (`SQUARE_BASE_URL`, default Square's production).
    ///
    /// # Errors
    /// An HTTP client that cannot be built.
    pub fn square(&self) -> Result<SquareClient, BuildError> {
        let config = match &self.backend {
            Backend::Aws(_) => {
                let mut config = SquareConfig::default();
                if let Some(base) = self.setting("SQUARE_BASE_URL") {
                    config.base_url = base;
                }
                config
            }
            #[cfg(feature = "embedded")]
            Backend::Embedded(ports) => ports.square.clone(),
        };
        Ok(SquareClient::new(config)?)
    }
}

/// Runs `J` as a Lambda function: built on its AWS ports, then jobkit's runner. A job's
/// `main.rs` is this one call.
///
/// # Errors
/// A job that cannot be built (a missing setting), a setup error, or the runtime's own failure.
pub async fn run_on_lambda<J: crate::declaration::ShopJob>() -> Result<(), jobkit::lambda::Error> {
    jobkit::lambda::run_with(|sdk| async move { J::build(&ShopPorts::aws(sdk)) }).await
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;

    fn embedded(settings: &[(&'static str, &str)]) -> ShopPorts {
        let db = crate::embedded::ShopDb::in_memory().unwrap();
        let state = jobkit::embedded::EmbeddedDb::in_memory().unwrap();
        ShopPorts::embedded(EmbeddedPorts {
            shop: db,
            job_state: Arc::new(jobkit::embedded::EmbeddedStore::new(state)),
            sms: Arc::new(crate::sms_outbox::SmsOutbox::new(std::env::temp_dir().join("shop-ports-test"))),
            shopify: ShopifyConfig::default(),
            square: SquareConfig::default(),
            settings: settings.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        })
    }

    #[test]
    fn a_setting_not_given_takes_the_default_and_a_bad_one_is_named() {
        let ports = embedded(&[("CART_IDLE_AFTER_MINUTES", "0"), ("RETENTION_SYNC_RUN_DAYS", " 30 ")]);
        assert_eq!(ports.positive_setting("RETENTION_SYNC_RUN_DAYS", 7).unwrap(), 30);
        assert_eq!(ports.positive_setting("RETENTION_AUDIT_LOG_DAYS", 365).unwrap(), 365);
        let bad = ports.positive_setting("CART_IDLE_AFTER_MINUTES", 120).unwrap_err();
        assert_eq!(bad.to_string(), "setting CART_IDLE_AFTER_MINUTES is not a positive whole number");
        let missing = ports.required_setting("SHOPIFY_WEBHOOK_URL").unwrap_err();
        assert_eq!(missing.to_string(), "setting SHOPIFY_WEBHOOK_URL is not set");
    }
}
