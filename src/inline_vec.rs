//! A vector that stays on the stack while it holds few items: the lists one recognize builds
//! (candidate routes, the patterns one search matched) are short, and a heap allocation per
//! call would cost more than the search it serves.

pub(crate) struct InlineVec<T: Copy + Default, const N: usize> {
    inline: [T; N],
    len: usize,
    /// Every item, once more than `N` arrived (the first `N` copied over).
    spill: Vec<T>,
}

impl<T: Copy + Default, const N: usize> InlineVec<T, N> {
    pub fn new() -> Self {
        InlineVec { inline: [T::default(); N], len: 0, spill: Vec::new() }
    }

    #[inline]
    pub fn push(&mut self, item: T) {
        if self.len < N && self.spill.is_empty() {
            self.inline[self.len] = item;
            self.len += 1;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline[..self.len]);
            }
            self.spill.push(item);
        }
    }

    #[inline]
    pub fn extend_from_slice(&mut self, items: &[T]) {
        if self.spill.is_empty() && self.len + items.len() <= N {
            self.inline[self.len..self.len + items.len()].copy_from_slice(items);
            self.len += items.len();
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline[..self.len]);
            }
            self.spill.extend_from_slice(items);
        }
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.spill.clear();
    }

    #[inline]
    pub fn as_slice(&self) -> &[T] {
        if self.spill.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }

    /// Sorts the items and drops repeats.
    pub fn sort_dedup(&mut self)
    where
        T: Ord,
    {
        // Already ascending without repeats (one automaton's run, the usual case): nothing to do.
        if self.as_slice().windows(2).all(|w| w[0] < w[1]) {
            return;
        }
        if self.spill.is_empty() {
            let v = &mut self.inline[..self.len];
            v.sort_unstable();
            let mut kept = 0;
            for i in 0..v.len() {
                if kept == 0 || v[i] != v[kept - 1] {
                    v[kept] = v[i];
                    kept += 1;
                }
            }
            self.len = kept;
        } else {
            self.spill.sort_unstable();
            self.spill.dedup();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::InlineVec;

    #[test]
    fn spills_past_n_and_keeps_order() {
        let mut v: InlineVec<u32, 2> = InlineVec::new();
        for x in [3, 1, 3] {
            v.push(x);
        }
        assert_eq!(v.as_slice(), [3, 1, 3]);
        v.sort_dedup();
        assert_eq!(v.as_slice(), [1, 3]);
        v.clear();
        v.push(2);
        v.push(2);
        v.sort_dedup();
        assert_eq!(v.as_slice(), [2]);
    }
}
