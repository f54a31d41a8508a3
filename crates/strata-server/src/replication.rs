//! Ingesters' heads to queriers (docs/DESIGN.md, "Scale-out").
//!
//! `GET /api/v1/internal/head-stream` (a WebSocket; the operator role when
//! auth is on) subscribes to an ingester: it flushes, then sends a hello
//! (the flush's cut position and the ingester's WAL application id) and
//! every later event of its head as a binary message: records in the WAL's
//! own encoding, cuts, per-table commits; a ping every 5 s. A querier
//! ([`run_mirrors`]) follows each ingester of `node.ingesters`, mirrors
//! its head ([`strata_storage::Mirror`]), re-reads a table when the
//! ingester commits it, and subscribes again when the stream breaks. A
//! mirror whose ingester stays unreachable for `node.mirror_retire_after`
//! is dropped, the tables' latest versions published at the same moment
//! (what it held unflushed is in that ingester's WAL and reaches the
//! tables when the ingester is back).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use strata_storage::{HeadEvent, Mirror, Signal};
use strata_types::{ErrorKind, TenantId};
use strata_wal::{SegmentDecoder, SegmentEncoder, WalSeq};
use tracing::{info, warn};

use crate::AppState;
use crate::error::{ApiError, Shape};

const HELLO: u8 = 1;
const RECORD: u8 = 2;
const CUT: u8 = 3;
const COMMITTED: u8 = 4;

/// How often an idle stream is pinged; a querier that hears nothing for
/// [`SILENCE`] subscribes again.
const PING: Duration = Duration::from_secs(5);
pub(crate) const SILENCE: Duration = Duration::from_secs(30);

/// One message of the stream.
#[derive(Debug)]
pub enum Frame {
    Hello { start: WalSeq, app_id: String },
    Event(HeadEvent),
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub fn encode_hello(start: WalSeq, app_id: &str) -> Vec<u8> {
    let mut out = vec![HELLO];
    out.extend_from_slice(&start.0.to_le_bytes());
    put_str(&mut out, app_id);
    out
}

/// `event` as a message (records through `enc`, which interns label sets
/// for the stream's life as the WAL does for a segment's).
pub fn encode_event(event: &HeadEvent, enc: &mut SegmentEncoder) -> Vec<u8> {
    let mut out = Vec::new();
    match event {
        HeadEvent::Samples(seq, batch) => {
            out.push(RECORD);
            out.extend_from_slice(&seq.0.to_le_bytes());
            enc.encode_samples(batch, &mut out);
        }
        HeadEvent::Logs(seq, batch) => {
            out.push(RECORD);
            out.extend_from_slice(&seq.0.to_le_bytes());
            enc.encode_logs(batch, &mut out);
        }
        HeadEvent::Exemplars(seq, batch) => {
            out.push(RECORD);
            out.extend_from_slice(&seq.0.to_le_bytes());
            enc.encode_exemplars(batch, &mut out);
        }
        HeadEvent::Histograms(seq, batch) => {
            out.push(RECORD);
            out.extend_from_slice(&seq.0.to_le_bytes());
            enc.encode_histograms(batch, &mut out);
        }
        HeadEvent::Cut { seq, tenant } => {
            out.push(CUT);
            out.extend_from_slice(&seq.0.to_le_bytes());
            put_str(&mut out, tenant.as_ref().map_or("", TenantId::as_str));
        }
        HeadEvent::Committed {
            tenant,
            signal,
            seq,
        } => {
            out.push(COMMITTED);
            out.extend_from_slice(&seq.0.to_le_bytes());
            out.push(match signal {
                Signal::Metrics => 0,
                Signal::Logs => 1,
                Signal::Exemplars => 2,
                Signal::Histograms => 3,
            });
            put_str(&mut out, tenant.as_str());
        }
    }
    out
}

pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("head stream message cut short".into());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(b.try_into().map_err(|_| "bad u32")?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| "bad u64")?))
    }
    pub(crate) fn str(&mut self) -> Result<&'a str, String> {
        let b = self.take(4)?;
        let n = u32::from_le_bytes(b.try_into().map_err(|_| "bad length")?) as usize;
        std::str::from_utf8(self.take(n)?).map_err(|e| e.to_string())
    }
}

fn tenant(s: &str) -> Result<TenantId, String> {
    TenantId::try_new(s).map_err(|e| e.to_string())
}

