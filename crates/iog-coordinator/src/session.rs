//! One worker's WebSocket session.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use iog_core::{Event, RunningTask};
use iog_proto::PROTOCOL_VERSION;
use iog_proto::stream::{CoordinatorMessage, WorkerMessage};
use iog_sched::Coord;
use iog_store::INLINE_BLOB_BYTES_MAX;
use iog_types::BlobId;
use tokio::sync::mpsc;

use crate::challenge::{self, Progress, Round};
use crate::engine::{Command, Outgoing, SESSION_QUEUE_MAX, now_ms};
use crate::listener::Channel;
use crate::probes::PEERS_PER_ROUND;
use crate::server::AppState;

/// A worker must say hello within this time after connecting.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Most devices one worker may describe in its hello.
const DEVICES_MAX: usize = 256;
/// Longest pause reason kept, in characters.
const REASON_CHARS_MAX: usize = 200;
/// Longest device name kept from a worker's report of a finished task, in
/// bytes.
const DEVICE_NAME_BYTES_MAX: usize = 64;
/// The first probe round of a session comes this soon (or at the probe
/// interval, if that is shorter).
const PROBE_FIRST_ROUND_AFTER: Duration = Duration::from_secs(1);

static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(1);

fn encode(message: &CoordinatorMessage) -> Message {
    Message::Text(serde_json::to_string(message).expect("coordinator messages always serialise").into())
}

async fn refuse(socket: &mut WebSocket, code: &str, message: String) {
    tracing::warn!(code, message, "worker refused");
    let refused = CoordinatorMessage::Refused { code: code.to_owned(), message };
    let _ = socket.send(encode(&refused)).await;
    let _ = socket.send(Message::Close(None)).await;
}

/// What one WebSocket frame from a worker amounts to. One lives only as
/// long as one read, so the size of a hello does not matter.
#[allow(clippy::large_enum_variant)]
enum Frame {
    Message(WorkerMessage),
    /// A frame that is not a message (ping, pong).
    Control,
    Closed,
    Undecodable(String),
}

fn decode(message: Message) -> Frame {
    let parsed = match message {
        Message::Text(text) => serde_json::from_str(&text),
        Message::Binary(bytes) => serde_json::from_slice(&bytes),
        Message::Ping(_) | Message::Pong(_) => return Frame::Control,
        Message::Close(_) => return Frame::Closed,
    };
    parsed.map_or_else(|err| Frame::Undecodable(err.to_string()), Frame::Message)
}

/// Checks that `signature` is `worker_id`'s over this session's nonce and
/// the channel of its connection.
fn check_session_signature(
    state: &AppState,
    channel: &str,
    nonce: &str,
    worker_id: &iog_types::WorkerId,
    signature: &str,
) -> Result<(), String> {
    let bytes = hex::decode(signature).map_err(|_| "the hello's signature is not hex".to_owned())?;
    let bytes: [u8; 64] =
        bytes.as_slice().try_into().map_err(|_| "an ed25519 signature is 64 bytes (128 hex digits)".to_owned())?;
    let message = iog_proto::auth::session_signing_message(nonce, &worker_id.0, &state.auth.audience, channel);
    iog_host::verify(worker_id, &message, &bytes).map_err(|err| err.to_string())
}

/// Checks that `seal_key` is an x25519 key that `worker_id` signed as its
/// own: a submitter checks the same signature before wrapping a key to it.
fn check_seal_key(worker_id: &iog_types::WorkerId, seal_key: &str, signature: &str) -> Result<(), String> {
    let public = iog_seal::SealPublic::from_hex(seal_key).map_err(|err| format!("the hello's seal key: {err}"))?;
    let bytes = hex::decode(signature).map_err(|_| "the hello's seal key signature is not hex".to_owned())?;
    let bytes: [u8; 64] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| "the seal key signature is not 64 bytes (128 hex digits)".to_owned())?;
    let message = iog_seal::seal_key_signing_message(&worker_id.0, &public);
    iog_host::verify(worker_id, &message, &bytes).map_err(|err| format!("the seal key signature: {err}"))
}

