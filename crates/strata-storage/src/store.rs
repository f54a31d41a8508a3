//! Object stores: local filesystem by default; S3 (and S3-compatible
//! servers), GCS and Azure through `object_store`.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientConfigKey, ClientOptions, ObjectStore, RetryConfig};
use serde::Deserialize;
use url::Url;

use crate::StorageError;

/// Where tables live. `url` is `file:///abs/dir`, `s3://bucket/prefix`,
/// `gs://bucket/prefix` or `az://container/prefix`; unset means
/// `<data-dir>/objects`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectStoreConfig {
    pub url: Option<String>,
    /// `object_store` options for the store kind, e.g. `aws_endpoint`,
    /// `aws_region`, `aws_access_key_id`, `aws_secret_access_key`,
    /// `aws_allow_http`, `aws_virtual_hosted_style_request`,
    /// `google_service_account`, `azure_storage_account_key`. The usual
    /// `AWS_*`, `GOOGLE_*` and `AZURE_*` environment variables are read too.
    pub options: BTreeMap<String, String>,
    /// PEM file of extra root certificates (a private CA in front of an
    /// S3-compatible server).
    pub ca_file: Option<PathBuf>,
    /// Retries of a failed request (transient errors only), with backoff.
    pub max_retries: usize,
    /// Give up retrying one request after this long.
    #[serde(with = "humantime_serde_compat")]
    pub retry_timeout: Duration,
}

impl Default for ObjectStoreConfig {
    fn default() -> Self {
        Self {
            url: None,
            options: BTreeMap::new(),
            ca_file: None,
            max_retries: 10,
            retry_timeout: Duration::from_secs(180),
        }
    }
}

/// Serde for durations written as `"30s"`, `"5m"`.
pub mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }

    /// An optional duration: absent or `"forever"` is `None`.
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer};

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            let s = String::deserialize(d)?;
            if s == "forever" {
                return Ok(None);
            }
            humantime::parse_duration(&s)
                .map(Some)
                .map_err(serde::de::Error::custom)
        }
    }
}

/// An opened store: the client, rooted where Delta's URLs resolve (the
/// filesystem root or the bucket), and the prefix tables live under.
#[derive(Debug, Clone)]
pub struct ObjectStoreHandle {
    store: Arc<dyn ObjectStore>,
    /// URL of the base, with a trailing `/`.
    url: Url,
    base: Path,
}

impl ObjectStoreHandle {
    /// Opens the configured store; without a URL, `<data_dir>/objects`.
    pub fn open(config: &ObjectStoreConfig, data_dir: &FsPath) -> Result<Self, StorageError> {
        let url = match &config.url {
            Some(u) => Url::parse(u).map_err(|e| StorageError::Config {
                message: format!("storage url {u:?}: {e}"),
            })?,
            None => local_url(&data_dir.join("objects"))?,
        };
        Self::open_url(url, config)
    }

