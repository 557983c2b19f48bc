//! The etcd control thread: loads a fleet's configuration, watches it, writes the Admin API's
//! changes with compare-and-swap, and keeps the local last-known-good copy.
//!
//! The whole configuration is **one document under one key** (`<prefix>/config`, YAML or
//! JSON; the Admin API writes JSON). The Admin API validates and writes the whole document on
//! every change already, so one key makes each change one atomic compare-and-swap on that
//! key's revision, a change touching many entities (a cascade delete) included, and a reader
//! never sees half of one. etcd's request limit (1.5 MiB by default) bounds the document.
//!
//! After any break (a lost member, a restart of etcd) the thread reads the key again and
//! watches from the revision of that read: nothing is missed, and a compacted history cannot
//! matter since only the newest document counts.

use super::publish::Publisher;
use super::url::EtcdLocation;
use crate::config::environment::Environment;
use crate::config::{self, snapshot, Config, Snapshot};
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, Identity, TlsOptions, Txn,
    TxnOp, TxnOpResponse, WatchOptions,
};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime};

/// `future`'s output if it is ready at the first poll (no timer: a zero timeout would wait
/// for the timer's next millisecond tick).
async fn ready_now<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        std::task::Poll::Ready(output) => std::task::Poll::Ready(Some(output)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

/// Most revisions gathered into one batch before the newest is applied.
const MAX_BATCH: usize = 1000;
/// Documents a batch keeps, newest last, in case the newest ones do not validate.
const BATCH_KEEP: usize = 8;

/// Revisions received together (see the watch loop).
#[derive(Default)]
struct Batch {
    /// The last [`BATCH_KEEP`] documents with their revisions, in revision order.
    kept: std::collections::VecDeque<(Vec<u8>, i64)>,
    newest: Option<i64>,
    revisions: usize,
}

impl Batch {
    fn push(&mut self, document: &[u8], revision: i64) {
        if self.kept.len() == BATCH_KEEP {
            self.kept.pop_front();
        }
        self.kept.push_back((document.to_vec(), revision));
        self.newest = Some(revision);
        self.revisions += 1;
    }
}

/// How long a node waits for etcd at start before it serves its local copy.
const STARTUP_WAIT: Duration = Duration::from_secs(5);
/// Bound on one etcd request (a read or a write).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnection backoff.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// TLS files for etcd (`--etcd-cacert`, `--etcd-cert`, `--etcd-key`).
#[derive(Clone, Debug, Default)]
pub struct EtcdTls {
    /// CA bundle the members' certificates are checked against; set, the connection is TLS.
    pub ca: Option<PathBuf>,
    /// Client certificate (with `key`) for etcd's client certificate authentication.
    pub cert: Option<PathBuf>,
    /// Its private key.
    pub key: Option<PathBuf>,
}

/// How to reach etcd, and where the local copy is.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// Members, prefix and credentials.
    pub location: EtcdLocation,
    /// TLS files.
    pub tls: EtcdTls,
    /// The last-known-good copy (`--config-cache`).
    pub cache: PathBuf,
}

/// Where a node's first configuration came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// etcd answered.
    Etcd,
    /// etcd did not answer in time: the local copy.
    Cache,
    /// Neither: nothing to serve until etcd answers.
    Empty,
}

/// The configuration a node starts with.
pub struct Initial {
    /// The configuration.
    pub config: Config,
    /// The etcd revision it is (0: none).
    pub revision: i64,
    /// Where it came from.
    pub origin: Origin,
}

/// Why an Admin API write was not applied.
#[derive(Debug)]
pub enum WriteError {
    /// Another node changed the configuration first (now at `revision`).
    Conflict {
        /// The key's revision now.
        revision: i64,
        /// The configuration at that revision (read in the same transaction), for the change
        /// to be made again on top of it; `None` if that document does not validate.
        newest: Option<Box<Config>>,
    },
    /// etcd could not be reached or did not answer; the change may or may not have been
    /// applied (a lost answer): the watch will say.
    Unavailable(String),
}

