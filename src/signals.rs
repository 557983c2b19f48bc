//! Process signals delivered to the threads that act on them, without polling: SIGTERM and
//! SIGINT stop the gateway, SIGHUP reloads the config file.
//!
//! Each subscriber owns one end of a Unix socket pair; the signal thread writes one byte per
//! event to the other end. A monoio runtime awaits a read on its end like any other socket, a
//! plain thread blocks on it, so a worker wakes the moment a signal arrives and not at all
//! otherwise.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

/// What a subscriber is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Stop: drain and exit. Nothing follows it.
    Stop,
    /// Reload the config file.
    Reload,
}

const STOP: u8 = b'S';
const RELOAD: u8 = b'R';

/// The process's stop and reload requests, and who hears them. Cheap to clone.
#[derive(Clone, Default)]
pub struct Signals {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    stopped: bool,
    subscribers: Vec<UnixStream>,
}

impl Signals {
    /// Forwards SIGTERM and SIGINT to [`Signals::stop`], SIGHUP to [`Signals::reload`], from a
    /// dedicated thread.
    pub fn install(&self) -> std::io::Result<()> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut incoming = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        let this = self.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in incoming.forever() {
                    if sig == SIGHUP {
                        log::info!("SIGHUP: reloading the config file");
                        this.reload();
                        continue;
                    }
                    log::info!("signal {sig}: stopping (draining in-flight requests)");
                    this.stop();
                    break;
                }
            })?;
        Ok(())
    }

    /// A new subscriber: it hears every event from now on (and `Stop` at once if the process
    /// is already stopping).
    pub fn subscribe(&self) -> std::io::Result<Subscription> {
        let (ours, theirs) = UnixStream::pair()?;
        // The signal thread must never block on a subscriber that stopped reading.
        ours.set_nonblocking(true)?;
        let mut inner = self.lock();
        if inner.stopped {
            let _ = (&ours).write_all(&[STOP]);
        }
        inner.subscribers.push(ours);
        Ok(Subscription(theirs))
    }

    /// Tells every subscriber to stop.
    pub fn stop(&self) {
        let mut inner = self.lock();
        inner.stopped = true;
        inner.subscribers.retain(|s| deliver(s, STOP));
    }

    /// Tells every subscriber to reload.
    pub fn reload(&self) {
        let mut inner = self.lock();
        if !inner.stopped {
            inner.subscribers.retain(|s| deliver(s, RELOAD));
        }
    }

    /// True once stop was requested.
    pub fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves nothing half-done: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes the event; false when the subscriber is gone (its end closed). A full buffer means
/// unread events are already queued, which say as much.
fn deliver(mut subscriber: &UnixStream, byte: u8) -> bool {
    match subscriber.write_all(&[byte]) {
        Ok(()) => true,
        Err(e) => e.kind() == ErrorKind::WouldBlock,
    }
}

/// One subscriber's end: read its events on a plain thread ([`Subscription::next_blocking`]) or
/// in a monoio runtime ([`Subscription::into_async`]).
pub struct Subscription(UnixStream);

impl Subscription {
    /// The next event, blocking the thread. `Stop` when the sender is gone.
    pub fn next_blocking(&mut self) -> Event {
        let mut byte = [0u8; 1];
        loop {
            match self.0.read(&mut byte) {
                Ok(1) => return decode(byte[0]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                _ => return Event::Stop,
            }
        }
    }

    /// The subscription on the current monoio runtime (call it on the thread that awaits it).
    pub fn into_async(self) -> std::io::Result<AsyncSubscription> {
        self.0.set_nonblocking(true)?;
        Ok(AsyncSubscription(monoio::net::UnixStream::from_std(
            self.0,
        )?))
    }
}

/// A subscription a monoio task awaits.
pub struct AsyncSubscription(monoio::net::UnixStream);

impl AsyncSubscription {
    /// The next event. `Stop` when the sender is gone.
    pub async fn next(&mut self) -> Event {
        use monoio::io::AsyncReadRent;
        let (result, buf) = self.0.read(Vec::with_capacity(1)).await;
        match result {
            Ok(1) => decode(buf[0]),
            _ => Event::Stop,
        }
    }
}

fn decode(byte: u8) -> Event {
    if byte == RELOAD {
        Event::Reload
    } else {
        Event::Stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_hear_reloads_then_stop() {
        let signals = Signals::default();
        let mut early = signals.subscribe().expect("subscribe");
        signals.reload();
        signals.stop();
        signals.reload(); // after stop: nothing more
        assert_eq!(early.next_blocking(), Event::Reload);
        assert_eq!(early.next_blocking(), Event::Stop);
        // A subscriber that comes after the stop hears it at once.
        let mut late = signals.subscribe().expect("subscribe");
        assert_eq!(late.next_blocking(), Event::Stop);
        assert!(signals.is_stopped());
    }

    #[test]
    fn a_runtime_wakes_on_the_event_on_both_drivers() {
        fn run<D: monoio::Driver>(mut rt: monoio::Runtime<D>) {
            let signals = Signals::default();
            let sub = signals.subscribe().expect("subscribe");
            let sender = signals.clone();
            let t = std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                sender.reload();
                sender.stop();
            });
            let events = rt.block_on(async move {
                let mut sub = sub.into_async().expect("async");
                [sub.next().await, sub.next().await]
            });
            t.join().expect("sender");
            assert_eq!(events, [Event::Reload, Event::Stop]);
        }
        run(monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .expect("epoll runtime"));
        if monoio::utils::detect_uring() {
            run(monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .build()
                .expect("io_uring runtime"));
        }
    }

    #[test]
    fn a_gone_subscriber_is_dropped() {
        let signals = Signals::default();
        drop(signals.subscribe().expect("subscribe"));
        signals.reload();
        assert!(signals.lock().subscribers.is_empty());
    }
}
