//! The scene compiled for tracing: shapes with material indices, ray
//! intersection, and the list of lights for direct light sampling.

use crate::render::camera::Ray;
use crate::render::kernel;
use crate::render::rng::Rng;
use crate::render::scene::{Material, Object, Scene};
use crate::render::vec3::Vec3;

/// A material with its colours already combined into radiance and factors.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Surface {
    Diffuse { albedo: Vec3 },
    Metal { albedo: Vec3, fuzz: f32 },
    Glass { ior: f32 },
    Emissive { radiance: Vec3 },
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Sphere { center: Vec3, radius: f32 },
    Plane { point: Vec3, normal: Vec3 },
    Triangle { a: Vec3, edge1: Vec3, edge2: Vec3, normal: Vec3 },
}

#[derive(Debug, Clone, Copy)]
struct Primitive {
    shape: Shape,
    surface: usize,
    /// Whether direct light sampling already covers this light, so that a
    /// diffuse bounce must not count its emission a second time.
    sampled_light: bool,
}

/// The closest surface a ray hits.
pub(crate) struct Hit {
    pub point: Vec3,
    /// Unit geometric normal on the shape's front side.
    pub normal: Vec3,
    pub surface: usize,
    pub sampled_light: bool,
}

/// A point sampled on a light.
pub(crate) struct LightSample {
    pub point: Vec3,
    pub normal: Vec3,
    pub radiance: Vec3,
}

/// A compiled scene.
pub(crate) struct World {
    primitives: Vec<Primitive>,
    pub surfaces: Vec<Surface>,
    pub background: Vec3,
    /// Indices of sampled lights and their running total area, for choosing a
    /// light in proportion to its area.
    lights: Vec<(usize, f32)>,
    pub light_area: f32,
}

impl World {
    /// Compiles a validated scene. Returns the name of a material an object
    /// refers to but the scene lacks (validation reports it first in practice).
    pub fn new(scene: &Scene) -> Result<Self, String> {
        let names: Vec<&String> = scene.materials.keys().collect();
        let surfaces = scene.materials.values().map(compile_material).collect();
        let mut world = World {
            primitives: Vec::with_capacity(scene.objects.len()),
            surfaces,
            background: Vec3::from(scene.background),
            lights: Vec::new(),
            light_area: 0.0,
        };
        for object in &scene.objects {
            let surface = names
                .binary_search_by(|name| name.as_str().cmp(object.material()))
                .map_err(|_| object.material().to_owned())?;
            let shape = compile_shape(object);
            let is_emissive = matches!(world.surfaces[surface], Surface::Emissive { .. });
            // Infinite planes cannot be sampled by area; they keep their
            // emission on every bounce instead.
            let area = match shape {
                Shape::Sphere { radius, .. } => 4.0 * std::f32::consts::PI * radius * radius,
                Shape::Triangle { edge1, edge2, .. } => 0.5 * edge1.cross(edge2).length(),
                Shape::Plane { .. } => 0.0,
            };
            let sampled_light = is_emissive && area > 0.0 && area.is_finite();
            if sampled_light {
                world.light_area += area;
                world.lights.push((world.primitives.len(), world.light_area));
            }
            world.primitives.push(Primitive { shape, surface, sampled_light });
        }
        Ok(world)
    }

    /// The closest hit with `t` in `(t_min, t_max)`.
    /// The world as `render::kernel` lays it out: primitives, surfaces,
    /// lights, their total area and the background.
    #[allow(clippy::type_complexity)]
    pub fn flatten(
        &self,
    ) -> (Vec<[f32; kernel::PRIMITIVE_FLOATS]>, Vec<[f32; kernel::SURFACE_FLOATS]>, Vec<(u32, f32)>, f32, [f32; 3])
    {
        let primitives = self
            .primitives
            .iter()
            .map(|primitive| {
                let mut out = [0.0f32; kernel::PRIMITIVE_FLOATS];
                out[1] = primitive.surface as f32;
                out[2] = if primitive.sampled_light { 1.0 } else { 0.0 };
                let mut put = |slot: usize, v: Vec3| out[4 + 4 * slot..][..3].copy_from_slice(&[v.x, v.y, v.z]);
                let (kind, radius) = match primitive.shape {
                    Shape::Sphere { center, radius } => {
                        put(0, center);
                        (kernel::SPHERE, radius)
                    }
                    Shape::Plane { point, normal } => {
                        put(0, point);
                        put(1, normal);
                        (kernel::PLANE, 0.0)
                    }
                    Shape::Triangle { a, edge1, edge2, normal } => {
                        put(0, a);
                        put(1, edge1);
                        put(2, edge2);
                        put(3, normal);
                        (kernel::TRIANGLE, 0.0)
                    }
                };
                out[0] = kind;
                out[3] = radius;
                out
            })
            .collect();
        let surfaces = self
            .surfaces
            .iter()
            .map(|surface| match *surface {
                Surface::Diffuse { albedo } => [kernel::DIFFUSE, albedo.x, albedo.y, albedo.z, 0.0, 0.0, 0.0, 0.0],
                Surface::Metal { albedo, fuzz } => [kernel::METAL, albedo.x, albedo.y, albedo.z, fuzz, 0.0, 0.0, 0.0],
                Surface::Glass { ior } => [kernel::GLASS, 0.0, 0.0, 0.0, ior, 0.0, 0.0, 0.0],
                Surface::Emissive { radiance } => {
                    [kernel::EMISSIVE, radiance.x, radiance.y, radiance.z, 0.0, 0.0, 0.0, 0.0]
                }
            })
            .collect();
        let lights = self.lights.iter().map(|&(idx, cumulative)| (idx as u32, cumulative)).collect();
        let background = [self.background.x, self.background.y, self.background.z];
        (primitives, surfaces, lights, self.light_area, background)
    }

