//! One worker's WebSocket session.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use iog_core::{Event, RunningTask};
use iog_proto::PROTOCOL_VERSION;
use iog_proto::stream::{CoordinatorMessage, WorkerMessage};
use tokio::sync::mpsc;

use crate::engine::{Command, SESSION_QUEUE_MAX, now_ms};
use crate::server::AppState;

/// A worker must say hello within this time after connecting.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Most devices one worker may describe in its hello.
const DEVICES_MAX: usize = 256;

static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(1);

fn encode(message: &CoordinatorMessage) -> Message {
    Message::Text(
        serde_json::to_string(message)
            .expect("coordinator messages always serialise")
            .into(),
    )
}

async fn refuse(socket: &mut WebSocket, code: &str, message: String) {
    tracing::warn!(code, message, "worker refused");
    let refused = CoordinatorMessage::Refused {
        code: code.to_owned(),
        message,
    };
    let _ = socket.send(encode(&refused)).await;
    let _ = socket.send(Message::Close(None)).await;
}

fn decode(message: Message) -> Option<Result<WorkerMessage, String>> {
    match message {
        Message::Text(text) => Some(serde_json::from_str(&text).map_err(|err| err.to_string())),
        Message::Binary(bytes) => {
            Some(serde_json::from_slice(&bytes).map_err(|err| err.to_string()))
        }
        Message::Ping(_) | Message::Pong(_) => None,
        Message::Close(_) => Some(Err("closed".to_owned())),
    }
}

/// Serves a worker from its hello until its connection ends.
pub(crate) async fn serve(mut socket: WebSocket, state: AppState) {
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, socket.recv()).await {
        Ok(Some(Ok(message))) => decode(message),
        _ => return,
    };
    let Some(Ok(WorkerMessage::Hello {
        protocol_version,
        worker_id,
        agent_version,
        devices,
        slots,
        held,
    })) = hello
    else {
        refuse(
            &mut socket,
            "bad_hello",
            "the first message of a session must be a hello".into(),
        )
        .await;
        return;
    };
    if protocol_version != PROTOCOL_VERSION {
        let message = format!(
            "this coordinator speaks worker protocol {PROTOCOL_VERSION}, the worker speaks {protocol_version}; \
             install a matching iog version"
        );
        refuse(&mut socket, "protocol_version", message).await;
        return;
    }
    if devices.len() > DEVICES_MAX {
        refuse(
            &mut socket,
            "too_many_devices",
            format!("a worker may offer at most {DEVICES_MAX} devices"),
        )
        .await;
        return;
    }
    let devices_json = serde_json::to_string(&devices).expect("devices serialise");
    if let Err(err) = state
        .store
        .record_worker(&worker_id, &devices_json, &agent_version, now_ms())
        .await
    {
        tracing::error!(worker_id = %worker_id, error = %err, "recording worker failed");
        refuse(
            &mut socket,
            "internal",
            "the coordinator could not record the worker; try again".into(),
        )
        .await;
        return;
    }
    let welcome = CoordinatorMessage::Welcome {
        heartbeat_interval_ms: state.core_config.heartbeat_interval_ms,
        worker_timeout_ms: state.core_config.worker_timeout_ms(),
    };
    if socket.send(encode(&welcome)).await.is_err() {
        return;
    }
    let session_id = NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed);
    let (outbox, mut inbox) = mpsc::channel(SESSION_QUEUE_MAX);
    let held = held
        .into_iter()
        .map(|h| RunningTask {
            task_id: h.task_id,
            token: h.token,
        })
        .collect();
    let connect = Command::Connect {
        worker_id: worker_id.clone(),
        session_id,
        slots,
        held,
        outbox,
    };
    if state.engine.send(connect).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            outgoing = inbox.recv() => {
                let Some(message) = outgoing else { break };
                if socket.send(encode(&message)).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { break };
                let event = match decode(message) {
                    None => continue,
                    Some(Err(err)) if err == "closed" => break,
                    Some(Err(err)) => {
                        refuse(&mut socket, "bad_message", format!("could not decode message: {err}")).await;
                        break;
                    }
                    Some(Ok(message)) => to_event(&state, &worker_id, message),
                };
                if state.engine.send(Command::Event(event)).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = state
        .engine
        .send(Command::Disconnect {
            worker_id,
            session_id,
        })
        .await;
}

fn to_event(state: &AppState, worker_id: &iog_types::WorkerId, message: WorkerMessage) -> Event {
    let worker_id = worker_id.clone();
    match message {
        WorkerMessage::Heartbeat | WorkerMessage::Hello { .. } => Event::Heartbeat { worker_id },
        WorkerMessage::TaskDone {
            task_id,
            token,
            output,
            duration_ms,
            work_units,
            device,
        } => {
            if state.store.blobs().contains(&output) {
                tracing::debug!(worker_id = %worker_id, task_id = %task_id, work_units, device, "task done");
                Event::TaskSucceeded {
                    worker_id,
                    task_id,
                    token,
                    output,
                    duration_ms,
                }
            } else {
                let error =
                    format!("the worker reported output blob {output} but never uploaded it");
                Event::TaskFailed {
                    worker_id,
                    task_id,
                    token,
                    error,
                }
            }
        }
        WorkerMessage::TaskFailed {
            task_id,
            token,
            error,
        } => {
            tracing::info!(worker_id = %worker_id, task_id = %task_id, error, "task failed on worker");
            Event::TaskFailed {
                worker_id,
                task_id,
                token,
                error,
            }
        }
    }
}