/// A message of the stream; records through `dec` (the stream's decoder).
pub fn decode(bytes: &[u8], dec: &mut SegmentDecoder) -> Result<Frame, String> {
    let mut r = Reader(bytes);
    let kind = r.u8()?;
    let seq = WalSeq(r.u64()?);
    Ok(match kind {
        HELLO => Frame::Hello {
            start: seq,
            app_id: r.str()?.to_owned(),
        },
        RECORD => {
            let record = dec.decode(r.0).map_err(|e| e.to_string())?;
            Frame::Event(
                strata_storage::record_event(seq, record)
                    .ok_or("a record of a kind this build does not mirror")?,
            )
        }
        CUT => {
            let t = r.str()?;
            Frame::Event(HeadEvent::Cut {
                seq,
                tenant: if t.is_empty() { None } else { Some(tenant(t)?) },
            })
        }
        COMMITTED => {
            let signal = match r.u8()? {
                0 => Signal::Metrics,
                1 => Signal::Logs,
                2 => Signal::Exemplars,
                3 => Signal::Histograms,
                other => return Err(format!("commit of an unknown table kind {other}")),
            };
            Frame::Event(HeadEvent::Committed {
                tenant: tenant(r.str()?)?,
                signal,
                seq,
            })
        }
        other => return Err(format!("unknown head stream message kind {other}")),
    })
}

/// The answer refusing a caller without the operator role (when auth is
/// on) the internal stream `what`; `None` lets it in.
pub(crate) fn operator_refusal(
    state: &AppState,
    headers: &HeaderMap,
    what: &str,
) -> Option<Response> {
    match state.auth.admin_scope(headers, Shape::Json) {
        Ok(None) => None,
        Ok(Some(_)) => Some(
            ApiError::new(
                ErrorKind::Forbidden,
                format!("{what} takes the operator role"),
                Shape::Json,
            )
            .into_response(),
        ),
        Err(e) => Some(e.into_response()),
    }
}

/// `GET /api/v1/internal/head-stream`.
pub(crate) async fn head_stream(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Some(refused) = crate::replication::operator_refusal(&state, &headers, "the head stream")
    {
        return refused;
    }
    let role = state.config.node.role;
    if !role.takes_writes() {
        return ApiError::new(
            ErrorKind::NotFound,
            format!("this node is a {role}: it has no head to stream (ingesters do)"),
            Shape::Json,
        )
        .into_response();
    }
    let Some(wal) = state.wal() else {
        return ApiError::new(
            ErrorKind::Unavailable,
            "not ready: replaying the WAL",
            Shape::Json,
        )
        .into_response();
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return e.into_response(),
    };
    // Subscribed (and flushed) before the upgrade: a failed flush is an
    // HTTP error the querier sees, and retries.
    let (start, rx) = match state.storage.subscribe(wal.as_ref()).await {
        Ok(s) => s,
        Err(e) => {
            return ApiError::new(
                e.kind(),
                format!("the head stream starts with a flush, which failed: {e}"),
                Shape::Json,
            )
            .into_response();
        }
    };
    let app_id = state.storage.wal_app_id().to_owned();
    info!(start = %start, "a querier subscribed to the head");
    ws.on_upgrade(move |socket| send_events(socket, start, app_id, rx))
}

async fn send_events(
    mut socket: WebSocket,
    start: WalSeq,
    app_id: String,
    mut rx: tokio::sync::broadcast::Receiver<HeadEvent>,
) {
    if socket
        .send(Message::Binary(encode_hello(start, &app_id).into()))
        .await
        .is_err()
    {
        return;
    }
    let mut enc = SegmentEncoder::default();
    // At or below the start: in the tables already.
    let encode = |event: &HeadEvent| (event.seq() > start).then(|| encode_event(event, &mut enc));
    stream_out(
        &mut socket,
        &mut rx,
        encode,
        "a querier fell behind the head stream; it subscribes again",
    )
    .await;
}

