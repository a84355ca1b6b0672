//! Typed indices: a host, a role and a role-table entry are each their own type, so a host can
//! never be passed where a role is expected (or the other way round) without the compiler
//! noticing.
//!
//! * [`HostId`] — position of a host in `ClusterSpec::hosts` (config order, F1);
//! * [`RoleId`] — position of a role in `ClusterSpec::roles`;
//! * [`EntryId`] — position of one (role, ip) pair in the role table (one role IP = one entry).
//!
//! Per-host and per-entry data live in an [`IdVec`], which only its own kind of id can index.
//! The core's public API names hosts and roles by their names; these ids never leave the crate.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Index, IndexMut};

/// A typed position in a `Vec`.
pub(crate) trait Id: Copy {
    fn from_index(i: usize) -> Self;
    /// The position, for indexing a plain `Vec` or slice (`spec.hosts`, `spec.roles`).
    fn index(self) -> usize;
}

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub(crate) struct $name(pub usize);

        impl Id for $name {
            fn from_index(i: usize) -> Self {
                $name(i)
            }

            fn index(self) -> usize {
                self.0
            }
        }
    };
}

id!(
    /// A host: its position in `ClusterSpec::hosts` (and in every per-host table).
    HostId
);
id!(
    /// A role: its position in `ClusterSpec::roles`.
    RoleId
);
id!(
    /// A (role, ip) pair: its position in the role table.
    EntryId
);

/// A `Vec` indexed by one kind of id only (`hosts[h]` with `h: HostId`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct IdVec<I, T> {
    items: Vec<T>,
    id: PhantomData<fn(I) -> I>,
}

impl<I: Id, T> IdVec<I, T> {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn get(&self, i: I) -> Option<&T> {
        self.items.get(i.index())
    }

    pub fn get_mut(&mut self, i: I) -> Option<&mut T> {
        self.items.get_mut(i.index())
    }

    /// Every id, in order. Borrows nothing, so the loop body may change `self`.
    pub fn ids(&self) -> impl Iterator<Item = I> + use<I, T> {
        (0..self.items.len()).map(I::from_index)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, T> {
        self.items.iter_mut()
    }

    /// `(id, item)` pairs in order.
    pub fn iter_enumerated(&self) -> impl Iterator<Item = (I, &T)> {
        self.items
            .iter()
            .enumerate()
            .map(|(i, t)| (I::from_index(i), t))
    }

    /// The first id whose item matches.
    pub fn position(&self, pred: impl FnMut(&T) -> bool) -> Option<I> {
        self.items.iter().position(pred).map(I::from_index)
    }
}

impl<I, T> From<Vec<T>> for IdVec<I, T> {
    fn from(items: Vec<T>) -> Self {
        IdVec {
            items,
            id: PhantomData,
        }
    }
}

impl<I, T> FromIterator<T> for IdVec<I, T> {
    fn from_iter<It: IntoIterator<Item = T>>(iter: It) -> Self {
        Vec::from_iter(iter).into()
    }
}

impl<I: Id, T> Index<I> for IdVec<I, T> {
    type Output = T;

    fn index(&self, i: I) -> &T {
        &self.items[i.index()]
    }
}

impl<I: Id, T> IndexMut<I> for IdVec<I, T> {
    fn index_mut(&mut self, i: I) -> &mut T {
        &mut self.items[i.index()]
    }
}

/// Prints like the `Vec` it wraps.
impl<I, T: fmt::Debug> fmt::Debug for IdVec<I, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.items.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_index_their_own_table_in_order() {
        let v: IdVec<HostId, &str> = vec!["db1", "db2", "db3"].into();
        assert_eq!(v[HostId(1)], "db2");
        assert_eq!(v.get(HostId(3)), None);
        assert_eq!(
            v.ids().collect::<Vec<_>>(),
            [HostId(0), HostId(1), HostId(2)]
        );
        assert_eq!(v.position(|n| *n == "db3"), Some(HostId(2)));
        assert_eq!(format!("{v:?}"), r#"["db1", "db2", "db3"]"#);
    }
}
