//! Tunnels we take down ourselves (disable, a reload that changed them, shutdown) end
//! their BGP session first: the Cease goes out over the tunnel while it still carries
//! it, so the peer moves its traffic to the other tunnel before the IKE DELETE takes the
//! SAs away. A BGP peer that does not tie its sessions to IKE (BIRD, a cloud's router)
//! would otherwise keep routing into the deleted SAs until its hold timer ran out. The
//! tunnel goes down [`SETTLE`] after the goodbye is over (the peer closed the connection),
//! or after [`GOODBYE_MAX`] at the latest; the control request that asked for it is
//! answered then.

use super::status::Response;
use crate::config;
use crate::routing::TunnelId;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;

/// How long a tunnel stays up after its goodbye is over: the kernel acknowledged the
/// peer's FIN just before our read saw it, and that last ACK is still on its way through
/// the TUN device and the dataplane (the peer would otherwise retransmit its FIN into a
/// tunnel that is gone).
pub const SETTLE: Duration = Duration::from_millis(50);

/// Longest a tunnel waits for its BGP goodbye: the Cease is one write, then the session
/// waits up to half a second for the peer to close.
pub const GOODBYE_MAX: Duration = Duration::from_secs(1);

/// What happens to a tunnel once it is down.
#[derive(Debug)]
pub enum Then {
    /// Disabled: it stays down.
    StayDown,
    /// A reload changed it: it negotiates afresh with this engine and config.
    Restart(Box<(ike::Tunnel, config::Tunnel)>),
    /// The daemon stops: shutdown takes every tunnel down itself.
    Shutdown,
}

#[derive(Debug)]
struct Leaving {
    id: TunnelId,
    /// The ending BGP session's generation: a late report of an older one is no news.
    generation: u16,
    deadline: Instant,
    /// The goodbye is over; the deadline is the end of the settling.
    said: bool,
    then: Then,
}

/// A control request answered once the tunnels it takes down are down.
#[derive(Debug)]
struct Waiter {
    ids: Vec<TunnelId>,
    response: Response,
    reply: oneshot::Sender<Response>,
}

#[derive(Debug)]
pub struct Leavings {
    list: Vec<Leaving>,
    waiters: Vec<Waiter>,
    said_tx: UnboundedSender<(TunnelId, u16)>,
    said_rx: UnboundedReceiver<(TunnelId, u16)>,
}

impl Default for Leavings {
    fn default() -> Self {
        let (said_tx, said_rx) = mpsc::unbounded_channel();
        Leavings {
            list: Vec::new(),
            waiters: Vec::new(),
            said_tx,
            said_rx,
        }
    }
}

impl Leavings {
    /// Where the BGP speaker reports a finished goodbye.
    pub fn reports(&self) -> UnboundedSender<(TunnelId, u16)> {
        self.said_tx.clone()
    }

    /// Tunnel `id` waits for the goodbye of its session `generation` from `now` on.
    pub fn start(&mut self, id: TunnelId, generation: u16, now: Instant, then: Then) {
        self.list.push(Leaving {
            id,
            generation,
            deadline: now + GOODBYE_MAX,
            said: false,
            then,
        });
    }

    pub fn is_leaving(&self, id: TunnelId) -> bool {
        self.list.iter().any(|l| l.id == id)
    }

    pub fn any(&self) -> bool {
        !self.list.is_empty()
    }

    /// Tunnel `id` stops waiting: what was to happen to it once down.
    pub fn take(&mut self, id: TunnelId) -> Option<Then> {
        let i = self.list.iter().position(|l| l.id == id)?;
        Some(self.list.swap_remove(i).then)
    }

    /// A leaving tunnel that was disabled meanwhile stays down whatever it was leaving for.
    pub fn stay_down(&mut self, id: TunnelId) {
        for l in self.list.iter_mut().filter(|l| l.id == id) {
            if matches!(l.then, Then::Restart(..)) {
                l.then = Then::StayDown;
            }
        }
    }

    /// Every tunnel still leaving, with what was to happen to it (cut short).
    pub fn take_all(&mut self) -> Vec<(TunnelId, Then)> {
        self.list.drain(..).map(|l| (l.id, l.then)).collect()
    }

    /// The next tunnel whose goodbye is over (reports of older sessions are skipped).
    pub async fn next_goodbye(&mut self) -> Option<TunnelId> {
        loop {
            let (id, generation) = self.said_rx.recv().await?;
            if self
                .list
                .iter()
                .any(|l| l.id == id && l.generation == generation)
            {
                return Some(id);
            }
        }
    }

