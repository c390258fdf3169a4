//! The ports a job of the store is built from, on AWS or embedded: one value, and one
//! [`ShopJob::build`](crate::declaration::ShopJob::build) per job that asks it for what the job
//! uses. The environment's names (`SHOP_STORES_TABLE`, `SHOP_SECRET_PREFIX`, ...) are written
//! here once, and the embedded backend answers the same questions from its SQLite file.
//!
//! Invariant: asking builds an adapter and reads a setting, nothing more: no request leaves
//! the process, so a function starts (and a missing setting is reported) before any I/O, and a
//! job is asked only for what it declared (its role on AWS grants nothing else).
//!
//! Invariant: on AWS a client of Shopify or Square reaches it over `https` only. A base URL
//! (`SHOPIFY_BASE_URL`, `SQUARE_BASE_URL`) that is not `https://` refuses to build, so the
//! function fails at start naming the setting, unless `SHOP_SANDBOX=true` says the deployment is
//! a sandbox (the stack's `Sandbox` parameter; the system tests' loopback sandboxes are `http`).
//! The embedded backend (`jobctl dev`, tests) may use `http`: it runs on the operator's machine
//! against local sandboxes by construction.

#[cfg(any(test, feature = "embedded"))]
use std::collections::BTreeMap;
use std::sync::Arc;

use jobkit::{IntegrationError, lambda::SdkConfig, ports::StateStore};