/// The store's health, for `GET /status`.
#[derive(Clone, Debug, Default)]
pub struct Health {
    /// The watch is established.
    pub watching: bool,
    /// The revision applied last.
    pub revision: i64,
    /// The last failure, if the watch is not established.
    pub error: Option<String>,
    /// Since when the watch has been in its current state.
    pub since: Option<SystemTime>,
}

/// A revision the control thread applied, for the Admin API's store to catch up with.
pub struct Applied {
    /// The configuration.
    pub config: Config,
    /// Its revision.
    pub revision: i64,
    /// etcd went back to an older revision (restored from a backup, or a new cluster): take
    /// this one although it is not newer.
    pub reset: bool,
}

enum Request {
    Write {
        document: Vec<u8>,
        expected: i64,
        reply: mpsc::SyncSender<Result<i64, WriteError>>,
    },
    Read {
        reply: mpsc::SyncSender<Result<Newest, String>>,
    },
}

/// The key as etcd has it now: its revision, and its configuration (`None` if the document
/// there does not validate).
pub struct Newest {
    /// The key's revision.
    pub revision: i64,
    /// Its configuration.
    pub config: Option<Box<Config>>,
}

/// What the control thread and the Admin API's store share.
struct Shared {
    health: Mutex<Health>,
    /// The newest revision applied that the store has not taken yet (only the newest
    /// matters, so nothing queues up when nobody takes them).
    applied: Mutex<Option<Applied>>,
}

/// The Admin API's handle on the control thread.
pub struct EtcdStore {
    options: EtcdOptions,
    requests: tokio::sync::mpsc::UnboundedSender<Request>,
    shared: Arc<Shared>,
    /// Publishes snapshots in revision order (shared with the control thread).
    pub publisher: Arc<Publisher>,
}

