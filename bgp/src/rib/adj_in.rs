//! Adj-RIB-In: the routes one peer has announced to us, accepted by policy or not.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::wire::PathAttributes;
use crate::Ipv4Prefix;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    attrs: Arc<PathAttributes>,
    accepted: bool,
}

/// What a change to the Adj-RIB-In means for the Loc-RIB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdjChange {
    /// An accepted route appeared or its attributes changed.
    Learned(Arc<PathAttributes>),
    /// A previously accepted route is gone or no longer accepted.
    Withdrawn,
    /// Nothing the Loc-RIB needs to know.
    None,
}

#[derive(Debug, Clone, Default)]
pub struct AdjRibIn {
    routes: BTreeMap<Ipv4Prefix, Entry>,
    accepted: usize,
}

impl AdjRibIn {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a route as announced; `accepted` is the outcome of import policy.
    pub fn insert(
        &mut self,
        prefix: Ipv4Prefix,
        attrs: Arc<PathAttributes>,
        accepted: bool,
    ) -> AdjChange {
        let new = Entry { attrs, accepted };
        let change = match self.routes.get(&prefix) {
            Some(old) if *old == new => AdjChange::None,
            Some(old) if old.accepted && !accepted => AdjChange::Withdrawn,
            None if !accepted => AdjChange::None,
            Some(_) if !accepted => AdjChange::None,
            _ => AdjChange::Learned(new.attrs.clone()),
        };
        let was_accepted = self.routes.get(&prefix).is_some_and(|e| e.accepted);
        self.routes.insert(prefix, new);
        self.accepted = self.accepted + usize::from(accepted) - usize::from(was_accepted);
        change
    }

    pub fn remove(&mut self, prefix: &Ipv4Prefix) -> AdjChange {
        match self.routes.remove(prefix) {
            Some(e) if e.accepted => {
                self.accepted -= 1;
                AdjChange::Withdrawn
            }
            _ => AdjChange::None,
        }
    }

    pub fn clear(&mut self) {
        self.routes.clear();
        self.accepted = 0;
    }

    /// Prefixes received (accepted or not).
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn accepted(&self) -> usize {
        self.accepted
    }

    /// Accepted routes, for a consumer that (re)builds its view.
    pub fn accepted_routes(&self) -> impl Iterator<Item = (&Ipv4Prefix, &Arc<PathAttributes>)> {
        self.routes
            .iter()
            .filter(|(_, e)| e.accepted)
            .map(|(p, e)| (p, &e.attrs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_changes() {
        let mut rib = AdjRibIn::new();
        let p: Ipv4Prefix = "10.0.0.0/8".parse().unwrap();
        let a = Arc::new(PathAttributes {
            med: Some(1),
            ..Default::default()
        });
        let b = Arc::new(PathAttributes {
            med: Some(2),
            ..Default::default()
        });
        assert_eq!(
            rib.insert(p, a.clone(), true),
            AdjChange::Learned(a.clone())
        );
        assert_eq!(rib.insert(p, a.clone(), true), AdjChange::None);
        assert_eq!(
            rib.insert(p, b.clone(), true),
            AdjChange::Learned(b.clone())
        );
        assert_eq!(rib.accepted(), 1);
        assert_eq!(rib.insert(p, a.clone(), false), AdjChange::Withdrawn);
        assert_eq!((rib.len(), rib.accepted()), (1, 0));
        assert_eq!(rib.remove(&p), AdjChange::None);
        assert!(rib.is_empty());
        rib.insert(p, a, true);
        assert_eq!(rib.remove(&p), AdjChange::Withdrawn);
        assert_eq!(rib.accepted(), 0);
    }
}
