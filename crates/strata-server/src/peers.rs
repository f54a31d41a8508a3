//! Global tenant limits across the ingesters of a scale-out cluster
//! (docs/DESIGN.md, "Scale-out").
//!
//! Each ingester given `node.ingesters` (every ingester's address; its own
//! may be among them) follows `GET /api/v1/internal/live-series` of the
//! others: a WebSocket (the operator role when auth is on) that sends a
//! hello with the node's id, then every series and log stream live on it
//! for the tenants with a series or stream limit, then what becomes live
//! (or stays live: again every refresh) as writes are stored; a ping every
//! 5 s (the head stream's sending and connecting, `replication.rs`). What a peer announces is merged into the tenant's live set here,
//! so `max_series`, `max_series_per_metric` and `max_streams` count the
//! tenant's series over every ingester, each series once wherever it is
//! written. The rate limits (`ingest_rate`, `log_ingest_rate_bytes`, with
//! their bursts) are split across the ingesters this one hears from, as
//! Mimir splits its global ingestion rate across distributors.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use parking_lot::Mutex;
use strata_types::{ErrorKind, TenantId};
use tracing::{debug, info, warn};

use crate::AppState;
use crate::error::{ApiError, Shape};
use crate::live_series::{Announcement, LiveKind};
use crate::replication::{Reader, put_str};

const HELLO: u8 = 1;
const LIVE: u8 = 2;
const TOLD: u8 = 3;

use crate::replication::SILENCE;

/// One message of the stream.
#[derive(Debug, PartialEq)]
pub enum Frame {
    Hello {
        node_id: String,
    },
    Live(Announcement),
    /// Everything live at the subscription has been sent.
    Told,
}

pub fn encode_hello(node_id: &str) -> Vec<u8> {
    let mut out = vec![HELLO];
    put_str(&mut out, node_id);
    out
}

/// An announcement, its entries grouped by metric.
pub fn encode_live(a: &Announcement) -> Vec<u8> {
    let mut by_metric: HashMap<&str, Vec<(u64, i64)>> = HashMap::new();
    for (id, metric, seen_s) in &a.entries {
        by_metric.entry(metric).or_default().push((*id, *seen_s));
    }
    let mut out = Vec::with_capacity(32 + a.entries.len() * 16);
    out.push(LIVE);
    out.push(match a.kind {
        LiveKind::Series => 0,
        LiveKind::Streams => 1,
    });
    put_str(&mut out, a.tenant.as_str());
    out.extend_from_slice(&(by_metric.len() as u32).to_le_bytes());
    for (metric, entries) in by_metric {
        put_str(&mut out, metric);
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (id, seen_s) in entries {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&seen_s.to_le_bytes());
        }
    }
    out
}

pub fn decode(bytes: &[u8]) -> Result<Frame, String> {
    let mut r = Reader(bytes);
    match r.u8()? {
        TOLD if r.0.is_empty() => Ok(Frame::Told),
        HELLO => Ok(Frame::Hello {
            node_id: r.str()?.to_owned(),
        }),
        LIVE => {
            let kind = match r.u8()? {
                0 => LiveKind::Series,
                1 => LiveKind::Streams,
                k => return Err(format!("unknown live set kind {k}")),
            };
            let tenant = TenantId::try_new(r.str()?).map_err(|e| e.to_string())?;
            let mut entries = Vec::new();
            for _ in 0..r.u32()? {
                let metric: Arc<str> = Arc::from(r.str()?);
                let n = r.u32()? as usize;
                // Each entry is 16 bytes: a count past the message is a lie.
                if n > r.0.len() / 16 {
                    return Err("live series message cut short".into());
                }
                entries.reserve(n);
                for _ in 0..n {
                    let id = r.u64()?;
                    let seen_s = r.u64()? as i64;
                    entries.push((id, Arc::clone(&metric), seen_s));
                }
            }
            if !r.0.is_empty() {
                return Err("trailing bytes after a live series message".into());
            }
            Ok(Frame::Live(Announcement {
                kind,
                tenant,
                entries,
            }))
        }
        other => Err(format!("unknown live series message kind {other}")),
    }
}

