//! The connection task of one MQTT sink: it reports a publish as done only when the broker
//! acknowledged it.
//!
//! One task per sink owns the rumqttc client and event loop. Only that task hands publishes to
//! rumqttc, and only while connected, so the order in which it queued them is the order of
//! rumqttc's `Outgoing::Publish(pkid)` events: that is how each broker `PUBACK` is matched to
//! the delivery waiting for it. On any connection error every unconfirmed publish fails (the
//! daemon retries from its outbox); sessions are clean, so nothing stale is replayed later.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, Incoming, LastWill,
    Outgoing, QoS,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::MqttSettings;
use crate::SinkError;

/// One message to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OutMsg {
    pub(crate) topic: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
}

impl OutMsg {
    pub(crate) fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>, retain: bool) -> Self {
        OutMsg {
            topic: topic.into(),
            payload: payload.into(),
            qos: QoS::AtLeastOnce,
            retain,
        }
    }
}

/// What a sink wants to happen on connection events; runs inside the connection task.
pub(crate) trait LinkHooks: Send + 'static {
    /// Topics to subscribe to after every connect.
    fn subscriptions(&self) -> Vec<String> {
        Vec::new()
    }
    /// Messages to publish right after every connect (before anything queued).
    fn on_connect(&mut self) -> Vec<OutMsg> {
        Vec::new()
    }
    /// A message arrived; return a delay to have [`LinkHooks::on_republish`] called after it.
    fn on_message(&mut self, _topic: &str, _payload: &[u8]) -> Option<Duration> {
        None
    }
    /// The delayed re-publish asked for by `on_message`.
    fn on_republish(&mut self) -> Vec<OutMsg> {
        Vec::new()
    }
}

/// Hooks that do nothing.
pub(crate) struct NoHooks;
impl LinkHooks for NoHooks {}

/// The connection's state, as seen from the sink.
#[derive(Clone, Debug)]
pub(crate) enum LinkState {
    Connecting,
    Ready,
    Down(SinkError),
}

type Reply = oneshot::Sender<Result<(), SinkError>>;

enum Cmd {
    Publish {
        msgs: Vec<OutMsg>,
        deadline: Instant,
        reply: Reply,
    },
    Close {
        last: Vec<OutMsg>,
        reply: oneshot::Sender<()>,
    },
}

/// A handle on one broker connection (the task ends when the handle is dropped or closed).
pub(crate) struct MqttLink {
    cmd: mpsc::UnboundedSender<Cmd>,
    state: watch::Receiver<LinkState>,
    pub(crate) target: String,
    pub(crate) client_id: String,
    timeout: Duration,
}

impl MqttLink {
    /// Starts connecting in the background. Must be called inside a Tokio runtime.
    pub(crate) fn start(
        settings: &MqttSettings,
        suffix: &str,
        will: Option<LastWill>,
        hooks: Box<dyn LinkHooks>,
    ) -> MqttLink {
        let opts = settings.options(suffix, will);
        let client_id = opts.client_id();
        let (client, mut eventloop) = AsyncClient::new(opts, 1024);
        eventloop
            .network_options
            .set_connection_timeout(settings.timeout.as_secs().max(1));
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (state_tx, state_rx) = watch::channel(LinkState::Connecting);
        let task = Task {
            client,
            hooks,
            target: settings.target.clone(),
            ack_timeout: settings.timeout,
            state_tx,
            ready: false,
            has_login: settings.username.is_some(),
            last_error: None,
            queued: VecDeque::new(),
            fifo: VecDeque::new(),
            inflight: HashMap::new(),
            batches: HashMap::new(),
            next_batch: 0,
            reconnect_at: None,
            backoff: MIN_BACKOFF,
            republish_at: None,
        };
        tokio::spawn(task.run(eventloop, cmd_rx));
        MqttLink {
            cmd: cmd_tx,
            state: state_rx,
            target: settings.target.clone(),
            client_id,
            timeout: settings.timeout,
        }
    }

