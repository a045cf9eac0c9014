//! Which CHILD SA of a set of traffic selectors sends. A rekey's responder installs the
//! new SA before the initiator does (the initiator needs our answer first), so the new SA
//! is "held" until the initiator deletes the old one: sending on it earlier loses packets
//! to an SPI the peer does not know yet.

/// An installed CHILD SA as this choice sees it.
pub trait Candidate {
    fn same_selectors(&self, other: &Self) -> bool;
    fn held(&self) -> bool;
}

/// Per selector set, in order of first appearance in `all` (oldest first): the newest SA
/// not held, else the newest.
pub fn senders<T: Candidate>(all: &[T]) -> Vec<&T> {
    let mut groups: Vec<&T> = Vec::new();
    for c in all {
        match groups.iter_mut().find(|g| g.same_selectors(c)) {
            Some(g) if !c.held() || g.held() => *g = c,
            Some(_) => {}
            None => groups.push(c),
        }
    }
    groups
}

/// Indices of the held SAs to release: those `pick` chooses whose selector set has no SA
/// left that is not held (the old one the peer had to delete is gone).
pub fn releasable<T: Candidate>(all: &[T], pick: impl Fn(&T) -> bool) -> Vec<usize> {
    all.iter()
        .enumerate()
        .filter(|(_, c)| {
            c.held() && pick(c) && !all.iter().any(|o| !o.held() && o.same_selectors(c))
        })
        .map(|(i, _)| i)
        .collect()
}

/// Indices of the held SAs to release because `expired` (an index into `all`), an SA
/// that sends, hit a hard limit before the peer deleted it: its successors, which would
/// otherwise wait for a DELETE while nothing can be sent.
pub fn successors_of<T: Candidate>(all: &[T], expired: usize) -> Vec<usize> {
    let Some(old) = all.get(expired).filter(|c| !c.held()) else {
        return Vec::new();
    };
    all.iter()
        .enumerate()
        .filter(|(_, c)| c.held() && c.same_selectors(old))
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (selector set, held, name)
    #[derive(Debug, PartialEq)]
    struct Sa(u8, bool, &'static str);

    impl Candidate for Sa {
        fn same_selectors(&self, other: &Self) -> bool {
            self.0 == other.0
        }
        fn held(&self) -> bool {
            self.1
        }
    }

    fn names(v: Vec<&Sa>) -> Vec<&'static str> {
        v.into_iter().map(|s| s.2).collect()
    }

    #[test]
    fn the_newest_sa_sends_unless_held() {
        // Our rekey (or an additional SA): the new one sends at once.
        let ours = [
            Sa(0, false, "old"),
            Sa(0, false, "new"),
            Sa(1, false, "other"),
        ];
        assert_eq!(names(senders(&ours)), ["new", "other"]);
        // The peer's rekey: the old one sends until it is deleted.
        let theirs = [Sa(0, false, "old"), Sa(0, true, "new")];
        assert_eq!(names(senders(&theirs)), ["old"]);
        // Collision: our own new SA beats the held one; all held: the newest.
        let both = [
            Sa(0, false, "old"),
            Sa(0, true, "theirs"),
            Sa(0, false, "ours"),
        ];
        assert_eq!(names(senders(&both)), ["ours"]);
        let held = [Sa(0, true, "a"), Sa(0, true, "b")];
        assert_eq!(names(senders(&held)), ["b"]);
    }

    #[test]
    fn a_held_sa_is_released_when_no_sa_of_its_set_that_sends_is_left() {
        let any = |_: &Sa| true;
        // The old one is still there: nothing to release.
        let waiting = [Sa(0, false, "old"), Sa(0, true, "new"), Sa(1, true, "x")];
        assert_eq!(releasable(&waiting, |s| s.0 == 0), Vec::<usize>::new());
        // Deleted: released; another set's held SA only if picked.
        let deleted = [Sa(0, true, "new"), Sa(1, true, "x")];
        assert_eq!(releasable(&deleted, |s| s.0 == 0), [0]);
        assert_eq!(releasable(&deleted, any), [0, 1]);
        // Our own newer SA of the set still sends: the held one waits (a collision's
        // redundant SA is deleted later).
        let collision = [Sa(0, true, "theirs"), Sa(0, false, "ours")];
        assert_eq!(releasable(&collision, any), Vec::<usize>::new());
    }

    #[test]
    fn an_expired_sender_hands_over_to_its_held_successor_only() {
        let all = [
            Sa(0, false, "old"),
            Sa(1, true, "other set"),
            Sa(0, true, "new"),
        ];
        assert_eq!(successors_of(&all, 0), [2]);
        // A held SA expiring sends nothing, so releases nothing; nor does a bad index.
        assert_eq!(successors_of(&all, 2), Vec::<usize>::new());
        assert_eq!(successors_of(&all, 9), Vec::<usize>::new());
        // No successor yet (the rekey is still under way): nothing to switch to.
        assert_eq!(successors_of(&all[..2], 0), Vec::<usize>::new());
    }
}