impl EtcdStore {
    /// Writes `document` if the key is still at revision `expected`; the new revision once
    /// etcd acknowledged it.
    pub fn write(&self, document: Vec<u8>, expected: i64) -> Result<i64, WriteError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let request = Request::Write {
            document,
            expected,
            reply,
        };
        if self.requests.send(request).is_err() {
            return Err(WriteError::Unavailable(
                "the etcd thread has stopped".into(),
            ));
        }
        answer
            .recv_timeout(REQUEST_TIMEOUT + Duration::from_secs(1))
            .unwrap_or_else(|_| {
                Err(WriteError::Unavailable(format!(
                    "etcd did not answer within {REQUEST_TIMEOUT:?}"
                )))
            })
    }

    /// Reads the key now (a linearizable read: every change acknowledged anywhere is in it),
    /// for a change to be made against the newest configuration, not only what the watch
    /// delivered so far.
    pub fn read_newest(&self) -> Result<Newest, String> {
        let (reply, answer) = mpsc::sync_channel(1);
        if self.requests.send(Request::Read { reply }).is_err() {
            return Err("the etcd thread has stopped".into());
        }
        answer
            .recv_timeout(REQUEST_TIMEOUT + Duration::from_secs(1))
            .unwrap_or_else(|_| Err(format!("etcd did not answer within {REQUEST_TIMEOUT:?}")))
    }

    /// The newest revision applied since the last call, if any.
    pub fn take_applied(&self) -> Option<Applied> {
        lock(&self.shared.applied).take()
    }

    /// The watch's health.
    pub fn health(&self) -> Health {
        lock(&self.shared.health).clone()
    }

    /// Where the configuration is.
    pub fn options(&self) -> &EtcdOptions {
        &self.options
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the control thread needs once the node has built its first snapshot.
struct Go {
    env: Environment,
    publisher: Arc<Publisher>,
}

/// A started control thread, waiting for [`Starter::watch`].
pub struct Starter {
    options: EtcdOptions,
    go: tokio::sync::oneshot::Sender<Go>,
    requests: tokio::sync::mpsc::UnboundedSender<Request>,
    shared: Arc<Shared>,
}

impl Starter {
    /// Lets the thread watch etcd and apply changes to `published` (now at `revision`).
    pub fn watch(
        self,
        env: Environment,
        published: Arc<arc_swap::ArcSwap<Snapshot>>,
        revision: i64,
    ) -> EtcdStore {
        let publisher = Arc::new(Publisher::new(published, revision));
        let _ = self.go.send(Go {
            env,
            publisher: publisher.clone(),
        });
        EtcdStore {
            options: self.options,
            requests: self.requests,
            shared: self.shared,
            publisher,
        }
    }
}

/// Starts the control thread and returns the configuration to start with: etcd's, else (etcd
/// not answering within 5 s) the local copy's, else an empty one. Errors are local problems
/// (unreadable TLS files, no thread).
pub fn start(options: EtcdOptions) -> Result<(Initial, Starter), String> {
    let connect = connect_options(&options)?;
    let (initial_tx, initial_rx) = mpsc::channel();
    let (go, go_rx) = tokio::sync::oneshot::channel::<Go>();
    let (requests, requests_rx) = tokio::sync::mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        health: Mutex::new(Health::default()),
        applied: Mutex::new(None),
    });
    let thread_options = options.clone();
    let thread_shared = shared.clone();
    std::thread::Builder::new()
        .name("etcd".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let runtime = match runtime {
                Ok(r) => r,
                Err(e) => {
                    let _ = initial_tx.send(Err(format!("cannot start the etcd runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                let mut control = Control {
                    key: thread_options.location.config_key(),
                    options: thread_options,
                    connect,
                    shared: thread_shared,
                    env: Environment::default(),
                    publisher: None,
                    applied: 0,
                };
                let (initial, client) = control.first_load().await;
                control.applied = initial.revision;
                if initial_tx.send(Ok(initial)).is_err() {
                    return;
                }
                let Ok(go) = go_rx.await else { return };
                control.env = go.env;
                control.publisher = Some(go.publisher);
                control.serve(client, requests_rx).await;
            });
        })
        .map_err(|e| format!("cannot start the etcd thread: {e}"))?;
    let initial = initial_rx
        .recv()
        .map_err(|_| "the etcd thread stopped".to_string())??;
    Ok((
        initial,
        Starter {
            options,
            go,
            requests,
            shared,
        },
    ))
}

fn connect_options(options: &EtcdOptions) -> Result<ConnectOptions, String> {
    let mut connect = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(REQUEST_TIMEOUT)
        .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3))
        // A member cut off from the others must not answer with what it had.
        .with_require_leader(true);
    let env_user = std::env::var("ETCD_USERNAME")
        .ok()
        .filter(|u| !u.is_empty());
    let user = options
        .location
        .user
        .clone()
        .or_else(|| env_user.map(|u| (u, std::env::var("ETCD_PASSWORD").unwrap_or_default())));
    if let Some((name, password)) = user {
        connect = connect.with_user(name, password);
    }
    let tls = &options.tls;
    if let Some(ca) = &tls.ca {
        let read =
            |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        let mut config = TlsOptions::new().ca_certificate(Certificate::from_pem(read(ca)?));
        match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => {
                config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            (None, None) => {}
            _ => return Err("--etcd-cert and --etcd-key go together".into()),
        }
        connect = connect.with_tls(config);
    } else if tls.cert.is_some() || tls.key.is_some() {
        return Err("--etcd-cert and --etcd-key need --etcd-cacert (TLS to etcd)".into());
    }
    Ok(connect)
}

/// The control thread's state.
struct Control {
    options: EtcdOptions,
    connect: ConnectOptions,
    key: String,
    shared: Arc<Shared>,
    env: Environment,
    publisher: Option<Arc<Publisher>>,
    /// The newest revision seen and applied (or found invalid).
    applied: i64,
}

impl Control {
    fn endpoints(&self) -> Vec<String> {
        let scheme = if self.options.tls.ca.is_some() {
            "https"
        } else {
            "http"
        };
        let endpoints = &self.options.location.endpoints;
        endpoints
            .iter()
            .map(|e| format!("{scheme}://{e}"))
            .collect()
    }