    /// Publishes `msgs` and waits until the broker acknowledged all of them (QoS 1/2) or they
    /// were written (QoS 0). Waits for a connection first, up to the timeout.
    pub(crate) async fn publish(&self, msgs: Vec<OutMsg>) -> Result<(), SinkError> {
        if msgs.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        let deadline = Instant::now() + self.timeout;
        self.cmd
            .send(Cmd::Publish {
                msgs,
                deadline,
                reply,
            })
            .map_err(|_| SinkError::connect(&self.target, "connection task ended"))?;
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(SinkError::connect(&self.target, "connection task ended")),
            Err(_) => Err(SinkError::timeout(&self.target, self.timeout)),
        }
    }

    /// Waits for the first answer of the connection (for `check`): connected, or the error of
    /// the first attempt at once — a refused TCP connection or login is reported when it
    /// happens, not after the timeout (which only bounds a broker that does not answer).
    pub(crate) async fn wait_ready(&self) -> Result<(), SinkError> {
        let mut state = self.state.clone();
        let waited = tokio::time::timeout(
            self.timeout,
            state.wait_for(|s| !matches!(s, LinkState::Connecting)),
        )
        .await;
        match waited {
            Ok(Ok(s)) => match &*s {
                LinkState::Down(e) => Err(e.clone()),
                _ => Ok(()),
            },
            Ok(Err(_)) => Err(SinkError::connect(&self.target, "connection task ended")),
            Err(_) => Err(SinkError::timeout(&self.target, self.timeout)),
        }
    }

    /// Publishes `last` (best effort, if connected) and disconnects cleanly.
    pub(crate) async fn close(&self, last: Vec<OutMsg>) {
        let (reply, rx) = oneshot::channel();
        if self.cmd.send(Cmd::Close { last, reply }).is_ok() {
            let _ = tokio::time::timeout(self.timeout + Duration::from_secs(1), rx).await;
        }
    }
}

const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

struct Queued {
    msgs: Vec<OutMsg>,
    deadline: Instant,
    reply: Reply,
}

struct Batch {
    remaining: usize,
    deadline: Instant,
    reply: Reply,
}

struct Task {
    client: AsyncClient,
    hooks: Box<dyn LinkHooks>,
    target: String,
    ack_timeout: Duration,
    state_tx: watch::Sender<LinkState>,
    ready: bool,
    has_login: bool,
    last_error: Option<SinkError>,
    /// Publishes waiting for a connection.
    queued: VecDeque<Queued>,
    /// Batches of the publishes handed to rumqttc, in order, until their pkid is known.
    fifo: VecDeque<(Option<u64>, QoS)>,
    /// pkid → batch, until the broker acknowledges.
    inflight: HashMap<u16, Option<u64>>,
    batches: HashMap<u64, Batch>,
    next_batch: u64,
    reconnect_at: Option<Instant>,
    backoff: Duration,
    republish_at: Option<Instant>,
}

