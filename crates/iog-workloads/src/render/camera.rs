//! The thin-lens camera, compiled from [`Camera`](super::Camera) for one image size.

use crate::render::rng::Rng;
use crate::render::scene::Camera;
use crate::render::vec3::Vec3;

/// A ray: origin and unit direction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ray {
    pub origin: Vec3,
    pub direction: Vec3,
}

/// A camera ready to shoot rays through the pixels of a `width` x `height` image.
pub(crate) struct CompiledCamera {
    origin: Vec3,
    upper_left: Vec3,
    horizontal: Vec3,
    vertical: Vec3,
    u: Vec3,
    v: Vec3,
    lens_radius: f32,
    width: f32,
    height: f32,
}

impl CompiledCamera {
    /// Expects a validated camera (finite, non-degenerate view and up).
    pub fn new(camera: &Camera, width: u32, height: u32) -> Self {
        let origin = Vec3::from(camera.look_from);
        let to_target = Vec3::from(camera.look_at) - origin;
        let focus_dist = camera.focus_dist.unwrap_or_else(|| to_target.length());
        let half_height = tan_half_angle_deg(camera.vfov_deg) * focus_dist;
        let half_width = half_height * (width as f32 / height as f32);
        let w = -to_target.normalized();
        let u = Vec3::from(camera.up).cross(w).normalized();
        let v = w.cross(u);
        let horizontal = u * (2.0 * half_width);
        let vertical = -v * (2.0 * half_height);
        let upper_left = origin - w * focus_dist - u * half_width + v * half_height;
        CompiledCamera {
            origin,
            upper_left,
            horizontal,
            vertical,
            u,
            v,
            lens_radius: camera.aperture / 2.0,
            width: width as f32,
            height: height as f32,
        }
    }

    /// A ray through a random point of pixel (x, y); row 0 is the top.
    /// Origin, upper-left corner, horizontal and vertical span, u and v
    /// (each with an unused fourth float), lens radius, width, height.
    pub fn flatten(&self) -> ([[f32; 4]; 6], f32, f32, f32) {
        let four = |v: Vec3| [v.x, v.y, v.z, 0.0];
        (
            [
                four(self.origin),
                four(self.upper_left),
                four(self.horizontal),
                four(self.vertical),
                four(self.u),
                four(self.v),
            ],
            self.lens_radius,
            self.width,
            self.height,
        )
    }

    pub fn ray(&self, x: u32, y: u32, rng: &mut Rng) -> Ray {
        let s = (x as f32 + rng.next_f32()) / self.width;
        let t = (y as f32 + rng.next_f32()) / self.height;
        let target = self.upper_left + self.horizontal * s + self.vertical * t;
        let origin = if self.lens_radius > 0.0 {
            let (dx, dy) = rng.in_unit_disk();
            self.origin + self.u * (dx * self.lens_radius) + self.v * (dy * self.lens_radius)
        } else {
            self.origin
        };
        Ray { origin, direction: (target - origin).normalized() }
    }
}

/// tan(angle / 2) for an angle in degrees, from Taylor series in f64.
///
/// The C library's `tan` may differ in the last bit between machines, and one
/// differing bit here would change every pixel; plain arithmetic does not.
fn tan_half_angle_deg(angle_deg: f32) -> f32 {
    let x = f64::from(angle_deg) / 2.0 * (std::f64::consts::PI / 180.0);
    let (mut sin, mut cos) = (0.0f64, 0.0f64);
    let (mut sin_term, mut cos_term) = (x, 1.0f64);
    // |x| < pi/2, where 30 terms of each series are exact to f64 precision.
    for n in 0..30 {
        sin += sin_term;
        cos += cos_term;
        let k = f64::from(2 * n + 2);
        sin_term *= -x * x / (k * (k + 1.0));
        cos_term *= -x * x / ((k - 1.0) * k);
    }
    (sin / cos) as f32
}

#[cfg(test)]
mod tests {
    use super::tan_half_angle_deg;

    #[test]
    fn tan_matches_the_library_to_float_precision() {
        for angle_deg in [1.0f32, 30.0, 40.0, 90.0, 120.0, 179.0] {
            let expected = (f64::from(angle_deg) / 2.0).to_radians().tan() as f32;
            let got = tan_half_angle_deg(angle_deg);
            assert!((got - expected).abs() <= expected * 1e-6, "{angle_deg}: {got} vs {expected}");
        }
    }
}