/// Serves a worker from its hello until its connection ends. `remote` is
/// the address its connection comes from, `channel` the TLS channel its
/// hello must be signed for.
pub(crate) async fn serve(mut socket: WebSocket, state: AppState, remote: SocketAddr, channel: Channel) {
    // Many worker keys from one address are one machine pretending to be
    // many (a Sybil flood); its sessions are capped.
    let Some(_open) = state.limiter.open_session(remote.ip()) else {
        let message = format!(
            "{} already has {} worker sessions open, the most one address may; run fewer workers behind it",
            remote.ip(),
            state.limiter.sessions_per_address()
        );
        refuse(&mut socket, "too_many_sessions", message).await;
        return;
    };
    // The worker proves its id by signing this session's own nonce, so a
    // hello recorded from another session is worthless.
    let nonce = crate::auth::fresh_hex();
    let challenge =
        CoordinatorMessage::SessionChallenge { nonce: nonce.clone(), audience: state.auth.audience.clone() };
    if socket.send(encode(&challenge)).await.is_err() {
        return;
    }
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, socket.recv()).await {
        Ok(Some(Ok(message))) => decode(message),
        _ => return,
    };
    let Frame::Message(WorkerMessage::Hello {
        protocol_version,
        worker_id,
        agent_version,
        devices,
        offer,
        held,
        probe_port,
        signature,
        seal_key,
        seal_key_signature,
    }) = hello
    else {
        let message = format!(
            "the first message of a session must be a signed hello (worker protocol {PROTOCOL_VERSION}); \
             install a matching iog version"
        );
        refuse(&mut socket, "bad_hello", message).await;
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
    if let Err(why) = check_session_signature(&state, &channel.0, &nonce, &worker_id, &signature) {
        tracing::warn!(worker_id = %worker_id, %remote, why, "worker failed to prove its id");
        refuse(
            &mut socket,
            "bad_signature",
            format!(
                "{why}; it was signed for another TLS connection (a proxy or interceptor between worker and \
             coordinator) or by a key that is not the worker id's"
            ),
        )
        .await;
        return;
    }
    if let Err(why) = check_seal_key(&worker_id, &seal_key, &seal_key_signature) {
        let fix = if seal_key.is_empty() {
            "the worker sent no seal key; install a matching iog version"
        } else {
            "the seal key is not the worker's own (it was replaced on the way, or signed by another key)"
        };
        refuse(&mut socket, "bad_seal_key", format!("{why}; {fix}")).await;
        return;
    }
    if devices.len() > DEVICES_MAX {
        refuse(&mut socket, "too_many_devices", format!("a worker may offer at most {DEVICES_MAX} devices")).await;
        return;
    }
    if let Err(err) = offer.validate() {
        refuse(&mut socket, "bad_offer", format!("{err}; fix the [offer] section of the worker's config")).await;
        return;
    }
    match state.engine.admission(worker_id.clone(), devices.len()).await {
        Ok((_, Ok(()))) => {}
        Ok((_, Err(why))) => {
            refuse(&mut socket, "stake_too_low", why).await;
            return;
        }
        Err(_) => return,
    }
    // Follows the offer: a changed offer lends other memory.
    let mut claim = challenge::claim_of(&devices, &offer);
    let devices_json = serde_json::to_string(&devices).expect("devices serialise");
    let offer_json = serde_json::to_string(&offer).expect("offers serialise");
    if let Err(err) = state.store.record_worker(&worker_id, &devices_json, &offer_json, &agent_version, now_ms()).await
    {
        tracing::error!(worker_id = %worker_id, error = %err, "recording worker failed");
        refuse(&mut socket, "internal", "the coordinator could not record the worker; try again".into()).await;
        return;
    }
    state.keys.register(&worker_id, seal_key, seal_key_signature);
    let welcome = CoordinatorMessage::Welcome {
        heartbeat_interval_ms: state.core_config.heartbeat_interval_ms,
        worker_timeout_ms: state.core_config.worker_timeout_ms(),
    };
    if socket.send(encode(&welcome)).await.is_err() {
        return;
    }
    let session_id = NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed);
    let (outbox, mut inbox) = mpsc::channel(SESSION_QUEUE_MAX);
    let held = held.into_iter().map(|h| RunningTask { task_id: h.task_id, token: h.token }).collect();
    let connect = Command::Connect { worker_id: worker_id.clone(), session_id, offer, held, outbox };
    if state.engine.send(connect).await.is_err() {
        return;
    }
    let mut reported_rtt_ms: Option<u32> = None;
    let mut reported_coord: Option<Coord> = None;
    // A worker behind NAT may not be reachable on its probe port; it is
    // listed all the same, and peers that cannot reach it simply get no
    // answer (see docs/SCHEDULER.md).
    let probing = state.probe_interval_ms > 0 && probe_port.is_some_and(|port| port != 0);
    if let Some(port) = probe_port.filter(|_| probing) {
        state.probes.join(&worker_id, session_id, SocketAddr::new(remote.ip(), port));
    }
    let probe_every = Duration::from_millis(state.probe_interval_ms.max(1));
    // The first round comes soon, so a new worker's coordinate starts settling at once.
    let mut probe_tick =
        tokio::time::interval_at(tokio::time::Instant::now() + probe_every.min(PROBE_FIRST_ROUND_AFTER), probe_every);
    probe_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut round: Option<Round> = None;
    // The core's number for the round under way, reported back with its
    // outcome; a round always begins with the core asking for it.
    let mut core_round: Option<u64> = None;
    let mut next_challenge_id: u64 = 1;
    // A worker that sends nothing at all (not even a heartbeat) for as long
    // as the core waits before it declares it dead has its connection
    // closed: every read has a deadline.
    let silence_max = Duration::from_millis(state.core_config.worker_timeout_ms());
    let mut heard_at = tokio::time::Instant::now();
    loop {
        let round_deadline = round.as_ref().map(Round::deadline);
        tokio::select! {
            () = tokio::time::sleep_until(heard_at + silence_max) => {
                tracing::info!(worker_id = %worker_id, silent_ms = silence_max.as_millis() as u64, "closing a silent worker's session");
                break;
            }
            _ = tokio::time::sleep_until(round_deadline.unwrap_or_else(tokio::time::Instant::now)), if round_deadline.is_some() => {
                let progress = round.take().expect("a deadline belongs to a round").expired();
                if !challenge_progress(&mut socket, &state, &worker_id, &mut round, core_round, progress).await {
                    break;
                }
            }
            _ = probe_tick.tick(), if probing => {
                let peers = state.probes.peers(&worker_id, PEERS_PER_ROUND, &mut rand::rng());
                if !peers.is_empty() && socket.send(encode(&CoordinatorMessage::Probe { peers })).await.is_err() {
                    break;
                }
            }
            outgoing = inbox.recv() => {
                let message = match outgoing {
                    None => break,
                    Some(Outgoing::Message(message)) => message,
                    Some(Outgoing::Challenge { round: asked }) => {
                        core_round = Some(asked);
                        let started = claim
                            .clone()
                            .ok_or_else(|| "the worker offers nothing a challenge can check".to_owned())
                            .and_then(|claim| {
                                Round::start(claim, reported_rtt_ms.unwrap_or(0), next_challenge_id, state.round_limits)
                            });
                        next_challenge_id += claim.as_ref().map_or(challenge::ROUND_IDS, |claim| claim.challenge_ids());
                        match started {
                            Ok((started, message)) => {
                                round = Some(started);
                                message
                            }
                            Err(detail) => {
                                let progress = Progress::Done { passed: false, detail };
                                if !challenge_progress(&mut socket, &state, &worker_id, &mut round, core_round, progress).await {
                                    break;
                                }
                                continue;
                            }
                        }
                    }
                };
                if socket.send(encode(&message)).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { break };
                heard_at = tokio::time::Instant::now();
                let event = match decode(message) {
                    Frame::Control => continue,
                    Frame::Closed => break,
                    Frame::Undecodable(err) => {
                        refuse(&mut socket, "bad_message", format!("could not decode message: {err}")).await;
                        break;
                    }
                    Frame::Message(
                        message @ (WorkerMessage::ChallengeReady { .. }
                        | WorkerMessage::ChallengeCommitted { .. }
                        | WorkerMessage::ChallengeAnswered { .. }
                        | WorkerMessage::ChallengeRefused { .. }),
                    ) => {
                        let Some(running) = round.as_mut() else { continue };
                        let progress = running.on_message(message);
                        if !challenge_progress(&mut socket, &state, &worker_id, &mut round, core_round, progress).await {
                            break;
                        }
                        continue;
                    }
                    Frame::Message(WorkerMessage::KeyWanted { task_id, token }) => {
                        crate::keys::worker_wants(&state, &worker_id, task_id, token).await;
                        continue;
                    }
                    Frame::Message(message) => {
                        if let WorkerMessage::OfferChanged { offer } = &message {
                            claim = challenge::claim_of(&devices, offer);
                        }
                        if let WorkerMessage::Heartbeat { coord: Some(coord), .. } = message {
                            if !coord.is_sane() {
                                refuse(&mut socket, "bad_coord", format!("network coordinate out of bounds: {coord:?}")).await;
                                break;
                            }
                            state.probes.set_coord(&worker_id, coord);
                            if reported_coord.is_none_or(|last| coord_moved(&last, &coord)) {
                                reported_coord = Some(coord);
                                let event = Event::WorkerCoord { worker_id: worker_id.clone(), coord };
                                if state.engine.event(event).await.is_err() {
                                    break;
                                }
                            }
                        }
                        if let WorkerMessage::Heartbeat { rtt_ms: Some(rtt_ms), .. } = message {
                            // Re-ranking costs the engine work; only a real
                            // change (a fifth, or more than 2 ms) is passed on.
                            let changed = reported_rtt_ms
                                .is_none_or(|last: u32| rtt_ms.abs_diff(last) > (last / 5).max(2));
                            if changed {
                                reported_rtt_ms = Some(rtt_ms);
                                let rtt = Event::WorkerRtt { worker_id: worker_id.clone(), rtt_ms };
                                if state.engine.event(rtt).await.is_err() {
                                    break;
                                }
                            }
                        }
                        match to_command(&state, &worker_id, message).await {
                        Ok(command) => command,
                        Err((code, message)) => {
                            refuse(&mut socket, code, message).await;
                            break;
                        }
                    }}
                };
                if state.engine.send(event).await.is_err() {
                    break;
                }
            }
        }
    }
    state.probes.leave(&worker_id, session_id);
    let _ = state.engine.send(Command::Disconnect { worker_id, session_id }).await;
}

