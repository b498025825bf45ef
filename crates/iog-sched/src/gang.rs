//! Choosing a gang: workers that must talk to each other while a task runs,
//! so every pair of them needs a round trip under a bound.
//!
//! Finding the most preferred set of `size` points whose pairwise distances
//! all stay under a bound is a clique problem, hard in general, so
//! [`choose`] is a bounded greedy search: from each of a few seeds it grows
//! a gang through the seed's nearest neighbours, and again through the most
//! preferred candidates, and keeps the most preferred complete gang found.
//! Distances are Vivaldi estimates ([`Coord::distance_ms`]), which obey the
//! triangle inequality; so if some seed has `size - 1` other candidates
//! within half the bound of it, the search finds a gang.

use crate::vivaldi::Coord;

/// Most candidates looked at. The caller passes candidates best first, so
/// the ones beyond this are the least wanted, and the bound keeps the cost
/// of one choice small whatever the size of the fleet.
pub const CANDIDATES_MAX: usize = 256;

/// Most candidates tried as the seed of a gang, the first ones in
/// preference order. Every gang returned therefore contains at least one of
/// these; trying more seeds rarely finds a better gang but costs a sort of
/// the candidates each.
pub const SEEDS_MAX: usize = 32;

/// Chooses `size` candidates whose estimated round trip to each other is at
/// most `latency_ms_max` for every pair.
///
/// `candidates` are in preference order, best first; only the first
/// [`CANDIDATES_MAX`] are looked at. Returns the chosen indices into
/// `candidates` in increasing order, or `None` when the search finds no such
/// gang (which does not prove that none exists). A gang of zero is empty and
/// a gang of one is the first candidate, since neither has a pair to check.
///
/// For each of the first [`SEEDS_MAX`] candidates as the seed, the others
/// are taken in order of distance to the seed (ties by index), and each one
/// within the bound of every member so far joins, until the gang is
/// complete; then the same again with the others in preference order. Of
/// the complete gangs, the one with the smallest sum of indices (the most
/// preferred) wins, ties going to the smallest diameter. The cost is
/// O([`SEEDS_MAX`] × n × (log n + `size`)) distance computations and
/// comparisons for n candidates looked at.
pub fn choose(candidates: &[Coord], size: usize, latency_ms_max: f64) -> Option<Vec<usize>> {
    let candidates = &candidates[..candidates.len().min(CANDIDATES_MAX)];
    if size == 0 {
        return Some(Vec::new());
    }
    if size > candidates.len() {
        return None;
    }
    if size == 1 {
        return Some(vec![0]);
    }

    // The best complete gang so far: its sum of indices, its diameter and
    // its members in increasing order.
    let mut best: Option<(usize, f64, Vec<usize>)> = None;
    let mut others: Vec<(f64, usize)> = Vec::with_capacity(candidates.len());
    let mut gang: Vec<usize> = Vec::with_capacity(size);
    for (seed, seed_coord) in candidates.iter().enumerate().take(SEEDS_MAX) {
        others.clear();
        others.extend(
            candidates
                .iter()
                .enumerate()
                .filter(|&(idx, _)| idx != seed)
                .map(|(idx, coord)| (seed_coord.distance_ms(coord), idx)),
        );
        others.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        // Sorted by distance to the seed, so once one is too far from the
        // seed, all the rest are too.
        let nearest_first = others.iter().take_while(|&&(distance_ms, _)| distance_ms <= latency_ms_max);
        if grow(candidates, seed, nearest_first.map(|&(_, idx)| idx), size, latency_ms_max, &mut gang) {
            consider(candidates, &gang, &mut best);
        }
        // Nearest first builds compact gangs but ignores preference past the
        // seed: under a loose bound it would pass over the best candidates
        // for the seed's neighbours. Growing the same seed in preference
        // order as well finds those gangs, at a cost of one more pass.
        let preferred_first = (0..candidates.len()).filter(|&idx| idx != seed);
        if grow(candidates, seed, preferred_first, size, latency_ms_max, &mut gang) {
            consider(candidates, &gang, &mut best);
        }
    }
    best.map(|(_, _, members)| members)
}

/// Grows a gang from `seed`, offering the candidates in `order` and taking
/// each one within the bound of every member so far, until it has `size`
/// members. Returns whether it did; the gang is left in `gang`.
fn grow(
    candidates: &[Coord],
    seed: usize,
    order: impl IntoIterator<Item = usize>,
    size: usize,
    latency_ms_max: f64,
    gang: &mut Vec<usize>,
) -> bool {
    gang.clear();
    gang.push(seed);
    for idx in order {
        if gang.len() == size {
            break;
        }
        // A NaN distance (from a coordinate that is not sane) fails the
        // comparison, so such a candidate never joins.
        let fits = gang.iter().all(|&member| candidates[member].distance_ms(&candidates[idx]) <= latency_ms_max);
        if fits {
            gang.push(idx);
        }
    }
    gang.len() == size
}

