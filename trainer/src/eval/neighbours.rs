//! Nearest neighbours among vectors by Euclidean distance, for the measures that compare
//! generated digits with real ones point by point (precision and recall, the copy
//! check). The squared distances come in blocks from one matrix product,
//! `|q - p|^2 = |q|^2 + |p|^2 - 2 q.p`, clamped at 0 where rounding takes them below; in
//! f32 that is within about 1e-6 of `|q|^2 + |p|^2`, far below the gaps the measures
//! compare.

use rayon::prelude::*;

use crate::foundation::matmul::matmul;

/// Query rows per block, each block on one core.
const QUERY_BLOCK: usize = 64;
/// Points per block of one query block's distances (64 x 4,096 floats, 1 MiB).
const POINT_BLOCK: usize = 4096;

/// A set of vectors of `dim` values each, row after row, with their squared norms.
pub struct Points<'a> {
    values: &'a [f32],
    dim: usize,
    norms: Vec<f32>,
}

impl<'a> Points<'a> {
    /// The rows of `values`, `dim` values each (a last partial row is ignored).
    pub fn new(values: &'a [f32], dim: usize) -> Self {
        let dim = dim.max(1);
        let norms = values
            .chunks_exact(dim)
            .map(|row| row.iter().map(|v| v * v).sum())
            .collect();
        Points { values, dim, norms }
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.norms.len()
    }

    /// Whether the set has no vectors.
    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }

    /// For each vector of `self`, the state `fold` leaves after seeing its squared
    /// distances to every vector of `points`, a block at a time: `fold(state, query,
    /// first_point, distances)`, with `distances[j]` that to point `first_point + j`.
    fn fold_distances<S: Send>(
        &self,
        points: &Points,
        init: impl Fn() -> S + Sync,
        fold: impl Fn(&mut S, usize, usize, &[f32]) + Sync,
    ) -> Vec<S> {
        let dim = self.dim.min(points.dim);
        let (queries, point_values) = (&self.values[..self.len() * dim], points.values);
        queries
            .par_chunks(QUERY_BLOCK * dim)
            .enumerate()
            .flat_map_iter(|(block, rows)| {
                let first = block * QUERY_BLOCK;
                let n = rows.len() / dim;
                let mut states: Vec<S> = (0..n).map(|_| init()).collect();
                let mut dots = vec![0.0f32; n * POINT_BLOCK];
                for start in (0..points.len()).step_by(POINT_BLOCK) {
                    let m = POINT_BLOCK.min(points.len() - start);
                    let chunk = &point_values[start * dim..(start + m) * dim];
                    let dots = &mut dots[..n * m];
                    matmul((n, dim, m), (rows, false), (chunk, true), dots, false);
                    for (i, (state, row)) in
                        states.iter_mut().zip(dots.chunks_exact_mut(m)).enumerate()
                    {
                        let q = self.norms[first + i];
                        for (d, p) in row.iter_mut().zip(&points.norms[start..start + m]) {
                            *d = (q + p - 2.0 * *d).max(0.0);
                        }
                        fold(state, first + i, start, row);
                    }
                }
                states
            })
            .collect()
    }

    /// The squared distance from each vector to its `k`th nearest among the others of
    /// the set (itself left out; duplicates count). `k` at least 1 and below the set's
    /// size.
    pub fn kth_nearest_within(&self, k: usize) -> Vec<f32> {
        let k = k.clamp(1, self.len().saturating_sub(1).max(1));
        self.fold_distances(
            self,
            || Vec::with_capacity(k + 1),
            |nearest: &mut Vec<f32>, query, first, distances| {
                for (j, &d) in distances.iter().enumerate() {
                    if first + j != query {
                        keep_smallest(nearest, k, d);
                    }
                }
            },
        )
        .into_iter()
        .map(|nearest| nearest.last().copied().unwrap_or(f32::INFINITY))
        .collect()
    }

    /// The squared distance from each vector to its nearest in `points`.
    pub fn nearest_in(&self, points: &Points) -> Vec<f32> {
        self.fold_distances(
            points,
            || f32::INFINITY,
            |nearest: &mut f32, _, _, distances| {
                *nearest = distances.iter().copied().fold(*nearest, f32::min);
            },
        )
    }

    /// Whether each vector lies within some ball of `points`: at a squared distance at
    /// most `radii[j]` from a point j.
    pub fn within_any(&self, points: &Points, radii: &[f32]) -> Vec<bool> {
        self.fold_distances(
            points,
            || false,
            |inside: &mut bool, _, first, distances| {
                *inside = *inside || distances.iter().zip(&radii[first..]).any(|(&d, &r)| d <= r);
            },
        )
    }
}