    /// Tunnel `id`'s goodbye is over: it goes down once its last packets have settled.
    pub fn said(&mut self, id: TunnelId, now: Instant) {
        for l in self.list.iter_mut().filter(|l| l.id == id) {
            l.deadline = l.deadline.min(now + SETTLE);
            l.said = true;
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.list.iter().map(|l| l.deadline).min()
    }

    /// The tunnels due to go down: settled after their goodbye, or cut short (`false`).
    pub fn due(&mut self, now: Instant) -> Vec<(TunnelId, Then, bool)> {
        let (due, waiting): (Vec<_>, Vec<_>) = self.list.drain(..).partition(|l| l.deadline <= now);
        self.list = waiting;
        due.into_iter().map(|l| (l.id, l.then, l.said)).collect()
    }

    /// Answers `reply` with `response` once none of `ids` is leaving (at once if none is).
    pub fn answer_when_down(
        &mut self,
        ids: Vec<TunnelId>,
        response: Response,
        reply: oneshot::Sender<Response>,
    ) {
        self.waiters.push(Waiter {
            ids,
            response,
            reply,
        });
        self.answer_ready();
    }

    /// Sends the answers no leaving tunnel holds back any more.
    pub fn answer_ready(&mut self) {
        let list = &self.list;
        let (ready, waiting): (Vec<_>, Vec<_>) = self
            .waiters
            .drain(..)
            .partition(|w| !w.ids.iter().any(|id| list.iter().any(|l| l.id == *id)));
        self.waiters = waiting;
        for w in ready {
            // The client may have gone; the tunnel is down all the same.
            let _ = w.reply.send(w.response);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u16) -> TunnelId {
        TunnelId(n)
    }

    #[test]
    fn an_answer_waits_for_every_tunnel_it_names() {
        let mut l = Leavings::default();
        let now = Instant::now();
        l.start(id(0), 1, now, Then::StayDown);
        l.start(id(1), 2, now, Then::StayDown);
        let (tx, mut rx) = oneshot::channel();
        l.answer_when_down(vec![id(0), id(1)], Response::err("x"), tx);
        assert!(rx.try_recv().is_err());
        assert!(l.take(id(0)).is_some());
        l.answer_ready();
        assert!(rx.try_recv().is_err());
        assert!(l.take(id(1)).is_some());
        l.answer_ready();
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn an_answer_for_tunnels_not_leaving_goes_at_once() {
        let mut l = Leavings::default();
        let (tx, mut rx) = oneshot::channel();
        l.answer_when_down(vec![id(3)], Response::err("x"), tx);
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn deadlines_end_the_wait() {
        let mut l = Leavings::default();
        let now = Instant::now();
        l.start(id(0), 1, now, Then::StayDown);
        l.start(id(1), 1, now + GOODBYE_MAX, Then::Shutdown);
        assert_eq!(l.next_deadline(), Some(now + GOODBYE_MAX));
        let late = l.due(now + GOODBYE_MAX);
        assert_eq!(late.len(), 1);
        assert!(matches!(late.first(), Some((i, Then::StayDown, false)) if *i == id(0)));
        assert!(l.is_leaving(id(1)) && !l.is_leaving(id(0)));
    }

    #[test]
    fn a_tunnel_settles_briefly_after_its_goodbye() {
        let mut l = Leavings::default();
        let now = Instant::now();
        l.start(id(0), 1, now, Then::StayDown);
        let later = now + Duration::from_millis(100);
        l.said(id(0), later);
        assert_eq!(l.next_deadline(), Some(later + SETTLE));
        assert!(l.due(later).is_empty());
        assert!(matches!(l.due(later + SETTLE).first(), Some((_, _, true))));
    }

    #[tokio::test]
    async fn a_late_report_of_an_older_session_is_no_news() {
        let mut l = Leavings::default();
        let now = Instant::now();
        l.start(id(0), 7, now, Then::StayDown);
        let tx = l.reports();
        tx.send((id(0), 6)).expect("open");
        tx.send((id(0), 7)).expect("open");
        assert_eq!(l.next_goodbye().await, Some(id(0)));
        assert!(l.said_rx.try_recv().is_err(), "both reports read");
    }

    #[test]
    fn disabling_does_not_undo_a_shutdown() {
        let mut l = Leavings::default();
        l.start(id(0), 1, Instant::now(), Then::Shutdown);
        l.stay_down(id(0));
        assert!(matches!(l.take(id(0)), Some(Then::Shutdown)));
    }
}
