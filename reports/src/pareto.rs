//! Incremental Pareto front: points are offered one at a time, so a front over millions of
//! results needs memory only for the front itself.

use crate::schema::Goal;

/// A member of a front: its objective values (as given, not oriented), a key that breaks ties
/// deterministically, and a payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Member<T> {
    /// Objective values in objective order.
    pub values: Vec<f64>,
    /// Tie-break key (the point id).
    pub key: String,
    /// What the caller keeps with the point.
    pub item: T,
}

/// The non-dominated set of the points offered so far.
#[derive(Debug, Clone)]
pub struct ParetoFront<T> {
    goals: Vec<Goal>,
    members: Vec<Member<T>>,
}

/// `a` dominates `b` when it is no worse in every objective and better in one (both oriented
/// so that smaller is better).
fn dominates(a: &[f64], b: &[f64]) -> bool {
    let mut better = false;
    for (x, y) in a.iter().zip(b) {
        if x > y {
            return false;
        }
        if x < y {
            better = true;
        }
    }
    better
}

impl<T> ParetoFront<T> {
    /// An empty front over these goals.
    pub fn new(goals: Vec<Goal>) -> Self {
        ParetoFront {
            goals,
            members: Vec::new(),
        }
    }

    fn oriented(&self, values: &[f64]) -> Vec<f64> {
        self.goals
            .iter()
            .zip(values)
            .map(|(g, v)| g.orient(*v))
            .collect()
    }

    /// Offers a point; returns whether it joined the front. Points with equal objective values
    /// are all kept (neither dominates the other); a key already on the front is ignored.
    pub fn offer(&mut self, values: Vec<f64>, key: String, item: T) -> bool {
        if values.len() != self.goals.len() || values.iter().any(|v| !v.is_finite()) {
            return false;
        }
        let new = self.oriented(&values);
        let goals = &self.goals;
        let orient = |m: &Member<T>| -> Vec<f64> {
            goals
                .iter()
                .zip(&m.values)
                .map(|(g, v)| g.orient(*v))
                .collect()
        };
        if self
            .members
            .iter()
            .any(|m| m.key == key || dominates(&orient(m), &new))
        {
            return false;
        }
        self.members.retain(|m| !dominates(&new, &orient(m)));
        self.members.push(Member { values, key, item });
        true
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when nothing was accepted.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members sorted by the objectives in order (best first), then by key: the same
    /// front always comes out in the same order, whatever order the points arrived in.
    pub fn into_sorted(self) -> Vec<Member<T>> {
        let goals = self.goals;
        let mut m = self.members;
        m.sort_by(|a, b| {
            for ((g, x), y) in goals.iter().zip(&a.values).zip(&b.values) {
                let o = g.orient(*x).total_cmp(&g.orient(*y));
                if o.is_ne() {
                    return o;
                }
            }
            a.key.cmp(&b.key)
        });
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_is_order_independent() {
        let pts = [
            (1.0, 9.0),
            (2.0, 5.0),
            (3.0, 5.0),
            (4.0, 1.0),
            (2.0, 5.0),
            (5.0, 0.5),
            (0.5, 20.0),
            (6.0, 6.0),
        ];
        let run = |order: &[usize]| {
            let mut f = ParetoFront::new(vec![Goal::Minimize, Goal::Minimize]);
            for &i in order {
                f.offer(vec![pts[i].0, pts[i].1], format!("p{i}"), ());
            }
            f.into_sorted()
                .into_iter()
                .map(|m| m.key)
                .collect::<Vec<_>>()
        };
        let a = run(&[0, 1, 2, 3, 4, 5, 6, 7]);
        let b = run(&[7, 6, 5, 4, 3, 2, 1, 0]);
        assert_eq!(a, b);
        assert_eq!(a, vec!["p6", "p0", "p1", "p4", "p3", "p5"]);
    }

    #[test]
    fn maximize_flips() {
        let mut f = ParetoFront::new(vec![Goal::Maximize]);
        f.offer(vec![1.0], "a".into(), ());
        f.offer(vec![3.0], "b".into(), ());
        f.offer(vec![2.0], "c".into(), ());
        assert_eq!(f.into_sorted()[0].key, "b");
    }
}