/// Keeps `nearest` the `k` smallest values seen, ascending.
fn keep_smallest(nearest: &mut Vec<f32>, k: usize, d: f32) {
    if nearest.len() == k && nearest.last().is_some_and(|&last| d >= last) {
        return;
    }
    let at = nearest.partition_point(|&v| v <= d);
    nearest.insert(at, d);
    nearest.truncate(k);
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    fn random(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n * dim).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    /// Squared distances in f64, one pair at a time: the reference.
    fn exact(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum()
    }

    /// Within 1e-5 of |q|^2 + |p|^2 (about 2 * dim / 3 here): the product's rounding.
    fn close(ours: f32, exact: f64, dim: usize) {
        assert!(
            (f64::from(ours) - exact).abs() <= 1e-5 * dim as f64,
            "{ours} against {exact}"
        );
    }

    /// More queries and points than one block of each, dimensions of the judge's
    /// features and others, checked pair by pair in f64.
    #[test]
    fn neighbours_match_a_pair_by_pair_search() {
        for (n, m, dim) in [(150, 4200, 3), (70, 300, 128), (5, 9, 1)] {
            let (q, p) = (random(n, dim, 1), random(m, dim, 2));
            let (queries, points) = (Points::new(&q, dim), Points::new(&p, dim));
            let row = |v: &[f32], i: usize| v[i * dim..(i + 1) * dim].to_vec();
            let nearest = queries.nearest_in(&points);
            let third = queries.kth_nearest_within(3);
            let radii: Vec<f32> = (0..m).map(|j| 0.02 * dim as f32 * (j % 7) as f32).collect();
            let inside = queries.within_any(&points, &radii);
            for i in 0..n {
                let to_points: Vec<f64> = (0..m).map(|j| exact(&row(&q, i), &row(&p, j))).collect();
                close(
                    nearest[i],
                    to_points.iter().copied().fold(f64::INFINITY, f64::min),
                    dim,
                );
                let mut others: Vec<f64> = (0..n)
                    .filter(|&j| j != i)
                    .map(|j| exact(&row(&q, i), &row(&q, j)))
                    .collect();
                others.sort_by(f64::total_cmp);
                close(third[i], others[2.min(others.len() - 1)], dim);
                // Balls whose edge is within rounding of the query are left undecided.
                let margin = 1e-5 * dim as f64;
                let clear_in = to_points
                    .iter()
                    .zip(&radii)
                    .any(|(&d, &r)| d <= f64::from(r) - margin);
                let clear_out = to_points
                    .iter()
                    .zip(&radii)
                    .all(|(&d, &r)| d > f64::from(r) + margin);
                assert!(!clear_in || inside[i], "query {i} is inside a ball");
                assert!(!clear_out || !inside[i], "query {i} is outside every ball");
            }
        }
    }

    /// A duplicate is a neighbour at distance 0; the vector itself is not.
    #[test]
    fn the_vector_itself_is_left_out_but_its_duplicates_count() {
        let values = [0.0f32, 0.0, 0.0, 0.0, 3.0, 4.0];
        let points = Points::new(&values, 2);
        assert_eq!(points.kth_nearest_within(1), vec![0.0, 0.0, 25.0]);
        assert_eq!(points.kth_nearest_within(2), vec![25.0, 25.0, 25.0]);
    }
}
