//! The scene a render job draws: camera, named materials and objects.
//!
//! Materials and objects are written in TOML as tables with a `type` key. They
//! are read through flat "fields" structs rather than serde's internally
//! tagged enums, because tagged enums buffer their contents and lose the path
//! of a mistake: `objects[3].radius` would be reported as just `objects[3]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A scene: what the camera sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scene {
    /// Where the picture is taken from.
    pub camera: Camera,
    /// The colour of rays that leave the scene (the sky); black by default.
    #[serde(default)]
    pub background: [f32; 3],
    /// Materials by name, referred to by [`Object`]s.
    #[serde(default)]
    pub materials: BTreeMap<String, Material>,
    /// Everything a ray can hit.
    #[serde(default)]
    pub objects: Vec<Object>,
}

/// A thin-lens camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    /// The eye position.
    pub look_from: [f32; 3],
    /// A point in the centre of the picture.
    pub look_at: [f32; 3],
    /// Which way is up in the picture; `[0, 1, 0]` by default.
    #[serde(default = "default_up")]
    pub up: [f32; 3],
    /// Vertical field of view in degrees, between 0 and 180 exclusive.
    pub vfov_deg: f32,
    /// Lens diameter; 0 (the default) keeps everything in focus.
    #[serde(default)]
    pub aperture: f32,
    /// Distance to the plane in focus; the distance to `look_at` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focus_dist: Option<f32>,
}

fn default_up() -> [f32; 3] {
    [0.0, 1.0, 0.0]
}

/// How a surface scatters or emits light. Colours are linear RGB in `0..=1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MaterialFields", into = "MaterialFields")]
pub enum Material {
    /// A matte surface (Lambertian).
    Diffuse {
        /// Fraction of light reflected per channel.
        albedo: [f32; 3],
    },
    /// A mirror, blurred by `fuzz` (0 is a perfect mirror, 1 very rough).
    Metal {
        /// Fraction of light reflected per channel.
        albedo: [f32; 3],
        /// Roughness, `0..=1`; 0 by default.
        fuzz: f32,
    },
    /// Clear glass with the given index of refraction.
    Glass {
        /// Index of refraction, e.g. 1.5 for window glass.
        ior: f32,
    },
    /// A light. Triangles and planes emit on the side their normal points to
    /// (for a triangle, `(b - a) x (c - a)`); spheres emit outwards.
    Emissive {
        /// Colour of the light.
        color: [f32; 3],
        /// Brightness multiplier; 1 by default.
        strength: f32,
    },
}

/// Something a ray can hit. `material` names an entry of [`Scene::materials`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ObjectFields", into = "ObjectFields")]
pub enum Object {
    /// A ball.
    Sphere {
        /// Centre point.
        center: [f32; 3],
        /// Radius, > 0.
        radius: f32,
        /// Material name.
        material: String,
    },
    /// An infinite plane through `point`.
    Plane {
        /// Any point on the plane.
        point: [f32; 3],
        /// The direction the plane faces; need not be unit length.
        normal: [f32; 3],
        /// Material name.
        material: String,
    },
    /// A triangle; its front faces along `(b - a) x (c - a)`.
    Triangle {
        /// First corner.
        a: [f32; 3],
        /// Second corner.
        b: [f32; 3],
        /// Third corner.
        c: [f32; 3],
        /// Material name.
        material: String,
    },
}

