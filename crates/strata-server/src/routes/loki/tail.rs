//! `GET /loki/api/v1/tail`: a WebSocket that sends a log query's entries
//! as they arrive, in Loki's shape (`{"streams": [...]}` per message).
//!
//! The first message holds the newest `limit` entries since `start`
//! (default one hour ago); after that the query runs every second over
//! the entries newer than the last one sent, up to `now - delay_for`
//! (0–5 s, for senders whose entries arrive late). Entries are found by
//! their time: one that arrives with a time older than what was already
//! sent is not sent (a `delay_for` covers senders that lag). Each tenant
//! has `max_concurrent_tail_requests` connections (429 beyond); every
//! run takes the tenant's query slot, as a query does.

use std::collections::HashSet;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};

use super::*;

/// How often a tail looks for new entries.
const POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// The upgrade, once the query and parameters are known to be good:
/// errors before it are plain-text 400s, as Loki's.
pub(in crate::routes) async fn tail(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    reply(
        async {
            let params = Params::new(raw, &headers, &Bytes::new());
            let expr = match parse_query(&params)? {
                Query::Log(e) => e,
                Query::Metric(_) => return Err(bad("tail needs a log query, not a metric query")),
            };
            let limit = limit(&params)?;
            let delay_s = match params.get("delay_for") {
                None => 0,
                Some(v) => match v.parse::<i64>() {
                    Ok(d) if (0..=5).contains(&d) => d,
                    _ => {
                        return Err(bad(
                            "delay_for must be a whole number of seconds from 0 to 5",
                        ));
                    }
                },
            };
            let start = time(&params, "start", now_ns().saturating_sub(3600 * NS))?;
            let ws = match ws {
                Ok(ws) => ws,
                Err(r) => return Ok(r.into_response()),
            };
            let slot = state
                .limits
                .start_tail(&tenant)
                .map_err(|r| state.refused(&tenant, r, SHAPE))?;
            // Held until the socket closes (dropped with the upgrade if the
            // client never completes it).
            Ok(ws.on_upgrade(move |socket| async move {
                let tail = Tail {
                    state,
                    tenant,
                    expr,
                    delay_ns: delay_s * NS,
                };
                tail.run(socket, start, limit).await;
                drop(slot);
            }))
        }
        .await,
    )
}

struct Tail {
    state: Arc<AppState>,
    tenant: TenantId,
    expr: logql::LogExpr,
    delay_ns: i64,
}

impl Tail {
    async fn run(&self, mut socket: WebSocket, start: i64, limit: usize) {
        // Entries at the newest time sent, which the next run sees again.
        let mut from = start;
        let mut sent_at_from: HashSet<(Labels, String)> = HashSet::new();
        let mut first = true;
        let mut poll = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                msg = socket.recv() => match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(_)) => {}
                },
                _ = poll.tick() => {
                    let to = now_ns().saturating_sub(self.delay_ns);
                    if to <= from {
                        continue;
                    }
                    // The first message: the newest `limit`; then everything new.
                    let (n, direction) = if first {
                        (limit, Direction::Backward)
                    } else {
                        (0, Direction::Forward)
                    };
                    let streams = match self.read(from, to, n, direction).await {
                        Ok(s) => s,
                        Err(e) => {
                            let text = e.message;
                            let _ = socket.send(Message::Text(format!("{{\"error\":{}}}", json!(text)).into())).await;
                            let _ = socket.send(Message::Close(None)).await;
                            return;
                        }
                    };
                    first = false;
                    let mut out: Vec<OutStream> = Vec::new();
                    let newest = streams.iter().flat_map(|s| s.entries.iter().map(|e| e.0)).max();
                    let mut next_sent: HashSet<(Labels, String)> = HashSet::new();
                    for mut s in streams {
                        s.entries.retain(|(ts, line)| {
                            let key = (s.labels.clone(), line.clone());
                            if *ts == from && sent_at_from.contains(&key) {
                                return false;
                            }
                            if Some(*ts) == newest {
                                next_sent.insert(key);
                            }
                            true
                        });
                        s.entries.sort_by_key(|e| e.0);
                        if !s.entries.is_empty() {
                            out.push(s);
                        }
                    }
                    if let Some(newest) = newest {
                        if newest == from {
                            sent_at_from.extend(next_sent);
                        } else {
                            from = newest;
                            sent_at_from = next_sent;
                        }
                    }
                    if out.is_empty() {
                        continue;
                    }
                    let body = json!({"streams": streams_json(out), "dropped_entries": null});
                    if socket.send(Message::Text(body.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    async fn read(
        &self,
        from: i64,
        to: i64,
        limit: usize,
        direction: Direction,
    ) -> Result<Vec<OutStream>, ApiError> {
        let opts = options(&self.state, &self.tenant);
        let src = source(&self.state, &self.tenant)?;
        run(&self.state, &self.tenant, async {
            logql::eval_log(&src, &self.expr, from, to, limit, direction, &opts)
                .await
                .map_err(from_eval)
        })
        .await
    }
}
