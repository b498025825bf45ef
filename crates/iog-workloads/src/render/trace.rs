//! The path tracer: the radiance arriving along one camera ray.

use crate::render::camera::Ray;
use crate::render::rng::Rng;
use crate::render::vec3::Vec3;
use crate::render::world::{Surface, World};

/// Rays start this far along their direction, so that a surface does not
/// shadow itself through rounding (at the scale of a unit-sized scene).
const RAY_EPSILON: f32 = 1e-3;

/// Paths longer than this many bounces may be ended at random (Russian
/// roulette), with the survivors weighted up so the mean is unchanged.
const ROULETTE_AFTER_BOUNCES: u32 = 3;

/// Cap per channel on light arriving after one or more bounces. Rare paths
/// through glass or off a mirror onto a light carry huge values that show as
/// isolated bright pixels ("fireflies") at low sample counts; clamping them
/// trades a little energy for a clean image. Light seen directly is not capped.
const INDIRECT_RADIANCE_MAX: f32 = 1.5;

/// The radiance along `ray`, following at most `max_bounces` scatterings.
pub(crate) fn radiance(world: &World, mut ray: Ray, max_bounces: u32, rng: &mut Rng) -> Vec3 {
    let mut total = Vec3::ZERO;
    let mut throughput = Vec3::ONE;
    // Emission seen directly or through a mirror counts; after a diffuse
    // bounce it was already counted by direct light sampling.
    let mut count_sampled_emission = true;
    for bounce in 0..=max_bounces {
        let Some(hit) = world.intersect(&ray, RAY_EPSILON, f32::INFINITY) else {
            total += capped(throughput.mul_each(world.background), bounce);
            break;
        };
        let front_face = ray.direction.dot(hit.normal) < 0.0;
        let normal = if front_face { hit.normal } else { -hit.normal };
        let surface = world.surfaces[hit.surface];
        if let Surface::Emissive { radiance } = surface {
            if front_face && (count_sampled_emission || !hit.sampled_light) {
                total += capped(throughput.mul_each(radiance), bounce);
            }
            break;
        }
        if bounce == max_bounces {
            break;
        }
        let direction = match surface {
            Surface::Diffuse { albedo } => {
                let direct = direct_light(world, hit.point, normal, rng);
                total += capped(throughput.mul_each(albedo).mul_each(direct), bounce + 1);
                throughput = throughput.mul_each(albedo);
                count_sampled_emission = false;
                rng.cosine_direction(normal)
            }
            Surface::Metal { albedo, fuzz } => {
                let reflected = ray.direction.reflect(normal) + rng.in_unit_ball() * fuzz;
                if reflected.dot(normal) <= 0.0 {
                    break;
                }
                throughput = throughput.mul_each(albedo);
                count_sampled_emission = true;
                reflected.normalized()
            }
            Surface::Glass { ior } => {
                count_sampled_emission = true;
                refract_or_reflect(ray.direction, normal, front_face, ior, rng)
            }
            Surface::Emissive { .. } => break,
        };
        ray = Ray { origin: hit.point, direction };
        if bounce >= ROULETTE_AFTER_BOUNCES {
            let survive = throughput.max_component().clamp(0.05, 0.95);
            if rng.next_f32() >= survive {
                break;
            }
            throughput = throughput / survive;
        }
    }
    if total.is_finite() { total } else { Vec3::ZERO }
}

/// Light that arrives after `bounce` scatterings, capped if indirect.
fn capped(contribution: Vec3, bounce: u32) -> Vec3 {
    if bounce == 0 { contribution } else { contribution.min_each(INDIRECT_RADIANCE_MAX) }
}

/// Light arriving at a diffuse point straight from a randomly chosen light,
/// times 1/pi (the Lambertian BRDF without its albedo).
fn direct_light(world: &World, point: Vec3, normal: Vec3, rng: &mut Rng) -> Vec3 {
    let Some(light) = world.sample_light(rng) else {
        return Vec3::ZERO;
    };
    let to_light = light.point - point;
    let distance_squared = to_light.length_squared();
    let distance = distance_squared.sqrt();
    if distance <= 2.0 * RAY_EPSILON {
        return Vec3::ZERO;
    }
    let direction = to_light / distance;
    let cos_surface = normal.dot(direction);
    // Lights emit on their front side only.
    let cos_light = -light.normal.dot(direction);
    if cos_surface <= 0.0 || cos_light <= 0.0 {
        return Vec3::ZERO;
    }
    let shadow = Ray { origin: point, direction };
    if world.occluded(&shadow, RAY_EPSILON, distance - RAY_EPSILON) {
        return Vec3::ZERO;
    }
    let geometry = cos_surface * cos_light / distance_squared;
    light.radiance * (geometry * world.light_area * std::f32::consts::FRAC_1_PI)
}

/// The next direction after meeting glass: refracted, or reflected with the
/// probability given by Schlick's approximation of Fresnel's equations.
fn refract_or_reflect(direction: Vec3, normal: Vec3, front_face: bool, ior: f32, rng: &mut Rng) -> Vec3 {
    let ratio = if front_face { 1.0 / ior } else { ior };
    let cos_theta = (-direction).dot(normal).min(1.0);
    let sin_theta_squared = (1.0 - cos_theta * cos_theta).max(0.0);
    let cannot_refract = ratio * ratio * sin_theta_squared > 1.0;
    if cannot_refract || schlick(cos_theta, ratio) > rng.next_f32() {
        return direction.reflect(normal);
    }
    let perpendicular = (direction + normal * cos_theta) * ratio;
    let parallel = normal * -(1.0 - perpendicular.length_squared()).abs().sqrt();
    (perpendicular + parallel).normalized()
}

fn schlick(cosine: f32, ratio: f32) -> f32 {
    let r0 = (1.0 - ratio) / (1.0 + ratio);
    let r0 = r0 * r0;
    let m = 1.0 - cosine;
    r0 + (1.0 - r0) * (m * m * m * m * m)
}