use crate::{
    CartRepository, CatalogRepository, Credentials, CustomerRepository, History, SmsSender, StoreRepository,
    aws::{
        DynamoCarts, DynamoCatalog, DynamoCustomers, DynamoHistory, DynamoStores, SealedCredentials,
        SealedTokenCache, SecretsManagerCredentials, SnsSms,
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
    /// A base URL that is not `https://` outside a sandbox: the store's token would travel in
    /// clear text.
    #[error(
        "setting {name} is {url:?}, not an https:// URL: tokens go to it, so only https is allowed \
         (http only where {SANDBOX_SETTING}=true says the deployment is a sandbox)"
    )]
    NotHttps {
        /// The setting (`SHOPIFY_BASE_URL`).
        name: &'static str,
        /// Its value (an address, never a secret).
        url: String,
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

/// The setting that says a deployment is a sandbox (`true`; default `false`): only then may
/// [`ShopPorts::shopify`] and [`ShopPorts::square`] reach a base URL that is not `https://`.
/// The template gives it, from the stack's `Sandbox` parameter, to every function that reads a
/// platform's tokens.
pub const SANDBOX_SETTING: &str = "SHOP_SANDBOX";

/// Where an AWS function's settings come from.
#[derive(Debug, Clone)]
enum Settings {
    /// Its environment (what the template sets).
    Environment,
    /// Given values (tests of the settings' rules, which must not share the process's
    /// environment with tests that run beside them).
    #[cfg(test)]
    Given(BTreeMap<&'static str, String>),
}

#[derive(Debug, Clone)]
enum Backend {
    // Boxed: the SDK's configuration is three times the embedded ports, and both are built once.
    Aws(Box<AwsPorts>, Settings),
    #[cfg(feature = "embedded")]
    Embedded(EmbeddedPorts),
}

/// The AWS side: the SDK's configuration, and the one DynamoDB client every repository and the
/// state store share (as one client, one connection pool: a job's tables are reached over the
/// same connections, as they were when each job built its own client once).
/// The stores repository and the credentials share `sealed`: the sealed tokens of the store
/// records the job read.
#[derive(Debug, Clone)]
struct AwsPorts {
    sdk: SdkConfig,
    dynamo: aws_sdk_dynamodb::Client,
    sealed: Arc<SealedTokenCache>,
}

impl AwsPorts {
    fn new(sdk: SdkConfig) -> Box<Self> {
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        Box::new(Self { sdk, dynamo, sealed: Arc::default() })
    }
}

/// The KMS key the stores' tokens are sealed under on their records (`shop::aws::sealed_tokens`);
/// without it a job reads its tokens from Secrets Manager on every run.
pub const TOKEN_KEY_SETTING: &str = "SHOP_TOKEN_KEY";

/// What a job of the store is built from. See the module's documentation.
#[derive(Debug, Clone)]
pub struct ShopPorts {
    backend: Backend,
}

impl ShopPorts {
    /// The ports of a function on AWS: DynamoDB, Secrets Manager and SNS through `sdk`, table
    /// names and settings from the environment the template sets.
    pub fn aws(sdk: SdkConfig) -> Self {
        Self { backend: Backend::Aws(AwsPorts::new(sdk), Settings::Environment) }
    }

    /// [`Self::aws`] with `settings` instead of the environment's.
    #[cfg(test)]
    fn aws_with(sdk: SdkConfig, settings: &[(&'static str, &str)]) -> Self {
        let settings = settings.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        Self { backend: Backend::Aws(AwsPorts::new(sdk), Settings::Given(settings)) }
    }

    /// The ports of the embedded backend.
    #[cfg(feature = "embedded")]
    pub fn embedded(ports: EmbeddedPorts) -> Self {
        Self { backend: Backend::Embedded(ports) }
    }

    /// A setting, `None` when it is not given.
    pub fn setting(&self, name: &'static str) -> Option<String> {
        let value = match &self.backend {
            Backend::Aws(_, Settings::Environment) => std::env::var(name).ok(),
            #[cfg(test)]
            Backend::Aws(_, Settings::Given(settings)) => settings.get(name).cloned(),
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
            Backend::Aws(aws, _) => Ok(Arc::new(
                DynamoStores::new(aws.dynamo.clone(), self.table(Table::Stores)?)
                    .noting_sealed_tokens(aws.sealed.clone()),
            )),
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
            Backend::Aws(aws, _) => {
                Ok(Arc::new(DynamoCatalog::new(aws.dynamo.clone(), self.table(Table::Products)?)))
            }
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
            Backend::Aws(aws, _) => {
                Ok(Arc::new(DynamoCustomers::new(aws.dynamo.clone(), self.table(Table::Customers)?)))
            }
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
            Backend::Aws(aws, _) => {
                let (carts, inventory) = (self.table(Table::Carts)?, self.table(Table::Inventory)?);
                Ok(Arc::new(DynamoCarts::new(aws.dynamo.clone(), carts, inventory)))
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
            Backend::Aws(aws, _) => {
                Ok(Arc::new(DynamoHistory::new(aws.dynamo.clone(), self.table(Table::History)?)))
            }
            #[cfg(feature = "embedded")]
            Backend::Embedded(ports) => Ok(Arc::new(ports.shop.clone())),
        }
    }

    /// The stores' API tokens: one Secrets Manager secret per store and platform under
    /// `SHOP_SECRET_PREFIX` (`<prefix>/<store id>/shopify`); the job's role may read the secrets
    /// of the platforms it declared only. With `SHOP_TOKEN_KEY` (a KMS key), sealed on the
    /// store records under it, Secrets Manager read only to seal a token (or again after a 401).
    ///
    /// # Errors
    /// The prefix's setting missing, or the stores' table's when the tokens are sealed.
    pub fn credentials(&self) -> Result<Arc<dyn Credentials>, BuildError> {
        match &self.backend {
            Backend::Aws(aws, _) => {
                let prefix = self.required_setting("SHOP_SECRET_PREFIX")?;
                let Some(key) = self.setting(TOKEN_KEY_SETTING) else {
                    let client = aws_sdk_secretsmanager::Client::new(&aws.sdk);
                    return Ok(Arc::new(SecretsManagerCredentials::new(client, prefix)));
                };
                Ok(Arc::new(SealedCredentials::new(
                    aws.sdk.clone(),
                    prefix,
                    key,
                    aws.dynamo.clone(),
                    self.table(Table::Stores)?,
                    aws.sealed.clone(),
                )))
            }
            #[cfg(feature = "embedded")]
            Backend::Embedded(ports) => Ok(Arc::new(ports.shop.clone())),
        }
    }

    /// Texts to phone numbers: SNS, or files in the embedded outbox.
    pub fn sms(&self) -> Arc<dyn SmsSender> {
        match &self.backend {
            Backend::Aws(aws, _) => Arc::new(SnsSms::new(aws_sdk_sns::Client::new(&aws.sdk))),
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
            Backend::Aws(aws, _) => {
                let table = self.required_setting("JOBKIT_STATE_TABLE")?;
                Ok(Arc::new(jobkit::aws::DynamoStore::new(aws.dynamo.clone(), table)))
            }
            #[cfg(feature = "embedded")]
            Backend::Embedded(ports) => Ok(ports.job_state.clone()),
        }
    }

    /// Whether the deployment says it is a sandbox ([`SANDBOX_SETTING`]).
    ///
    /// # Errors
    /// [`BuildError::Setting`] for anything but `true` or `false`.
    fn sandbox(&self) -> Result<bool, BuildError> {
        match self.setting(SANDBOX_SETTING).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => {
                Err(BuildError::Setting { name: SANDBOX_SETTING, problem: "is neither true nor false" })
            }
        }
    }

    /// The base URL setting `name`, if given: `https://`, or anything in a sandbox.
    ///
    /// # Errors
    /// [`BuildError::NotHttps`] outside a sandbox; the sandbox setting unreadable.
    fn base_url(&self, name: &'static str) -> Result<Option<String>, BuildError> {
        let Some(url) = self.setting(name) else { return Ok(None) };
        let url = url.trim().to_owned();
        let https = url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
        if !https && !self.sandbox()? {
            return Err(BuildError::NotHttps { name, url });
        }
        Ok(Some(url))
    }

    /// Shopify's Admin API client (`https://{shop}`; `SHOPIFY_BASE_URL` points it at a sandbox).
    ///
    /// # Errors
    /// A base URL that is not `https://` outside a sandbox ([`SANDBOX_SETTING`]), or an HTTP
    /// client that cannot be built.
    pub fn shopify(&self) -> Result<ShopifyClient, BuildError> {
        let config = match &self.backend {
            Backend::Aws(..) => {
                ShopifyConfig { base_url: self.base_url("SHOPIFY_BASE_URL")?, ..ShopifyConfig::default() }
            }
            #[cfg(feature = "embedded")]
            Backend::Embedded(ports) => ports.shopify.clone(),
        };
        Ok(ShopifyClient::new(config)?)
    }

    /// The POS's client (`SQUARE_BASE_URL`, default Square's production).
    ///
    /// # Errors
    /// A base URL that is not `https://` outside a sandbox ([`SANDBOX_SETTING`]), or an HTTP
    /// client that cannot be built.
    pub fn square(&self) -> Result<SquareClient, BuildError> {
        let config = match &self.backend {
            Backend::Aws(..) => {
                let mut config = SquareConfig::default();
                if let Some(base) = self.base_url("SQUARE_BASE_URL")? {
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

#[cfg(test)]
mod https_tests {
    use super::*;

    /// Building a platform's client makes no AWS client: an empty configuration does.
    fn sdk() -> SdkConfig {
        SdkConfig::builder().build()
    }

    #[test]
    fn an_http_base_url_is_refused_at_build_naming_its_setting() {
        let ports = ShopPorts::aws_with(sdk(), &[("SHOPIFY_BASE_URL", "http://127.0.0.1:9/shopify/{shop}")]);
        let refused = ports.shopify().unwrap_err();
        assert!(matches!(refused, BuildError::NotHttps { name: "SHOPIFY_BASE_URL", .. }), "{refused:?}");
        assert!(
            refused.to_string().starts_with("setting SHOPIFY_BASE_URL is \"http://127.0.0.1"),
            "{refused}"
        );
        assert!(refused.to_string().contains("SHOP_SANDBOX=true"), "{refused}");

        let ports = ShopPorts::aws_with(
            sdk(),
            &[("SQUARE_BASE_URL", "http://connect.squareup.com"), ("SHOP_SANDBOX", "false")],
        );
        let refused = ports.square().unwrap_err();
        assert!(matches!(refused, BuildError::NotHttps { name: "SQUARE_BASE_URL", .. }), "{refused:?}");
    }

    #[test]
    fn a_sandbox_may_use_http_and_https_is_always_allowed() {
        let sandbox = ShopPorts::aws_with(
            sdk(),
            &[
                ("SHOPIFY_BASE_URL", "http://127.0.0.1:9/shopify/{shop}"),
                ("SQUARE_BASE_URL", "http://127.0.0.1:9/square"),
                ("SHOP_SANDBOX", "true"),
            ],
        );
        assert!(sandbox.shopify().is_ok());
        assert!(sandbox.square().is_ok());

        let production = ShopPorts::aws_with(sdk(), &[("SQUARE_BASE_URL", "HTTPS://connect.squareup.com")]);
        assert!(production.square().is_ok());
        // No base URL: the real services, over https.
        let defaults = ShopPorts::aws_with(sdk(), &[]);
        assert!(defaults.shopify().is_ok() && defaults.square().is_ok());
    }

    #[test]
    fn a_sandbox_flag_that_is_not_true_or_false_is_named() {
        let ports = ShopPorts::aws_with(
            sdk(),
            &[("SHOPIFY_BASE_URL", "http://127.0.0.1:9/{shop}"), ("SHOP_SANDBOX", "yes")],
        );
        assert_eq!(
            ports.shopify().unwrap_err().to_string(),
            "setting SHOP_SANDBOX is neither true nor false"
        );
    }
}