    async fn connect(&self) -> Result<Client, String> {
        let connecting = Client::connect(self.endpoints(), Some(self.connect.clone()));
        match tokio::time::timeout(REQUEST_TIMEOUT, connecting).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no member answered within {REQUEST_TIMEOUT:?}")),
        }
    }

    /// Reads the key: its document and revision (0 and empty when absent), and the store's
    /// revision at the read.
    async fn read(&self, client: &mut Client) -> Result<(Vec<u8>, i64, i64), String> {
        let got = tokio::time::timeout(REQUEST_TIMEOUT, client.get(self.key.as_str(), None))
            .await
            .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())?;
        let store_revision = got.header().map_or(0, |h| h.revision());
        Ok(match got.kvs().first() {
            Some(kv) => (kv.value().to_vec(), kv.mod_revision(), store_revision),
            None => (Vec::new(), 0, store_revision),
        })
    }

    /// The first configuration: etcd's if it answers within [`STARTUP_WAIT`], else the local
    /// copy, else empty.
    async fn first_load(&mut self) -> (Initial, Option<Client>) {
        let attempt = async {
            let mut client = self.connect().await?;
            let (document, revision, _) = self.read(&mut client).await?;
            Ok::<_, String>((client, document, revision))
        };
        let failure = match tokio::time::timeout(STARTUP_WAIT, attempt).await {
            Ok(Ok((client, document, revision))) => match parse(&document) {
                Ok(config) => {
                    log::info!(
                        "configuration from {} at revision {revision}",
                        self.options.location
                    );
                    self.save_copy(&config, revision);
                    let initial = Initial {
                        config,
                        revision,
                        origin: Origin::Etcd,
                    };
                    return (initial, Some(client));
                }
                Err(why) => format!("revision {revision} is not a valid configuration: {why}"),
            },
            Ok(Err(why)) => why,
            Err(_) => format!("no answer within {STARTUP_WAIT:?}"),
        };
        self.set_health(false, Some(failure.clone()));
        let cache = &self.options.cache;
        match read_copy(cache) {
            Some((config, revision)) => {
                log::error!(
                    "etcd {} cannot be used ({failure}): serving the local copy {} (revision {revision}) until it can",
                    self.options.location,
                    cache.display()
                );
                let initial = Initial {
                    config,
                    revision,
                    origin: Origin::Cache,
                };
                (initial, None)
            }
            None => {
                log::error!(
                    "etcd {} cannot be used ({failure}) and there is no local copy at {}: serving an empty configuration until it can",
                    self.options.location,
                    cache.display()
                );
                let initial = Initial {
                    config: Config::default(),
                    revision: 0,
                    origin: Origin::Empty,
                };
                (initial, None)
            }
        }
    }

    /// Keeps the configuration current for as long as the process runs.
    async fn serve(
        &mut self,
        mut client: Option<Client>,
        mut requests: tokio::sync::mpsc::UnboundedReceiver<Request>,
    ) {
        let mut backoff = MIN_BACKOFF;
        loop {
            let mut c = match client.take() {
                Some(c) => c,
                None => match self.connect().await {
                    Ok(c) => c,
                    Err(why) => {
                        self.down(why);
                        if !self.pause(None, &mut requests, backoff).await {
                            return;
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                },
            };
            // Catch up with one read, then watch from the revision of that read.
            let from = match self.read(&mut c).await {
                Ok((document, revision, store_revision)) => {
                    if revision < self.applied {
                        log::warn!(
                            "{} is at revision {revision}, older than the {} applied: etcd was restored or replaced; serving its configuration",
                            self.options.location,
                            self.applied
                        );
                        self.reset_to(&document, revision);
                    } else {
                        self.apply(&document, revision);
                    }
                    store_revision + 1
                }
                Err(why) => {
                    self.down(why);
                    if !self.pause(Some(&mut c), &mut requests, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    client = Some(c);
                    continue;
                }
            };
            let options = WatchOptions::new().with_start_revision(from);
            let mut watch = match c.watch(self.key.as_str(), Some(options)).await {
                Ok(w) => w,
                Err(e) => {
                    self.down(e.to_string());
                    if !self.pause(Some(&mut c), &mut requests, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    client = Some(c);
                    continue;
                }
            };
            self.set_health(true, None);
            backoff = MIN_BACKOFF;
            log::info!("watching {} from revision {from}", self.options.location);
            loop {
                tokio::select! {
                    message = watch.message() => {
                        // Responses already received join this one: a node that fell behind
                        // builds a snapshot of the newest document, not one per revision.
                        let mut batch = Batch::default();
                        let mut next = message;
                        let ended = loop {
                            match next {
                                Ok(Some(response)) if !response.canceled() => {
                                    for event in response.events() {
                                        let Some(kv) = event.kv() else { continue };
                                        let document = match event.event_type() {
                                            EventType::Put => kv.value(),
                                            EventType::Delete => b"",
                                        };
                                        batch.push(document, kv.mod_revision());
                                    }
                                    if batch.revisions >= MAX_BATCH {
                                        break None;
                                    }
                                    // The connection's task decodes what has arrived meanwhile.
                                    tokio::task::yield_now().await;
                                    match ready_now(watch.message()).await {
                                        Some(more) => next = more,
                                        None => break None,
                                    }
                                }
                                Ok(Some(response)) => {
                                    break Some(format!(
                                        "the watch was cancelled ({}; compacted at {})",
                                        response.cancel_reason(),
                                        response.compact_revision()
                                    ))
                                }
                                Ok(None) => break Some("the watch stream ended".to_string()),
                                Err(e) => break Some(e.to_string()),
                            }
                        };
                        self.apply_newest(batch);
                        if let Some(why) = ended {
                            self.down(why);
                            break;
                        }
                    },
                    request = requests.recv() => match request {
                        Some(request) => self.answer(Some(&mut c), request).await,
                        // The store is gone: the process is stopping.
                        None => return,
                    },
                }
            }
            // Watch again through the same client (its channel reconnects, to another member
            // if this one is gone) after a pause, during which writes still go through it.
            if !self.pause(Some(&mut c), &mut requests, backoff).await {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            client = Some(c);
        }
    }

    /// Waits `pause`, meanwhile writing through `client`, or without one answering that etcd
    /// cannot be reached; false when the store is gone (the process is stopping).
    async fn pause(
        &self,
        mut client: Option<&mut Client>,
        requests: &mut tokio::sync::mpsc::UnboundedReceiver<Request>,
        pause: Duration,
    ) -> bool {
        let until = tokio::time::Instant::now() + pause;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return true,
                request = requests.recv() => match request {
                    Some(request) => self.answer(client.as_deref_mut(), request).await,
                    None => return false,
                },
            }
        }
    }

    /// Answers the Admin API's store through `client` (none: etcd cannot be reached now).
    async fn answer(&self, client: Option<&mut Client>, request: Request) {
        let unreachable = "etcd cannot be reached now";
        match (request, client) {
            (
                Request::Write {
                    document,
                    expected,
                    reply,
                },
                Some(c),
            ) => {
                let _ = reply.send(self.write(c, document, expected).await);
            }
            (Request::Write { reply, .. }, None) => {
                let why = format!("{unreachable}; the change was not applied");
                let _ = reply.send(Err(WriteError::Unavailable(why)));
            }
            (Request::Read { reply }, Some(c)) => {
                let newest = self.read(c).await.map(|(document, revision, _)| Newest {
                    revision,
                    config: parse(&document).ok().map(Box::new),
                });
                let _ = reply.send(newest);
            }
            (Request::Read { reply }, None) => {
                let _ = reply.send(Err(unreachable.into()));
            }
        }
    }

    /// Compare-and-swap: `document` replaces the key if it is still at revision `expected`.
    async fn write(
        &self,
        client: &mut Client,
        document: Vec<u8>,
        expected: i64,
    ) -> Result<i64, WriteError> {
        let key = self.key.as_str();
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then([TxnOp::put(key, document, None)])
            .or_else([TxnOp::get(key, None)]);
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, client.txn(txn))
            .await
            .map_err(|_| {
                WriteError::Unavailable(format!("etcd did not answer within {REQUEST_TIMEOUT:?}"))
            })?
            .map_err(|e| WriteError::Unavailable(e.to_string()))?;
        if answer.succeeded() {
            return Ok(answer.header().map_or(expected, |h| h.revision()));
        }
        let (revision, newest) = answer
            .op_responses()
            .into_iter()
            .find_map(|r| match r {
                TxnOpResponse::Get(got) => Some(match got.kvs().first() {
                    Some(kv) => (kv.mod_revision(), parse(kv.value()).ok()),
                    None => (0, Some(Config::default())),
                }),
                _ => None,
            })
            .unwrap_or_default();
        Err(WriteError::Conflict {
            revision,
            newest: newest.map(Box::new),
        })
    }

    /// Applies a newer revision: validates, publishes, saves the local copy, tells the store.
    /// An invalid document (written to etcd by hand) is logged and skipped.
    fn apply(&mut self, document: &[u8], revision: i64) {
        if revision <= self.applied {
            return;
        }
        self.take(document, revision, false);
    }

    /// Applies the newest revision of a batch that validates (the batch's older ones are
    /// skipped: only the newest document counts); the batch's newest revision is then the
    /// one applied, as after an invalid revision.
    fn apply_newest(&mut self, batch: Batch) {
        let Some(newest) = batch.newest else {
            return;
        };
        if newest <= self.applied {
            return;
        }
        let mut built = None;
        for (document, revision) in batch.kept.iter().rev() {
            if *revision <= self.applied {
                break;
            }
            match parse(document) {
                Ok(config) => {
                    self.take_config(config, *revision, false);
                    built = Some(*revision);
                    break;
                }
                Err(why) => self.invalid(*revision, &why),
            }
        }
        if batch.revisions > 1 {
            log::info!(
                "{} revisions up to {newest} of {} arrived together: {}, the others skipped",
                batch.revisions,
                self.options.location,
                built.map_or("none valid".to_string(), |r| format!("revision {r} built"))
            );
        }
        self.applied = newest;
        lock(&self.shared.health).revision = newest;
    }

    /// Applies an older revision than the one applied: etcd went back in time.
    fn reset_to(&mut self, document: &[u8], revision: i64) {
        self.take(document, revision, true);
    }

    fn take(&mut self, document: &[u8], revision: i64, reset: bool) {
        match parse(document) {
            Ok(config) => self.take_config(config, revision, reset),
            Err(why) => {
                self.applied = revision;
                lock(&self.shared.health).revision = revision;
                self.invalid(revision, &why);
            }
        }
    }

    fn invalid(&self, revision: i64, why: &str) {
        log::error!(
            "{} revision {revision} is not a valid configuration, not applied: {why}",
            self.options.location
        );
    }

    /// Publishes a validated revision, saves the local copy, tells the store.
    fn take_config(&mut self, config: Config, revision: i64, reset: bool) {
        self.applied = revision;
        lock(&self.shared.health).revision = revision;
        // The store first: once the proxy serves this revision, Admin API changes are made
        // against it too.
        {
            // A reset not yet taken by the store stays one: what follows it is newer than
            // the reset, not than what the store had before.
            let mut slot = lock(&self.shared.applied);
            let reset = reset || slot.as_ref().is_some_and(|a| a.reset);
            *slot = Some(Applied {
                config: config.clone(),
                revision,
                reset,
            });
        }
        if let Some(publisher) = &self.publisher {
            if reset || revision > publisher.revision() {
                let mut published = false;
                snapshot::publish(&config, &self.env, |snapshot| {
                    published = if reset {
                        publisher.replace(revision, snapshot);
                        true
                    } else {
                        publisher.publish(revision, snapshot)
                    };
                });
                if published {
                    log::info!(
                        "applied revision {revision} from {}: {} services, {} routes, {} plugins",
                        self.options.location,
                        config.services.len(),
                        config.routes.len(),
                        config.plugins.len()
                    );
                }
            }
        }
        self.save_copy(&config, revision);
    }

    /// Writes the last-known-good copy; a failure is logged, never fatal.
    fn save_copy(&self, config: &Config, revision: i64) {
        let path = &self.options.cache;
        let result = config::persist::serialize(path, &config.to_document()).and_then(|bytes| {
            let mut out =
                format!("# {COPY_MARK} {revision} of {}\n", self.options.location).into_bytes();
            out.extend_from_slice(&bytes);
            config::persist::write_atomically(path, &out).map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            log::error!("cannot write the local copy {}: {e}", path.display());
        }
    }

    fn down(&self, why: String) {
        let was = lock(&self.shared.health).watching;
        if was {
            log::error!(
                "lost etcd {} ({why}): serving revision {} until it is back",
                self.options.location,
                self.applied
            );
        } else {
            log::debug!("etcd {} still unavailable: {why}", self.options.location);
        }
        self.set_health(false, Some(why));
    }

    fn set_health(&self, watching: bool, error: Option<String>) {
        let mut h = lock(&self.shared.health);
        if h.watching != watching || h.since.is_none() {
            h.since = Some(SystemTime::now());
        }
        h.watching = watching;
        h.error = error;
    }
}

/// What marks the local copy's first line, before its revision.
const COPY_MARK: &str = "lambda-gateway's last-known-good copy: revision";

/// A document from etcd: YAML or JSON; empty (no key) is the empty configuration.
fn parse(document: &[u8]) -> Result<Config, String> {
    if document.iter().all(u8::is_ascii_whitespace) {
        return Ok(Config::default());
    }
    let text = std::str::from_utf8(document).map_err(|e| format!("not UTF-8: {e}"))?;
    config::parse(text).map_err(|e| e.to_string().replace('\n', "; "))
}

/// The local copy and its revision, if there is a valid one.
fn read_copy(path: &Path) -> Option<(Config, i64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let revision = text
        .lines()
        .next()
        .and_then(|l| l.split(COPY_MARK).nth(1))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    match config::parse(&text) {
        Ok(config) => Some((config, revision)),
        Err(e) => {
            log::error!("the local copy {} is not valid: {e}", path.display());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_local_copies() {
        assert_eq!(parse(b"").unwrap().routes.len(), 0);
        assert_eq!(parse(b" \n").unwrap().routes.len(), 0);
        let yaml = b"_format_version: \"3.0\"\nroutes:\n- {name: r, paths: [/r]}\n";
        assert_eq!(parse(yaml).unwrap().routes.len(), 1);
        let json = br#"{"_format_version":"3.0","routes":[{"name":"r","paths":["/r"]}]}"#;
        assert_eq!(parse(json).unwrap().routes.len(), 1);
        assert!(parse(b"routes: 7").is_err());
        assert!(parse(&[0xff, 0xfe]).is_err());

        let dir = std::env::temp_dir().join(format!("lg-copy-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("copy.yml");
        assert!(read_copy(&path).is_none());
        let location = EtcdLocation::parse("etcd://127.0.0.1:1/t").unwrap();
        let control = Control {
            options: EtcdOptions {
                location,
                tls: EtcdTls::default(),
                cache: path.clone(),
            },
            connect: ConnectOptions::new(),
            key: "/t/config".into(),
            shared: Arc::new(Shared {
                health: Mutex::new(Health::default()),
                applied: Mutex::new(None),
            }),
            env: Environment::default(),
            publisher: None,
            applied: 0,
        };
        control.save_copy(&parse(yaml).unwrap(), 42);
        let (config, revision) = read_copy(&path).expect("a copy");
        assert_eq!((config.routes.len(), revision), (1, 42));
        std::fs::write(&path, "routes: 7").unwrap();
        assert!(read_copy(&path).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
