//! The Postgres wire protocol's view of the front door: logins checked as
//! tokens, queries admitted like every other language's, statements
//! planned by the tenant's SQL engine. The protocol itself lives with the
//! rest of the Postgres code in `strata_query::postgres`.

use std::sync::Arc;

use async_trait::async_trait;
use strata_query::postgres::wire::{Refusal, Service};
use strata_query::{Planned, QueryError};
use strata_types::TenantId;
use tokio::net::TcpListener;

use crate::AppState;
use crate::auth::Role;
use crate::error::{ApiError, Shape};

struct FrontDoor(Arc<AppState>);

fn refusal(e: ApiError) -> Refusal {
    Refusal {
        kind: e.kind,
        message: e.message,
    }
}

#[async_trait]
impl Service for FrontDoor {
    fn checks_tokens(&self) -> bool {
        self.0.auth.enabled()
    }

    fn authorize(&self, token: &[u8], tenant: &TenantId) -> Result<(), Refusal> {
        self.0
            .auth
            .authorize_login(token, tenant, Role::Read, Shape::PlainText)
            .map_err(refusal)
    }

    async fn admit(&self, tenant: &TenantId) -> Result<Box<dyn Send + Sync>, Refusal> {
        self.0
            .admit(tenant, "postgres", Shape::PlainText)
            .await
            .map(|a| Box::new(a) as Box<dyn Send + Sync>)
            .map_err(refusal)
    }

    async fn plan(&self, tenant: &TenantId, sql: &str) -> Result<Planned, QueryError> {
        self.0.query.plan(tenant, sql, "postgres").await
    }
}

/// Serves the Postgres wire protocol on `listener` until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    strata_query::postgres::wire::serve(listener, Arc::new(FrontDoor(state)), stop).await;
}