enum Step {
    Cmd(Option<Cmd>),
    Deadline,
    Republish,
    Reconnect,
    Event(Result<Event, ConnectionError>),
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Task {
    async fn run(mut self, mut eventloop: EventLoop, mut cmd_rx: mpsc::UnboundedReceiver<Cmd>) {
        loop {
            let now = Instant::now();
            let deadline = self.next_deadline();
            let reconnect_wait = self.reconnect_at.filter(|at| *at > now);
            let republish = self.republish_at.filter(|_| self.ready);
            let step = tokio::select! {
                biased;
                cmd = cmd_rx.recv() => Step::Cmd(cmd),
                _ = sleep_until_opt(deadline), if deadline.is_some() => Step::Deadline,
                _ = sleep_until_opt(republish), if republish.is_some() => Step::Republish,
                _ = sleep_until_opt(reconnect_wait), if reconnect_wait.is_some() => Step::Reconnect,
                ev = eventloop.poll(), if reconnect_wait.is_none() => Step::Event(ev),
            };
            match step {
                Step::Cmd(None) => {
                    self.close(&mut eventloop, Vec::new()).await;
                    return;
                }
                Step::Cmd(Some(Cmd::Publish {
                    msgs,
                    deadline,
                    reply,
                })) => {
                    if self.ready {
                        self.enqueue_batch(msgs, deadline, reply);
                    } else {
                        self.queued.push_back(Queued {
                            msgs,
                            deadline,
                            reply,
                        });
                    }
                }
                Step::Cmd(Some(Cmd::Close { last, reply })) => {
                    self.close(&mut eventloop, last).await;
                    let _ = reply.send(());
                    return;
                }
                Step::Deadline => self.expire(&mut eventloop),
                Step::Republish => {
                    self.republish_at = None;
                    let msgs = self.hooks.on_republish();
                    self.enqueue_untracked(msgs);
                }
                Step::Reconnect => self.reconnect_at = None,
                Step::Event(ev) => self.on_event(ev),
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let q = self.queued.iter().map(|q| q.deadline);
        let b = self.batches.values().map(|b| b.deadline);
        q.chain(b).min()
    }

    fn enqueue_batch(&mut self, msgs: Vec<OutMsg>, deadline: Instant, reply: Reply) {
        if msgs.is_empty() {
            let _ = reply.send(Ok(()));
            return;
        }
        let id = self.next_batch;
        self.next_batch += 1;
        self.batches.insert(
            id,
            Batch {
                remaining: msgs.len(),
                deadline,
                reply,
            },
        );
        for msg in msgs {
            let qos = msg.qos;
            let topic = msg.topic;
            if let Err(e) = self
                .client
                .try_publish(&topic, qos, msg.retain, msg.payload)
            {
                let err =
                    SinkError::rejected(&self.target, format!("cannot publish to {topic}: {e}"));
                self.finish_batch(id, Err(err));
                return;
            }
            self.fifo.push_back((Some(id), qos));
        }
    }

    fn enqueue_untracked(&mut self, msgs: Vec<OutMsg>) {
        for msg in msgs {
            let qos = msg.qos;
            match self
                .client
                .try_publish(&msg.topic, qos, msg.retain, msg.payload)
            {
                Ok(()) => self.fifo.push_back((None, qos)),
                Err(e) => {
                    tracing::warn!(target = %self.target, topic = %msg.topic, error = %e, "MQTT publish not queued")
                }
            }
        }
    }

    fn finish_batch(&mut self, id: u64, result: Result<(), SinkError>) {
        if let Some(batch) = self.batches.remove(&id) {
            let _ = batch.reply.send(result);
        }
    }

    fn confirm(&mut self, batch: Option<u64>) {
        let Some(id) = batch else { return };
        let done = match self.batches.get_mut(&id) {
            Some(b) => {
                b.remaining = b.remaining.saturating_sub(1);
                b.remaining == 0
            }
            None => false,
        };
        if done {
            self.finish_batch(id, Ok(()));
        }
    }

    /// Fails everything handed to rumqttc (its fate is unknown after a connection loss).
    fn fail_unconfirmed(&mut self, err: &SinkError) {
        self.fifo.clear();
        self.inflight.clear();
        for (_, batch) in self.batches.drain() {
            let _ = batch.reply.send(Err(err.clone()));
        }
    }

    fn expire(&mut self, eventloop: &mut EventLoop) {
        let now = Instant::now();
        let mut keep = VecDeque::new();
        for q in self.queued.drain(..) {
            if q.deadline <= now {
                let err = self
                    .last_error
                    .clone()
                    .unwrap_or_else(|| SinkError::timeout(&self.target, self.ack_timeout));
                let _ = q.reply.send(Err(err));
            } else {
                keep.push_back(q);
            }
        }
        self.queued = keep;
        let expired = self.batches.values().any(|b| b.deadline <= now);
        if expired {
            // The broker stopped acknowledging: start over on a fresh connection, failing
            // everything unconfirmed so that pkids never get matched across connections.
            tracing::warn!(target = %self.target, "MQTT broker did not acknowledge in time; reconnecting");
            let err = SinkError::timeout(&self.target, self.ack_timeout);
            self.fail_unconfirmed(&err);
            eventloop.clean();
            self.set_down(err);
        }
    }

    fn set_down(&mut self, err: SinkError) {
        self.ready = false;
        self.last_error = Some(err.clone());
        let _ = self.state_tx.send(LinkState::Down(err));
    }

    fn on_event(&mut self, ev: Result<Event, ConnectionError>) {
        match ev {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                tracing::info!(target = %self.target, "MQTT connected");
                self.ready = true;
                self.backoff = MIN_BACKOFF;
                self.last_error = None;
                let _ = self.state_tx.send(LinkState::Ready);
                for topic in self.hooks.subscriptions() {
                    if let Err(e) = self.client.try_subscribe(&topic, QoS::AtLeastOnce) {
                        tracing::warn!(target = %self.target, %topic, error = %e, "MQTT subscribe not queued");
                    }
                }
                let first = self.hooks.on_connect();
                self.enqueue_untracked(first);
                let now = Instant::now();
                for q in std::mem::take(&mut self.queued) {
                    if q.deadline > now {
                        self.enqueue_batch(q.msgs, q.deadline, q.reply);
                    } else {
                        let _ = q
                            .reply
                            .send(Err(SinkError::timeout(&self.target, self.ack_timeout)));
                    }
                }
            }
            Ok(Event::Incoming(Incoming::Publish(p))) => {
                if let Some(delay) = self.hooks.on_message(&p.topic, &p.payload) {
                    let at = Instant::now() + delay;
                    self.republish_at = Some(self.republish_at.map_or(at, |t| t.min(at)));
                }
            }
            Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                if let Some(batch) = self.inflight.remove(&ack.pkid) {
                    self.confirm(batch);
                }
            }
            Ok(Event::Incoming(Incoming::PubComp(comp))) => {
                if let Some(batch) = self.inflight.remove(&comp.pkid) {
                    self.confirm(batch);
                }
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => match self.fifo.pop_front() {
                Some((batch, QoS::AtMostOnce)) => self.confirm(batch),
                Some((batch, _)) => {
                    self.inflight.insert(pkid, batch);
                }
                None => tracing::debug!(pkid, "MQTT publish without a waiter"),
            },
            Ok(_) => {}
            Err(e) => {
                let mut err = classify(&self.target, &e);
                if !self.ready && self.has_login {
                    if let (
                        ConnectionError::MqttState(rumqttc::StateError::ConnectionAborted),
                        SinkError::Connect { detail, .. },
                    ) = (&e, &mut err)
                    {
                        // Some brokers (rumqttd) drop a bad login without a CONNACK code.
                        detail.push_str(" during login (wrong username or password?)");
                    }
                }
                if self.ready {
                    tracing::warn!(target = %self.target, error = %err, "MQTT connection lost");
                } else {
                    tracing::debug!(target = %self.target, error = %err, "MQTT connect failed");
                }
                self.fail_unconfirmed(&err);
                self.set_down(err);
                self.reconnect_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    async fn close(&mut self, eventloop: &mut EventLoop, last: Vec<OutMsg>) {
        let until = Instant::now() + self.ack_timeout.min(Duration::from_secs(3));
        if self.ready && !last.is_empty() {
            let (reply, mut rx) = oneshot::channel();
            self.enqueue_batch(last, until, reply);
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    ev = tokio::time::timeout_at(until, eventloop.poll()) => match ev {
                        Ok(Ok(ev)) => self.on_event(Ok(ev)),
                        _ => break,
                    },
                }
            }
        }
        for q in self.queued.drain(..) {
            let _ = q
                .reply
                .send(Err(SinkError::connect(&self.target, "connection closed")));
        }
        self.fail_unconfirmed(&SinkError::connect(&self.target, "connection closed"));
        if self.ready && self.client.try_disconnect().is_ok() {
            loop {
                match tokio::time::timeout_at(until, eventloop.poll()).await {
                    Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(_)) => {}
                }
            }
        }
        self.ready = false;
    }
}

/// Turns a rumqttc connection error into our kinds (a refused login is `auth`).
fn classify(target: &str, e: &ConnectionError) -> SinkError {
    match e {
        ConnectionError::ConnectionRefused(
            code @ (ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized),
        ) => SinkError::auth(target, format!("broker refused the login ({code:?})")),
        ConnectionError::ConnectionRefused(code) => {
            SinkError::connect(target, format!("broker refused the connection ({code:?})"))
        }
        ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout => {
            SinkError::connect(target, "network timeout")
        }
        ConnectionError::Tls(e) => SinkError::connect(target, format!("TLS: {e}")),
        other => SinkError::connect(target, other.to_string()),
    }
}
