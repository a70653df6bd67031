//! Temporary stand-in with the wheel's API (BTreeMap), until wheel.rs lands.
use std::collections::BTreeMap;
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct TimerKey(u32);
impl TimerKey { pub fn to_raw(self) -> u32 { self.0 } pub fn from_raw(r: u32) -> TimerKey { TimerKey(r) } }
#[derive(Debug)]
pub struct TimerWheel<T: Copy> { map: BTreeMap<(i64, u32), T>, whens: std::collections::HashMap<u32, i64>, next: u32 }
impl<T: Copy> Default for TimerWheel<T> { fn default() -> Self { Self::new() } }
impl<T: Copy> TimerWheel<T> {
    pub fn new() -> Self { TimerWheel { map: BTreeMap::new(), whens: Default::default(), next: 0 } }
    pub fn insert(&mut self, when: i64, value: T) -> TimerKey { let k = self.next; self.next += 1; self.map.insert((when, k), value); self.whens.insert(k, when); TimerKey(k) }
    pub fn cancel(&mut self, key: TimerKey) -> T { let w = self.whens.remove(&key.0).unwrap(); self.map.remove(&(w, key.0)).unwrap() }
    pub fn next_deadline(&self) -> Option<i64> { self.map.keys().next().map(|k| k.0) }
    pub fn pop_before(&mut self, now: i64) -> Option<(i64, T)> { let (&(w, k), _) = self.map.iter().next()?; if w >= now { return None; } self.whens.remove(&k); let v = self.map.remove(&(w, k)).unwrap(); Some((w, v)) }
    pub fn len(&self) -> usize { self.map.len() }
    pub fn is_empty(&self) -> bool { self.map.is_empty() }
    pub fn heap_bytes(&self) -> usize { self.map.len() * 40 }
}
