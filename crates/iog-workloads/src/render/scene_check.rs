//! Range checks for a scene. Paths in errors start with the given prefix
//! (`render.scene` for an inline scene, empty inside a scene file).

use crate::SpecError;
use crate::check::{self, show3};
use crate::error::join;
use crate::render::scene::{Camera, Material, Object, Scene};
use crate::render::vec3::Vec3;

/// Most materials a scene may define.
pub const SCENE_MATERIALS_MAX: usize = 256;

/// Most objects a scene may hold. Every ray is tested against every object,
/// so this bounds the cost of one ray.
pub const SCENE_OBJECTS_MAX: usize = 4096;

/// Largest index of refraction accepted for glass.
pub const GLASS_IOR_MAX: f32 = 4.0;

/// Largest strength accepted for an emissive material.
pub const EMISSIVE_STRENGTH_MAX: f32 = 1.0e6;

/// Largest background component (the sky may be brighter than white).
pub const BACKGROUND_MAX: f32 = 1.0e6;

/// Checks a scene; `prefix` is the path of the scene table.
pub(crate) fn validate_scene(scene: &Scene, prefix: &str) -> Result<(), SpecError> {
    let path = |field: &str| join(prefix, field);
    validate_camera(&scene.camera, &path("camera"))?;
    check::colour(&path("background"), scene.background, 0.0, BACKGROUND_MAX)?;
    if scene.materials.len() > SCENE_MATERIALS_MAX {
        return Err(SpecError::invalid(
            path("materials"),
            format!("may define at most {SCENE_MATERIALS_MAX} materials, got {}", scene.materials.len()),
        ));
    }
    for (name, material) in &scene.materials {
        validate_material(material, &path(&format!("materials.{name}")))?;
    }
    if scene.objects.len() > SCENE_OBJECTS_MAX {
        return Err(SpecError::invalid(
            path("objects"),
            format!("may hold at most {SCENE_OBJECTS_MAX} objects, got {}", scene.objects.len()),
        ));
    }
    for (object_idx, object) in scene.objects.iter().enumerate() {
        let object_path = path(&format!("objects[{object_idx}]"));
        validate_object(object, &object_path)?;
        let material = object.material();
        if !scene.materials.contains_key(material) {
            let known: Vec<&str> = scene.materials.keys().map(String::as_str).collect();
            let known = if known.is_empty() {
                "the scene defines none".to_owned()
            } else {
                format!("defined: {}", known.join(", "))
            };
            return Err(SpecError::invalid(
                join(&object_path, "material"),
                format!(
                    "names unknown material {material:?}; add a [materials.{material}] table \
                     to the scene or use a defined one ({known})"
                ),
            ));
        }
    }
    Ok(())
}

fn validate_camera(camera: &Camera, prefix: &str) -> Result<(), SpecError> {
    let path = |field: &str| join(prefix, field);
    check::finite3(&path("look_from"), camera.look_from)?;
    check::finite3(&path("look_at"), camera.look_at)?;
    check::finite3(&path("up"), camera.up)?;
    let view = Vec3::from(camera.look_at) - Vec3::from(camera.look_from);
    if view.length() == 0.0 {
        return Err(SpecError::invalid(
            path("look_at"),
            format!("must differ from look_from, both are {}", show3(camera.look_at)),
        ));
    }
    let up = Vec3::from(camera.up);
    if up.cross(view).length() <= 1e-6 * up.length() * view.length() {
        return Err(SpecError::invalid(
            path("up"),
            format!(
                "must not be zero or parallel to the view direction (look_at - look_from), got {}",
                show3(camera.up)
            ),
        ));
    }
    if !(camera.vfov_deg.is_finite() && camera.vfov_deg > 0.0 && camera.vfov_deg < 180.0) {
        return Err(SpecError::invalid(
            path("vfov_deg"),
            format!("must be > 0 and < 180 (degrees), got {}", camera.vfov_deg),
        ));
    }
    if !(camera.aperture.is_finite() && camera.aperture >= 0.0) {
        return Err(SpecError::invalid(path("aperture"), format!("must be >= 0, got {}", camera.aperture)));
    }
    if let Some(focus_dist) = camera.focus_dist {
        check::positive(&path("focus_dist"), focus_dist)?;
    }
    Ok(())
}

fn validate_material(material: &Material, prefix: &str) -> Result<(), SpecError> {
    let path = |field: &str| join(prefix, field);
    match *material {
        Material::Diffuse { albedo } => check::colour(&path("albedo"), albedo, 0.0, 1.0),
        Material::Metal { albedo, fuzz } => {
            check::colour(&path("albedo"), albedo, 0.0, 1.0)?;
            check::between_f32(&path("fuzz"), fuzz, 0.0, 1.0)
        }
        Material::Glass { ior } => check::between_f32(&path("ior"), ior, 1.0, GLASS_IOR_MAX),
        Material::Emissive { color, strength } => {
            check::colour(&path("color"), color, 0.0, 1.0)?;
            check::between_f32(&path("strength"), strength, 0.0, EMISSIVE_STRENGTH_MAX)
        }
    }
}

fn validate_object(object: &Object, prefix: &str) -> Result<(), SpecError> {
    let path = |field: &str| join(prefix, field);
    match object {
        Object::Sphere { center, radius, .. } => {
            check::finite3(&path("center"), *center)?;
            check::positive(&path("radius"), *radius)
        }
        Object::Plane { point, normal, .. } => {
            check::finite3(&path("point"), *point)?;
            check::finite3(&path("normal"), *normal)?;
            if Vec3::from(*normal).length() == 0.0 {
                return Err(SpecError::invalid(
                    path("normal"),
                    "must not be [0, 0, 0]; give the direction the plane faces",
                ));
            }
            Ok(())
        }
        Object::Triangle { a, b, c, .. } => {
            check::finite3(&path("a"), *a)?;
            check::finite3(&path("b"), *b)?;
            check::finite3(&path("c"), *c)?;
            let (a, b, c) = (Vec3::from(*a), Vec3::from(*b), Vec3::from(*c));
            if (b - a).cross(c - a).length() == 0.0 {
                return Err(SpecError::invalid(
                    prefix,
                    "is a degenerate triangle: a, b and c lie on one line; move one corner",
                ));
            }
            Ok(())
        }
    }
}