    pub fn intersect(&self, ray: &Ray, t_min: f32, t_max: f32) -> Option<Hit> {
        let mut closest = t_max;
        let mut found = None;
        for (idx, primitive) in self.primitives.iter().enumerate() {
            if let Some(t) = hit_distance(&primitive.shape, ray, t_min, closest) {
                closest = t;
                found = Some(idx);
            }
        }
        let primitive = &self.primitives[found?];
        let point = ray.origin + ray.direction * closest;
        let normal = match primitive.shape {
            Shape::Sphere { center, radius } => (point - center) / radius,
            Shape::Plane { normal, .. } | Shape::Triangle { normal, .. } => normal,
        };
        Some(Hit { point, normal, surface: primitive.surface, sampled_light: primitive.sampled_light })
    }

    /// Whether anything lies on the ray within `(t_min, t_max)`.
    pub fn occluded(&self, ray: &Ray, t_min: f32, t_max: f32) -> bool {
        self.primitives.iter().any(|primitive| hit_distance(&primitive.shape, ray, t_min, t_max).is_some())
    }

    /// A point on a light chosen in proportion to area and uniformly on it,
    /// so its density is `1 / light_area`; `None` when there are no lights.
    pub fn sample_light(&self, rng: &mut Rng) -> Option<LightSample> {
        let &(_, total) = self.lights.last()?;
        let target = rng.next_f32() * total;
        let chosen = self.lights.partition_point(|&(_, cumulative)| cumulative <= target).min(self.lights.len() - 1);
        let primitive = &self.primitives[self.lights[chosen].0];
        let Surface::Emissive { radiance } = self.surfaces[primitive.surface] else {
            return None;
        };
        let (point, normal) = match primitive.shape {
            Shape::Sphere { center, radius } => {
                let normal = rng.unit_vector();
                (center + normal * radius, normal)
            }
            Shape::Triangle { a, edge1, edge2, normal } => {
                let root = rng.next_f32().sqrt();
                let v = rng.next_f32();
                (a + edge1 * (root * (1.0 - v)) + edge2 * (root * v), normal)
            }
            Shape::Plane { .. } => return None,
        };
        Some(LightSample { point, normal, radiance })
    }
}

fn compile_material(material: &Material) -> Surface {
    match *material {
        Material::Diffuse { albedo } => Surface::Diffuse { albedo: albedo.into() },
        Material::Metal { albedo, fuzz } => Surface::Metal { albedo: albedo.into(), fuzz },
        Material::Glass { ior } => Surface::Glass { ior },
        Material::Emissive { color, strength } => Surface::Emissive { radiance: Vec3::from(color) * strength },
    }
}

fn compile_shape(object: &Object) -> Shape {
    match object {
        Object::Sphere { center, radius, .. } => Shape::Sphere { center: (*center).into(), radius: *radius },
        Object::Plane { point, normal, .. } => {
            Shape::Plane { point: (*point).into(), normal: Vec3::from(*normal).normalized() }
        }
        Object::Triangle { a, b, c, .. } => {
            let a = Vec3::from(*a);
            let edge1 = Vec3::from(*b) - a;
            let edge2 = Vec3::from(*c) - a;
            Shape::Triangle { a, edge1, edge2, normal: edge1.cross(edge2).normalized() }
        }
    }
}

/// The distance along `ray` to `shape`, if within `(t_min, t_max)`.
fn hit_distance(shape: &Shape, ray: &Ray, t_min: f32, t_max: f32) -> Option<f32> {
    let within = |t: f32| t > t_min && t < t_max;
    match *shape {
        Shape::Sphere { center, radius } => {
            // The direction is unit length, so the quadratic's `a` is 1.
            let oc = ray.origin - center;
            let half_b = oc.dot(ray.direction);
            let c = oc.length_squared() - radius * radius;
            let discriminant = half_b * half_b - c;
            if discriminant < 0.0 {
                return None;
            }
            let root = discriminant.sqrt();
            let near = -half_b - root;
            if within(near) {
                return Some(near);
            }
            let far = -half_b + root;
            within(far).then_some(far)
        }
        Shape::Plane { point, normal } => {
            let denominator = normal.dot(ray.direction);
            if denominator.abs() < 1e-9 {
                return None;
            }
            let t = (point - ray.origin).dot(normal) / denominator;
            within(t).then_some(t)
        }
        Shape::Triangle { a, edge1, edge2, .. } => {
            // Möller–Trumbore.
            let p = ray.direction.cross(edge2);
            let determinant = edge1.dot(p);
            if determinant.abs() < 1e-12 {
                return None;
            }
            let inverse = 1.0 / determinant;
            let s = ray.origin - a;
            let u = s.dot(p) * inverse;
            if !(0.0..=1.0).contains(&u) {
                return None;
            }
            let q = s.cross(edge1);
            let v = ray.direction.dot(q) * inverse;
            if v < 0.0 || u + v > 1.0 {
                return None;
            }
            let t = edge2.dot(q) * inverse;
            within(t).then_some(t)
        }
    }
}