/// Acts on a challenge round's progress: sends the next message, or ends
/// the round and tells the core its outcome. Returns whether the session
/// goes on.
async fn challenge_progress(
    socket: &mut WebSocket,
    state: &AppState,
    worker_id: &iog_types::WorkerId,
    round: &mut Option<Round>,
    core_round: Option<u64>,
    progress: Progress,
) -> bool {
    match progress {
        Progress::Ignored => true,
        Progress::Send(message) => socket.send(encode(&message)).await.is_ok(),
        Progress::Done { passed, detail } => {
            *round = None;
            if passed {
                tracing::info!(worker_id = %worker_id, detail, "hardware challenge passed");
            } else {
                tracing::warn!(worker_id = %worker_id, detail, "hardware challenge failed");
            }
            let Some(core_round) = core_round else {
                tracing::error!(worker_id = %worker_id, detail, "a challenge round ended that the core never asked for");
                return true;
            };
            let event = Event::ChallengeChecked { worker_id: worker_id.clone(), round: core_round, passed, detail };
            state.engine.event(event).await.is_ok()
        }
    }
}

/// Whether a reported coordinate differs enough from the one the engine
/// has to be worth passing on: it crossed the settled threshold, or it
/// moved by more than 1 ms and a twentieth of its distance from the origin.
/// Heartbeats carry the coordinate every time; most changes are tiny.
fn coord_moved(last: &Coord, new: &Coord) -> bool {
    let settled = |coord: &Coord| coord.error <= iog_core::COORD_ERROR_SETTLED;
    if settled(last) != settled(new) {
        return true;
    }
    let moved_ms = last.distance_ms(new) - last.height_ms - new.height_ms + (last.height_ms - new.height_ms).abs();
    let size_ms = Coord::ORIGIN.distance_ms(new);
    moved_ms > (size_ms / 20.0).max(1.0)
}