impl Object {
    /// The name of the object's material.
    pub fn material(&self) -> &str {
        match self {
            Object::Sphere { material, .. } | Object::Plane { material, .. } | Object::Triangle { material, .. } => {
                material
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum MaterialKind {
    Diffuse,
    Metal,
    Glass,
    Emissive,
}

/// A material as written: a `type` and every field any type may have.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaterialFields {
    #[serde(rename = "type")]
    kind: MaterialKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    albedo: Option<[f32; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fuzz: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ior: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    color: Option<[f32; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strength: Option<f32>,
}

/// Rejects a field that the chosen `type` does not use, with serde's wording
/// so that the error translation names the table.
fn unused<T>(value: &Option<T>, name: &str, kind: &str, allowed: &str) -> Result<(), String> {
    match value {
        Some(_) => Err(format!("unknown field `{name}`, expected {allowed} (for type = {kind:?})")),
        None => Ok(()),
    }
}

fn required<T: Copy>(value: Option<T>, name: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("missing field `{name}`"))
}

impl TryFrom<MaterialFields> for Material {
    type Error = String;

    fn try_from(fields: MaterialFields) -> Result<Self, String> {
        let f = &fields;
        Ok(match fields.kind {
            MaterialKind::Diffuse => {
                let allowed = "`type` or `albedo`";
                unused(&f.fuzz, "fuzz", "diffuse", allowed)?;
                unused(&f.ior, "ior", "diffuse", allowed)?;
                unused(&f.color, "color", "diffuse", allowed)?;
                unused(&f.strength, "strength", "diffuse", allowed)?;
                Material::Diffuse { albedo: required(f.albedo, "albedo")? }
            }
            MaterialKind::Metal => {
                let allowed = "one of `type`, `albedo`, `fuzz`";
                unused(&f.ior, "ior", "metal", allowed)?;
                unused(&f.color, "color", "metal", allowed)?;
                unused(&f.strength, "strength", "metal", allowed)?;
                Material::Metal { albedo: required(f.albedo, "albedo")?, fuzz: f.fuzz.unwrap_or(0.0) }
            }
            MaterialKind::Glass => {
                let allowed = "`type` or `ior`";
                unused(&f.albedo, "albedo", "glass", allowed)?;
                unused(&f.fuzz, "fuzz", "glass", allowed)?;
                unused(&f.color, "color", "glass", allowed)?;
                unused(&f.strength, "strength", "glass", allowed)?;
                Material::Glass { ior: required(f.ior, "ior")? }
            }
            MaterialKind::Emissive => {
                let allowed = "one of `type`, `color`, `strength`";
                unused(&f.albedo, "albedo", "emissive", allowed)?;
                unused(&f.fuzz, "fuzz", "emissive", allowed)?;
                unused(&f.ior, "ior", "emissive", allowed)?;
                Material::Emissive { color: required(f.color, "color")?, strength: f.strength.unwrap_or(1.0) }
            }
        })
    }
}

impl From<Material> for MaterialFields {
    fn from(material: Material) -> Self {
        let empty = |kind| MaterialFields { kind, albedo: None, fuzz: None, ior: None, color: None, strength: None };
        match material {
            Material::Diffuse { albedo } => MaterialFields { albedo: Some(albedo), ..empty(MaterialKind::Diffuse) },
            Material::Metal { albedo, fuzz } => {
                MaterialFields { albedo: Some(albedo), fuzz: Some(fuzz), ..empty(MaterialKind::Metal) }
            }
            Material::Glass { ior } => MaterialFields { ior: Some(ior), ..empty(MaterialKind::Glass) },
            Material::Emissive { color, strength } => {
                MaterialFields { color: Some(color), strength: Some(strength), ..empty(MaterialKind::Emissive) }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ObjectKind {
    Sphere,
    Plane,
    Triangle,
}

/// An object as written: a `type`, a material and every field any type may have.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectFields {
    #[serde(rename = "type")]
    kind: ObjectKind,
    material: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    center: Option<[f32; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    radius: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    point: Option<[f32; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    normal: Option<[f32; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<[f32; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b: Option<[f32; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<[f32; 3]>,
}

impl TryFrom<ObjectFields> for Object {
    type Error = String;

    fn try_from(fields: ObjectFields) -> Result<Self, String> {
        let f = &fields;
        Ok(match fields.kind {
            ObjectKind::Sphere => {
                let allowed = "one of `type`, `center`, `radius`, `material`";
                for (value, name) in [(&f.point, "point"), (&f.normal, "normal")] {
                    unused(value, name, "sphere", allowed)?;
                }
                for (value, name) in [(&f.a, "a"), (&f.b, "b"), (&f.c, "c")] {
                    unused(value, name, "sphere", allowed)?;
                }
                Object::Sphere {
                    center: required(f.center, "center")?,
                    radius: required(f.radius, "radius")?,
                    material: fields.material,
                }
            }
            ObjectKind::Plane => {
                let allowed = "one of `type`, `point`, `normal`, `material`";
                unused(&f.radius, "radius", "plane", allowed)?;
                for (value, name) in [(&f.center, "center"), (&f.a, "a"), (&f.b, "b"), (&f.c, "c")] {
                    unused(value, name, "plane", allowed)?;
                }
                Object::Plane {
                    point: required(f.point, "point")?,
                    normal: required(f.normal, "normal")?,
                    material: fields.material,
                }
            }
            ObjectKind::Triangle => {
                let allowed = "one of `type`, `a`, `b`, `c`, `material`";
                unused(&f.radius, "radius", "triangle", allowed)?;
                for (value, name) in [(&f.center, "center"), (&f.point, "point"), (&f.normal, "normal")] {
                    unused(value, name, "triangle", allowed)?;
                }
                Object::Triangle {
                    a: required(f.a, "a")?,
                    b: required(f.b, "b")?,
                    c: required(f.c, "c")?,
                    material: fields.material,
                }
            }
        })
    }
}

impl From<Object> for ObjectFields {
    fn from(object: Object) -> Self {
        let empty = |kind, material| ObjectFields {
            kind,
            material,
            center: None,
            radius: None,
            point: None,
            normal: None,
            a: None,
            b: None,
            c: None,
        };
        match object {
            Object::Sphere { center, radius, material } => {
                ObjectFields { center: Some(center), radius: Some(radius), ..empty(ObjectKind::Sphere, material) }
            }
            Object::Plane { point, normal, material } => {
                ObjectFields { point: Some(point), normal: Some(normal), ..empty(ObjectKind::Plane, material) }
            }
            Object::Triangle { a, b, c, material } => {
                ObjectFields { a: Some(a), b: Some(b), c: Some(c), ..empty(ObjectKind::Triangle, material) }
            }
        }
    }
}