/// Sends what `rx` receives, as `encode` makes it a message (`None`:
/// nothing to send), with a ping every [`PING`], until the socket or the
/// channel closes; a receiver fallen behind the channel is closed with
/// `lagging` logged (it subscribes again).
pub(crate) async fn stream_out<T: Clone>(
    socket: &mut WebSocket,
    rx: &mut tokio::sync::broadcast::Receiver<T>,
    mut encode: impl FnMut(&T) -> Option<Vec<u8>>,
    lagging: &'static str,
) {
    let mut ping = tokio::time::interval(PING);
    loop {
        tokio::select! {
            item = rx.recv() => match item {
                Ok(item) => {
                    let Some(bytes) = encode(&item) else { continue };
                    if socket.send(Message::Binary(bytes.into())).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    warn!(missed = n, "{lagging}");
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// A querier's mirrors of every ingester of `node.ingesters`, until `stop`.
pub(crate) async fn run_mirrors(state: Arc<AppState>, stop: tokio::sync::watch::Receiver<bool>) {
    let tasks: Vec<_> = state
        .config
        .node
        .ingesters
        .iter()
        .map(|url| tokio::spawn(mirror_one(Arc::clone(&state), url.clone(), stop.clone())))
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

async fn mirror_one(
    state: Arc<AppState>,
    url: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(500);
    let mut down_since: Option<Instant> = None;
    loop {
        let result = follow(&state, &url, &mut stop).await;
        if *stop.borrow() {
            return;
        }
        match result {
            Ok(true) => {
                // It streamed: the next break starts a new count.
                backoff = Duration::from_millis(500);
                down_since = Some(Instant::now());
            }
            Ok(false) => {}
            Err(error) => warn!(ingester = %url, %error, "head stream broke; subscribing again"),
        }
        let since = *down_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= state.config.node.mirror_retire_after {
            match state.storage.retire_mirror(&url).await {
                Ok(true) => {
                    warn!(ingester = %url, "ingester unreachable; its mirrored head is dropped (its WAL keeps the data)")
                }
                Ok(false) => {}
                Err(error) => {
                    warn!(ingester = %url, %error, "dropping an unreachable ingester's mirror failed; retried")
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// A WebSocket to the internal stream at `path` of the ingester at `url`
/// (`http://host:port`), with `node.ingester_token` when set.
pub(crate) async fn connect(
    state: &AppState,
    url: &str,
    path: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    String,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let target = format!(
        "{}{path}",
        url.trim_end_matches('/')
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1)
    );
    let mut request = target.into_client_request().map_err(|e| e.to_string())?;
    if let Some(token) = &state.config.node.ingester_token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| "node.ingester_token is not a valid header value")?;
        request
            .headers_mut()
            .insert(axum::http::header::AUTHORIZATION, value);
    }
    let (ws, _) = tokio::time::timeout(SILENCE, tokio_tungstenite::connect_async(request))
        .await
        .map_err(|_| format!("{url}: no answer within {SILENCE:?}"))?
        .map_err(|e| format!("{url}: {e}"))?;
    Ok(ws)
}

/// Follows one subscription until it ends; `Ok(true)` if it streamed.
async fn follow(
    state: &Arc<AppState>,
    url: &str,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<bool, String> {
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    let mut ws = connect(state, url, "/api/v1/internal/head-stream").await?;
    let mut dec = SegmentDecoder::default();
    // The ingester flushes before it answers: allow it time.
    let hello = tokio::time::timeout(Duration::from_secs(600), ws.next())
        .await
        .map_err(|_| "no hello".to_owned())?;
    let (start, app_id) = match hello {
        Some(Ok(WsMessage::Binary(b))) => match decode(&b, &mut dec)? {
            Frame::Hello { start, app_id } => (start, app_id),
            Frame::Event(_) => return Err("the stream did not start with a hello".into()),
        },
        other => return Err(format!("the stream did not start with a hello: {other:?}")),
    };
    info!(ingester = %url, start = %start, app_id = %app_id, "mirroring an ingester's head");
    let mirror = Mirror::new(app_id, start);
    let gone = Arc::new(AtomicBool::new(false));
    let activation = {
        let storage = Arc::clone(&state.storage);
        let (url, mirror, gone) = (url.to_owned(), Arc::clone(&mirror), Arc::clone(&gone));
        tokio::spawn(async move {
            match storage
                .activate_mirror(&url, mirror, || gone.load(Ordering::Relaxed))
                .await
            {
                Ok(true) => info!(ingester = %url, "mirrored head in use"),
                Ok(false) => {}
                Err(error) => warn!(ingester = %url, %error, "mirrored head not put in use"),
            }
        })
    };
    let result = loop {
        let msg = tokio::select! {
            msg = tokio::time::timeout(SILENCE, ws.next()) => msg,
            _ = stop.changed() => break Ok(true),
        };
        match msg {
            Err(_) => break Err(format!("{url}: silent for {SILENCE:?}")),
            Ok(None) | Ok(Some(Ok(WsMessage::Close(_)))) => break Ok(true),
            Ok(Some(Err(e))) => break Err(format!("{url}: {e}")),
            Ok(Some(Ok(WsMessage::Binary(b)))) => match decode(&b, &mut dec) {
                Ok(Frame::Event(event)) => {
                    if let HeadEvent::Exemplars(_, batch) = &event {
                        state.storage.apply_exemplars(batch);
                    }
                    mirror.apply(&event);
                    if let HeadEvent::Committed { tenant, signal, .. } = event {
                        let storage = Arc::clone(&state.storage);
                        tokio::spawn(async move {
                            if let Err(error) = storage.refresh_table(&tenant, signal).await {
                                warn!(%tenant, %error, "re-reading a committed table failed; the next refresh retries");
                            }
                        });
                    }
                }
                Ok(Frame::Hello { .. }) => break Err("a second hello".into()),
                Err(e) => break Err(e),
            },
            Ok(Some(Ok(_))) => {}
        }
    };
    gone.store(true, Ordering::Relaxed);
    let _ = activation.await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_types::{SeriesSamples, WriteBatch};

    #[test]
    fn every_event_round_trips() {
        let t = TenantId::try_new("acme").unwrap();
        let batch = WriteBatch::from_series(
            t.clone(),
            vec![SeriesSamples::try_from_pairs(&[("__name__", "up")], &[(1000, 1.0)]).unwrap()],
        );
        let events = [
            HeadEvent::Samples(WalSeq(7), Arc::new(batch)),
            HeadEvent::Cut {
                seq: WalSeq(8),
                tenant: None,
            },
            HeadEvent::Cut {
                seq: WalSeq(9),
                tenant: Some(t.clone()),
            },
            HeadEvent::Committed {
                tenant: t.clone(),
                signal: Signal::Logs,
                seq: WalSeq(9),
            },
            HeadEvent::Exemplars(
                WalSeq(10),
                Arc::new(strata_types::ExemplarBatch {
                    tenant: t.clone(),
                    series: vec![strata_types::SeriesExemplars {
                        labels: strata_types::Labels::try_from_sorted(vec![
                            strata_types::Label::new("__name__", "up"),
                        ])
                        .unwrap(),
                        exemplars: vec![strata_types::Exemplar {
                            labels: vec![("trace_id".into(), "abc".into())],
                            value: 1.0,
                            timestamp_ms: 1000,
                        }],
                    }],
                }),
            ),
            HeadEvent::Committed {
                tenant: t.clone(),
                signal: Signal::Exemplars,
                seq: WalSeq(10),
            },
            HeadEvent::Histograms(
                WalSeq(11),
                Arc::new(strata_types::HistogramBatch {
                    tenant: t.clone(),
                    series: vec![strata_types::SeriesHistograms {
                        labels: strata_types::Labels::try_from_sorted(vec![
                            strata_types::Label::new("__name__", "pick_seconds"),
                        ])
                        .unwrap(),
                        samples: vec![strata_types::HistogramSample {
                            timestamp_ms: 1000,
                            histogram: strata_types::Histogram {
                                reset_hint: strata_types::ResetHint::NotReset,
                                schema: 0,
                                zero_threshold: 0.001,
                                zero_count: 1.0,
                                count: 3.0,
                                sum: 2.5,
                                positive_spans: vec![strata_types::BucketSpan {
                                    offset: 0,
                                    length: 1,
                                }],
                                positive_counts: vec![2.0],
                                negative_spans: Vec::new(),
                                negative_counts: Vec::new(),
                                custom_values: Vec::new(),
                                integer: true,
                            },
                        }],
                    }],
                }),
            ),
            HeadEvent::Committed {
                tenant: t,
                signal: Signal::Histograms,
                seq: WalSeq(11),
            },
        ];
        let (mut enc, mut dec) = (SegmentEncoder::default(), SegmentDecoder::default());
        match decode(&encode_hello(WalSeq(6), "strata-wal/i-0"), &mut dec).unwrap() {
            Frame::Hello { start, app_id } => {
                assert_eq!((start, app_id.as_str()), (WalSeq(6), "strata-wal/i-0"));
            }
            other => panic!("{other:?}"),
        }
        for e in &events {
            let Frame::Event(back) = decode(&encode_event(e, &mut enc), &mut dec).unwrap() else {
                panic!("not an event");
            };
            assert_eq!(format!("{back:?}"), format!("{e:?}"));
        }
        assert!(decode(&[RECORD, 1, 2], &mut dec).is_err(), "cut short");
        assert!(decode(&[99, 0, 0, 0, 0, 0, 0, 0, 0], &mut dec).is_err());
    }
}