/// Most jobs whose output checking `AppState::output_checks` remembers;
/// past it the map starts over (a job then costs one more store query).
const OUTPUT_CHECKS_KNOWN_MAX: usize = 65_536;

/// Why an output reported for `task_id` is malformed, for the workloads
/// whose outputs are checked on arrival (`iog_workloads::checks_outputs`):
/// such an output fails its run, and the task is tried again, instead of
/// being accepted and failing the step that reads it later. Read only from
/// the holder of the task's current lease, and (when not inline) only an
/// output it uploaded itself and no larger than a task input, so a worker
/// cannot make the coordinator read other blobs. `None` when the output is
/// well formed or not checked, and when it cannot be read (another's
/// lease, not uploaded, or a store error): the checks that follow judge it.
async fn malformed_output(
    state: &AppState,
    worker_id: &iog_types::WorkerId,
    task_id: iog_types::TaskId,
    token: iog_types::LeaseToken,
    output: BlobId,
    inline: Option<&[u8]>,
) -> Option<String> {
    let job_id = task_id.job_id;
    if state.output_checks.lock().expect("output checks lock").get(&job_id) == Some(&false) {
        return None;
    }
    let (input, workload) = state.store.task_input(task_id).await.ok()??;
    let checks = iog_workloads::checks_outputs(&workload);
    {
        let mut known = state.output_checks.lock().expect("output checks lock");
        if known.len() >= OUTPUT_CHECKS_KNOWN_MAX {
            known.clear();
        }
        known.insert(job_id, checks);
    }
    if !checks {
        return None;
    }
    let (holder, held) = state.store.current_lease(task_id).await.ok()??;
    if holder != *worker_id || held != token {
        return None;
    }
    let output = match inline {
        Some(bytes) => bytes.to_vec(),
        None => {
            let own = state.store.uploaded_by(output, &worker_id.0).await.ok()?;
            let len = state.store.blob_len(output).await.ok()??;
            if !own || len > iog_workloads::TASK_INPUT_BYTES_MAX as u64 {
                return None;
            }
            state.store.get_blob(output).await.ok()??
        }
    };
    let input = state.store.get_blob(input).await.ok()??;
    match tokio::task::spawn_blocking(move || iog_workloads::check_output(&input, &output).err()).await {
        Ok(reason) => reason,
        Err(err) => Some(format!("reading it failed: {err}")),
    }
}