/// Keeps `gang` as the best if it is more preferred than the best so far:
/// a smaller sum of indices, or the same sum and a smaller diameter.
fn consider(candidates: &[Coord], gang: &[usize], best: &mut Option<(usize, f64, Vec<usize>)>) {
    let mut members = gang.to_vec();
    members.sort_unstable();
    let index_sum: usize = members.iter().sum();
    let coords: Vec<Coord> = members.iter().map(|&idx| candidates[idx]).collect();
    let diameter = diameter_ms(&coords);
    let better = match best {
        None => true,
        Some((best_sum, best_diameter, _)) => {
            index_sum < *best_sum || (index_sum == *best_sum && diameter.total_cmp(best_diameter).is_lt())
        }
    };
    if better {
        *best = Some((index_sum, diameter, members));
    }
}

/// The largest estimated round trip between two members; zero for fewer
/// than two members, which have no pair. NaN distances are skipped.
pub fn diameter_ms(members: &[Coord]) -> f64 {
    let mut diameter = 0.0_f64;
    for (idx, a) in members.iter().enumerate() {
        for b in &members[idx + 1..] {
            diameter = diameter.max(a.distance_ms(b));
        }
    }
    diameter
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vivaldi::{DIMENSIONS, HEIGHT_MS_MIN};
    use proptest::prelude::*;

    fn at(x: f64, y: f64) -> Coord {
        Coord { position: [x, y, 0.0], height_ms: HEIGHT_MS_MIN, error: 0.1 }
    }

    fn pairwise_within(candidates: &[Coord], members: &[usize], latency_ms_max: f64) -> bool {
        members.iter().enumerate().all(|(i, &a)| {
            members[i + 1..].iter().all(|&b| candidates[a].distance_ms(&candidates[b]) <= latency_ms_max)
        })
    }

    #[test]
    fn a_small_bound_keeps_the_gang_in_one_cluster() {
        // Two clusters 100 ms apart, interleaved in preference order.
        let candidates = [at(0.0, 0.0), at(100.0, 0.0), at(1.0, 0.0), at(101.0, 0.0), at(0.0, 1.0), at(100.0, 1.0)];
        // Both clusters fit; the first is preferred (0 + 2 + 4 < 1 + 3 + 5).
        assert_eq!(choose(&candidates, 3, 5.0), Some(vec![0, 2, 4]));
        // A bound that spans both clusters takes the first three.
        assert_eq!(choose(&candidates, 3, 200.0), Some(vec![0, 1, 2]));
        assert_eq!(choose(&candidates, 4, 5.0), None);
    }

    #[test]
    fn only_the_cluster_that_is_large_enough_fits() {
        let candidates = [at(0.0, 0.0), at(100.0, 0.0), at(101.0, 0.0), at(1.0, 0.0), at(100.0, 1.0), at(101.0, 1.0)];
        assert_eq!(choose(&candidates, 4, 5.0), Some(vec![1, 2, 4, 5]));
    }

    #[test]
    fn infeasible_gangs_are_none() {
        let candidates = [at(0.0, 0.0), at(100.0, 0.0), at(50.0, 90.0)];
        assert_eq!(choose(&candidates, 3, 50.0), None);
        assert_eq!(choose(&candidates, 2, 50.0), None);
        assert_eq!(choose(&candidates, 2, f64::NAN), None);
        assert_eq!(choose(&candidates, 4, 1000.0), None);
        assert_eq!(choose(&[], 1, 1000.0), None);
    }

    #[test]
    fn gangs_of_zero_and_one_need_no_pairs() {
        let candidates = [at(0.0, 0.0), at(100.0, 0.0)];
        assert_eq!(choose(&candidates, 0, 0.0), Some(vec![]));
        assert_eq!(choose(&[], 0, 0.0), Some(vec![]));
        assert_eq!(choose(&candidates, 1, 0.0), Some(vec![0]));
    }

    #[test]
    fn ties_in_preference_go_to_the_smaller_diameter() {
        // {0, 3} and {1, 2} have the same sum of indices; {1, 2} is tighter.
        let candidates = [at(0.0, 0.0), at(50.0, 0.0), at(52.0, 0.0), at(9.0, 0.0)];
        assert_eq!(choose(&candidates, 2, 10.0), Some(vec![1, 2]));
    }

    #[test]
    fn candidates_past_the_limit_are_not_looked_at() {
        // Only the last few candidates are close enough to each other.
        let mut candidates: Vec<Coord> = (0..CANDIDATES_MAX).map(|idx| at(idx as f64 * 100.0, 0.0)).collect();
        candidates.extend((0..4).map(|idx| at(-1000.0, idx as f64)));
        assert_eq!(choose(&candidates, 3, 10.0), None);
        // Within the limit the same cluster is found, though no seed is in it.
        let mut near: Vec<Coord> = (0..SEEDS_MAX).map(|idx| at(idx as f64 * 100.0, 0.0)).collect();
        near.extend((0..4).map(|idx| at(-1000.0, idx as f64)));
        assert_eq!(choose(&near, 3, 10.0), None);
        // A seed among the first ones that is near the cluster pulls it in.
        near[SEEDS_MAX - 1] = at(-1000.0, 5.0);
        assert_eq!(choose(&near, 3, 10.0), Some(vec![SEEDS_MAX - 1, SEEDS_MAX, SEEDS_MAX + 1]));
    }

    #[test]
    fn diameter_is_the_largest_pairwise_estimate() {
        assert_eq!(diameter_ms(&[]), 0.0);
        assert_eq!(diameter_ms(&[at(3.0, 4.0)]), 0.0);
        let diameter = diameter_ms(&[at(0.0, 0.0), at(3.0, 4.0), at(1.0, 0.0)]);
        assert!((diameter - (5.0 + 2.0 * HEIGHT_MS_MIN)).abs() < 1e-12);
    }

    fn coord_near(centre_ms: f64, spread_ms: f64) -> impl Strategy<Value = Coord> {
        (prop::array::uniform3(-spread_ms..=spread_ms), HEIGHT_MS_MIN..5.0).prop_map(move |(offset, height_ms)| {
            let mut position = [0.0; DIMENSIONS];
            for (component, delta) in position.iter_mut().zip(offset) {
                *component = centre_ms + delta;
            }
            Coord { position, height_ms, error: 0.2 }
        })
    }

    /// Candidates spread over a few clusters, so gangs are sometimes
    /// feasible and sometimes not.
    fn clustered(count: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Coord>> {
        prop::collection::vec(
            prop_oneof![coord_near(0.0, 10.0), coord_near(60.0, 10.0), coord_near(-40.0, 30.0)],
            count,
        )
    }

    /// Every subset of `size` out of at most a few candidates whose
    /// pairwise estimates are within the bound.
    fn feasible_gangs(candidates: &[Coord], size: usize, latency_ms_max: f64) -> Vec<Vec<usize>> {
        (0u32..1 << candidates.len())
            .filter(|mask| mask.count_ones() as usize == size)
            .map(|mask| (0..candidates.len()).filter(|idx| mask & (1 << idx) != 0).collect::<Vec<_>>())
            .filter(|members| pairwise_within(candidates, members, latency_ms_max))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_chosen_gang_is_complete_distinct_and_within_the_bound(
            candidates in clustered(0..48),
            size in 0usize..8,
            latency_ms_max in 0.0f64..150.0,
        ) {
            if let Some(members) = choose(&candidates, size, latency_ms_max) {
                prop_assert_eq!(members.len(), size);
                prop_assert!(members.windows(2).all(|pair| pair[0] < pair[1]), "{:?}", members);
                prop_assert!(members.iter().all(|&idx| idx < candidates.len().min(CANDIDATES_MAX)));
                prop_assert!(pairwise_within(&candidates, &members, latency_ms_max));
            }
        }

        #[test]
        fn small_instances_agree_with_brute_force(
            candidates in clustered(0..8),
            size in 2usize..6,
            latency_ms_max in 0.0f64..150.0,
        ) {
            let feasible = feasible_gangs(&candidates, size, latency_ms_max);
            let chosen = choose(&candidates, size, latency_ms_max);
            if chosen.is_some() {
                prop_assert!(!feasible.is_empty());
            }
            // A feasible gang within half the bound of one of its members
            // is found whatever the others: greedy from that member takes
            // its nearest neighbours, which the triangle inequality keeps
            // within the bound of each other. The margin covers rounding.
            let radius_ms = latency_ms_max / 2.0 * (1.0 - 1e-9);
            let ball = feasible.iter().any(|members| {
                members.iter().any(|&seed| {
                    members.iter().all(|&other| other == seed || candidates[seed].distance_ms(&candidates[other]) <= radius_ms)
                })
            });
            if ball {
                prop_assert!(chosen.is_some(), "{:?}", feasible);
            }
        }

        #[test]
        fn a_tight_cluster_always_yields_a_gang(
            candidates in prop::collection::vec(coord_near(20.0, 3.0), 1..8),
            slack_ms in 0.0f64..20.0,
        ) {
            // A bound at least the cluster's diameter: every subset fits.
            let all: Vec<usize> = (0..candidates.len()).collect();
            let latency_ms_max = diameter_ms(&candidates) + slack_ms;
            for size in 0..=candidates.len() {
                prop_assert!(!feasible_gangs(&candidates, size, latency_ms_max).is_empty());
                let chosen = choose(&candidates, size, latency_ms_max);
                // Every subset fits, so the most preferred, the first
                // `size`, is found from the first seed in preference order.
                prop_assert_eq!(chosen, Some(all[..size].to_vec()));
            }
        }
    }
}