    pub fn open_url(mut url: Url, config: &ObjectStoreConfig) -> Result<Self, StorageError> {
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(15),
                base: 2.0,
            },
            max_retries: config.max_retries,
            retry_timeout: config.retry_timeout,
        };
        let mut client = ClientOptions::new();
        if let Some(ca) = &config.ca_file {
            let pem = std::fs::read(ca).map_err(|e| StorageError::Config {
                message: format!("reading ca_file {}: {e}", ca.display()),
            })?;
            for cert in object_store::Certificate::from_pem_bundle(&pem)? {
                client = client.with_root_certificate(cert);
            }
        }
        let bad_option = |k: &str| StorageError::Config {
            message: format!("unknown option {k:?} for a {} store", url.scheme()),
        };
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "file" => {
                let dir = url.to_file_path().map_err(|()| StorageError::Config {
                    message: format!("{url} is not a local path"),
                })?;
                std::fs::create_dir_all(&dir).map_err(|e| StorageError::Config {
                    message: format!("creating {}: {e}", dir.display()),
                })?;
                Arc::new(LocalFileSystem::new())
            }
            "s3" | "s3a" => {
                // Client options first: `options` may refine them
                // (`allow_http`, timeouts), and a later call would replace them.
                let client = client_env(client, "AWS_", |k: AmazonS3ConfigKey| match k {
                    AmazonS3ConfigKey::Client(c) => Some(c),
                    _ => None,
                });
                let mut b = AmazonS3Builder::from_env()
                    .with_url(url.as_str())
                    .with_client_options(client)
                    .with_retry(retry)
                    // Commits rely on create-if-absent; S3 and the common
                    // S3-compatible servers honour If-None-Match.
                    .with_conditional_put(S3ConditionalPut::ETagMatch);
                for (k, v) in &config.options {
                    let key: AmazonS3ConfigKey = k.parse().map_err(|_| bad_option(k))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build()?)
            }
            "gs" => {
                let client = client_env(client, "GOOGLE_", |k: GoogleConfigKey| match k {
                    GoogleConfigKey::Client(c) => Some(c),
                    _ => None,
                });
                let mut b = GoogleCloudStorageBuilder::from_env()
                    .with_url(url.as_str())
                    .with_client_options(client)
                    .with_retry(retry);
                for (k, v) in &config.options {
                    let key: GoogleConfigKey = k.parse().map_err(|_| bad_option(k))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build()?)
            }
            "az" | "abfs" | "abfss" | "azure" => {
                let client = client_env(client, "AZURE_", |k: AzureConfigKey| match k {
                    AzureConfigKey::Client(c) => Some(c),
                    _ => None,
                });
                let mut b = MicrosoftAzureBuilder::from_env()
                    .with_url(url.as_str())
                    .with_client_options(client)
                    .with_retry(retry);
                for (k, v) in &config.options {
                    let key: AzureConfigKey = k.parse().map_err(|_| bad_option(k))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build()?)
            }
            other => {
                return Err(StorageError::Config {
                    message: format!(
                        "storage url scheme {other:?} is not supported (file, s3, gs, az)"
                    ),
                });
            }
        };
        let base = Path::from_url_path(url.path())?;
        Ok(Self { store, url, base })
    }

    /// A store in memory: for tests of the stages above.
    pub fn in_memory() -> Result<Self, StorageError> {
        let url = Url::parse("memory:///").map_err(|e| StorageError::Config {
            message: format!("memory url: {e}"),
        })?;
        Self::from_parts(Arc::new(object_store::memory::InMemory::new()), url)
    }

    /// For tests: a store over any `ObjectStore` (rooted at the URL's root).
    pub fn from_parts(store: Arc<dyn ObjectStore>, url: Url) -> Result<Self, StorageError> {
        let base = Path::from_url_path(url.path())?;
        Ok(Self { store, url, base })
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The base prefix, from the store's root.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// `relative` (a `/`-separated key under the base) from the store root.
    pub fn path(&self, relative: &str) -> Path {
        join_relative(&self.base, relative)
    }

    /// URL of `relative` under the base, with a trailing `/`.
    pub fn url_of(&self, relative: &str) -> Result<Url, StorageError> {
        let joined = format!("{}/", relative.trim_end_matches('/'));
        self.url.join(&joined).map_err(|e| StorageError::Config {
            message: format!("joining {relative:?} to {}: {e}", self.url),
        })
    }
}

/// The HTTP client settings among the store kind's environment variables
/// (`AWS_ALLOW_HTTP`, `AWS_PROXY_URL`, `GOOGLE_TIMEOUT`, ...). `from_env`
/// reads them into the builder's client options, which the
/// `with_client_options` that adds our CA certificates then replaces: they
/// are applied to those options here instead, as `from_env` reads them.
fn client_env<K: std::str::FromStr>(
    mut client: ClientOptions,
    prefix: &str,
    as_client: impl Fn(K) -> Option<ClientConfigKey>,
) -> ClientOptions {
    for (key, value) in std::env::vars() {
        if !key.starts_with(prefix) {
            continue;
        }
        if let Some(c) = key
            .to_ascii_lowercase()
            .parse::<K>()
            .ok()
            .and_then(&as_client)
        {
            client = client.with_config(c, value);
        }
    }
    client
}

fn local_url(dir: &FsPath) -> Result<Url, StorageError> {
    std::fs::create_dir_all(dir).map_err(|e| StorageError::Config {
        message: format!("creating {}: {e}", dir.display()),
    })?;
    let abs = dir.canonicalize().map_err(|e| StorageError::Config {
        message: format!("resolving {}: {e}", dir.display()),
    })?;
    Url::from_directory_path(&abs).map_err(|()| StorageError::Config {
        message: format!("{} is not an absolute path", abs.display()),
    })
}

/// `base` joined with a `/`-separated relative key.
pub(crate) fn join_relative(base: &Path, relative: &str) -> Path {
    relative
        .split('/')
        .filter(|p| !p.is_empty())
        .fold(base.clone(), |p, part| p.join(part))
}