/// Turns a worker's message into a command for the engine. A result is
/// accepted only with its output at hand: inline (checked against its id) or
/// already uploaded. A message that ends the session is an error (code, message).
async fn to_command(
    state: &AppState,
    worker_id: &iog_types::WorkerId,
    message: WorkerMessage,
) -> Result<Command, (&'static str, String)> {
    let worker_id = worker_id.clone();
    let event = |event| Command::Event { event, blob: None };
    Ok(match message {
        WorkerMessage::OfferChanged { offer } => {
            offer
                .validate()
                .map_err(|err| ("bad_offer", format!("{err}; fix the [offer] section of the worker's config")))?;
            tracing::info!(worker_id = %worker_id, region = %offer.region, price = %offer.price_io_per_device_hour, "offer changed");
            let offer_json = serde_json::to_string(&offer).expect("offers serialise");
            if let Err(err) = state.store.record_offer(&worker_id, &offer_json).await {
                tracing::warn!(worker_id = %worker_id, error = %err, "recording offer failed");
            }
            event(Event::OfferChanged { worker_id, offer })
        }
        WorkerMessage::Pause { reason } => {
            let reason: String = reason.chars().take(REASON_CHARS_MAX).collect();
            tracing::info!(worker_id = %worker_id, reason, "owner is using the worker's machine");
            event(Event::WorkerPaused { worker_id, paused: true, reason })
        }
        WorkerMessage::Resume => {
            tracing::info!(worker_id = %worker_id, "owner's machine is idle again");
            event(Event::WorkerPaused { worker_id, paused: false, reason: String::new() })
        }
        WorkerMessage::Heartbeat { held, .. } | WorkerMessage::Hello { held, .. } => {
            let held = held.into_iter().map(|h| RunningTask { task_id: h.task_id, token: h.token }).collect();
            event(Event::Heartbeat { worker_id, held })
        }
        WorkerMessage::TaskDone { task_id, token, output, output_bytes, duration_ms, work_units, device } => {
            let device = device_name(&device);
            tracing::debug!(worker_id = %worker_id, task_id = %task_id, work_units, device, "task done");
            let failed = |error: String| Event::TaskFailed { worker_id: worker_id.clone(), task_id, token, error };
            let succeeded =
                Event::TaskSucceeded { worker_id: worker_id.clone(), task_id, token, output, duration_ms, device };
            let fits = |bytes: &Vec<u8>| bytes.len() <= INLINE_BLOB_BYTES_MAX && BlobId::of(bytes) == output;
            let inline = output_bytes.as_ref().filter(|bytes| fits(bytes)).map(Vec::as_slice);
            if let Some(reason) = malformed_output(state, &worker_id, task_id, token, output, inline).await {
                tracing::warn!(worker_id = %worker_id, task_id = %task_id, reason, "malformed output refused");
                return Ok(event(failed(format!("its output is malformed ({reason}); the task is tried again"))));
            }
            match output_bytes {
                Some(bytes) if bytes.len() > INLINE_BLOB_BYTES_MAX => event(failed(format!(
                    "inline output of {} bytes exceeds {INLINE_BLOB_BYTES_MAX}; upload it as a blob",
                    bytes.len()
                ))),
                Some(bytes) if BlobId::of(&bytes) != output => {
                    event(failed(format!("inline output does not hash to its id {output}")))
                }
                Some(bytes) => Command::Event { event: succeeded, blob: Some((output, Arc::from(bytes))) },
                // Only bytes this worker uploaded itself: naming a blob it
                // merely knows the id of would make it readable.
                None => match state.store.uploaded_by(output, &worker_id.0).await {
                    Ok(true) => event(succeeded),
                    Ok(false) => {
                        event(failed(format!("the worker reported output blob {output} but never uploaded it")))
                    }
                    Err(err) => event(failed(format!("the coordinator could not check output blob {output}: {err}"))),
                },
            }
        }
        WorkerMessage::TaskFailed { task_id, token, error } => {
            tracing::info!(worker_id = %worker_id, task_id = %task_id, error, "task failed on worker");
            event(Event::TaskFailed { worker_id, task_id, token, error })
        }
        // The session loop takes these before they get here.
        WorkerMessage::KeyWanted { .. } => {
            return Err(("bad_message", "a key request outside the session loop".to_owned()));
        }
        WorkerMessage::ChallengeReady { .. }
        | WorkerMessage::ChallengeCommitted { .. }
        | WorkerMessage::ChallengeAnswered { .. }
        | WorkerMessage::ChallengeRefused { .. } => {
            return Err(("bad_message", "a challenge message outside a challenge round".to_owned()));
        }
    })
}

/// The device name a worker reported for a finished task, fit to store and
/// show to people: surrounding whitespace trimmed, anything but printable
/// ASCII replaced by `?` (so no control sequence reaches a terminal), and
/// at most [`DEVICE_NAME_BYTES_MAX`] bytes. Empty when it named none.
fn device_name(reported: &str) -> String {
    reported
        .trim()
        .chars()
        .take(DEVICE_NAME_BYTES_MAX)
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_are_kept_printable_and_short() {
        assert_eq!(device_name("cpu0"), "cpu0");
        assert_eq!(device_name("  gpu1 \n"), "gpu1");
        assert_eq!(device_name("NVIDIA H100 80GB"), "NVIDIA H100 80GB");
        assert_eq!(device_name("gpu\u{1b}[31m0"), "gpu?[31m0");
        assert_eq!(device_name("gpü0"), "gp?0");
        assert_eq!(device_name(""), "");
        let long = device_name(&"é".repeat(1_000));
        assert_eq!(long.len(), DEVICE_NAME_BYTES_MAX);
        assert!(long.bytes().all(|b| b == b'?'));
        assert_eq!(device_name(&"x".repeat(65)), "x".repeat(64));
    }
}