/// `GET /api/v1/internal/live-series`.
pub(crate) async fn live_series(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Some(refused) =
        crate::replication::operator_refusal(&state, &headers, "the live series stream")
    {
        return refused;
    }
    let Some((rx, now)) = state.limits.subscribe_live() else {
        return ApiError::new(
            ErrorKind::NotFound,
            format!(
                "this node is a {} without peers: it shares no live series (an ingester with node.ingesters does)",
                state.config.node.role
            ),
            Shape::Json,
        )
        .into_response();
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return e.into_response(),
    };
    let node_id = state.config.node.resolved_id();
    ws.on_upgrade(move |socket| send_live(socket, node_id, now, rx))
}

async fn send_live(
    mut socket: WebSocket,
    node_id: String,
    now: Vec<Announcement>,
    mut rx: tokio::sync::broadcast::Receiver<Arc<Announcement>>,
) {
    let first = std::iter::once(encode_hello(&node_id))
        .chain(now.iter().map(encode_live))
        .chain(std::iter::once(vec![TOLD]));
    for bytes in first {
        if socket.send(Message::Binary(bytes.into())).await.is_err() {
            return;
        }
    }
    crate::replication::stream_out(
        &mut socket,
        &mut rx,
        |a: &Arc<Announcement>| Some(encode_live(a)),
        "a peer fell behind the live series stream; it subscribes again",
    )
    .await;
}

/// The peers heard from now, by node id (a peer reached at two addresses
/// counts once).
#[derive(Default)]
struct Heard(Mutex<HashMap<String, usize>>);

impl Heard {
    fn join(&self, state: &AppState, id: &str) {
        let mut m = self.0.lock();
        *m.entry(id.to_owned()).or_default() += 1;
        state.limits.set_ingesters(1 + m.len());
    }

    fn leave(&self, state: &AppState, id: &str) {
        let mut m = self.0.lock();
        if let Some(n) = m.get_mut(id) {
            *n -= 1;
            if *n == 0 {
                m.remove(id);
            }
        }
        state.limits.set_ingesters(1 + m.len());
    }
}

/// The peers whose live series are not told yet; when none is left, the
/// limits are settled (see [`crate::limits::Limits::settle`]).
struct Untold(Mutex<std::collections::HashSet<String>>);

impl Untold {
    /// `url` has told its live series, could not be reached, or is this
    /// node.
    fn done(&self, state: &AppState, url: &str) {
        let mut left = self.0.lock();
        if left.remove(url) && left.is_empty() {
            info!("every peer ingester's live series heard or unreachable: series limits settled");
            state.limits.settle();
        }
    }
}

/// An ingester's subscriptions to every other ingester of `node.ingesters`,
/// until `stop`.
pub(crate) async fn run_peers(state: Arc<AppState>, stop: tokio::sync::watch::Receiver<bool>) {
    let heard = Arc::new(Heard::default());
    let untold = Arc::new(Untold(Mutex::new(
        state.config.node.ingesters.iter().cloned().collect(),
    )));
    let tasks: Vec<_> = state
        .config
        .node
        .ingesters
        .iter()
        .map(|url| {
            tokio::spawn(follow_peer(
                Arc::clone(&state),
                Arc::clone(&heard),
                Arc::clone(&untold),
                url.clone(),
                stop.clone(),
            ))
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

enum Ended {
    /// The address is this node's own: nothing to follow.
    Myself,
    /// The stream ran and ended; subscribe again.
    Streamed,
}

async fn follow_peer(
    state: Arc<AppState>,
    heard: Arc<Heard>,
    untold: Arc<Untold>,
    url: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        // A peer that does not answer (a connect hanging on a dead
        // address) never holds up a shutdown.
        let mut inner = stop.clone();
        let result = tokio::select! {
            r = follow(&state, &heard, &untold, &url, &mut inner) => r,
            _ = stop.changed() => return,
        };
        match result {
            Ok(Ended::Myself) => {
                debug!(peer = %url, "this ingester's own address: not followed");
                untold.done(&state, &url);
                return;
            }
            Ok(Ended::Streamed) => backoff = Duration::from_millis(500),
            Err(error) => {
                // A peer that cannot be reached has nothing to tell now.
                untold.done(&state, &url);
                warn!(peer = %url, %error, "live series stream broke; subscribing again")
            }
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn follow(
    state: &Arc<AppState>,
    heard: &Heard,
    untold: &Untold,
    url: &str,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Ended, String> {
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    let mut ws = crate::replication::connect(state, url, "/api/v1/internal/live-series").await?;
    let peer = match tokio::time::timeout(SILENCE, ws.next()).await {
        Ok(Some(Ok(WsMessage::Binary(b)))) => match decode(&b)? {
            Frame::Hello { node_id } => node_id,
            Frame::Live(_) | Frame::Told => {
                return Err("the stream did not start with a hello".into());
            }
        },
        other => return Err(format!("the stream did not start with a hello: {other:?}")),
    };
    if peer == state.config.node.resolved_id() {
        let _ = ws.close(None).await;
        return Ok(Ended::Myself);
    }
    info!(peer = %url, node = %peer, "sharing live series with a peer ingester");
    let _joined = Joined::new(heard, state, &peer);
    loop {
        let msg = tokio::select! {
            msg = tokio::time::timeout(SILENCE, ws.next()) => msg,
            _ = stop.changed() => break Ok(Ended::Streamed),
        };
        match msg {
            Err(_) => break Err(format!("{url}: silent for {SILENCE:?}")),
            Ok(None) | Ok(Some(Ok(WsMessage::Close(_)))) => break Ok(Ended::Streamed),
            Ok(Some(Err(e))) => break Err(format!("{url}: {e}")),
            Ok(Some(Ok(WsMessage::Binary(b)))) => match decode(&b) {
                Ok(Frame::Live(a)) => state.limits.merge_live(&a),
                Ok(Frame::Told) => untold.done(state, url),
                Ok(Frame::Hello { .. }) => break Err("a second hello".into()),
                Err(e) => break Err(e),
            },
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// A peer heard from, until dropped (the stream ended, or was dropped
/// at shutdown).
struct Joined<'a> {
    heard: &'a Heard,
    state: &'a AppState,
    peer: &'a str,
}

impl<'a> Joined<'a> {
    fn new(heard: &'a Heard, state: &'a AppState, peer: &'a str) -> Self {
        heard.join(state, peer);
        Self { heard, state, peer }
    }
}

impl Drop for Joined<'_> {
    fn drop(&mut self) {
        self.heard.leave(self.state, self.peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        assert_eq!(
            decode(&encode_hello("strata-ingester-1")).unwrap(),
            Frame::Hello {
                node_id: "strata-ingester-1".into()
            }
        );
        let up: Arc<str> = Arc::from("up");
        let a = Announcement {
            kind: LiveKind::Streams,
            tenant: TenantId::try_new("acme").unwrap(),
            entries: vec![
                (1, Arc::clone(&up), 100),
                (3, up, 1_700_000_000),
                (u64::MAX, Arc::from(""), -5),
            ],
        };
        let Frame::Live(mut back) = decode(&encode_live(&a)).unwrap() else {
            panic!("not a live message");
        };
        back.entries.sort_by_key(|e| e.0);
        assert_eq!(back, a);
        let bytes = encode_live(&a);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err(), "cut short");
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err(), "trailing bytes");
        assert!(decode(&[9]).is_err());
        assert_eq!(decode(&[TOLD]).unwrap(), Frame::Told);
        assert!(decode(&[TOLD, 0]).is_err());
    }
}
