//! Small range checks shared by the workload validators. Each returns an error
//! that names the field and states the accepted range, so every message reads
//! the same way: `render.width must be between 1 and 8192, got 0`.

use std::fmt::Display;

use crate::SpecError;

/// Checks `min <= value <= max`.
pub(crate) fn between<T: PartialOrd + Display>(field: &str, value: T, min: T, max: T) -> Result<(), SpecError> {
    if value < min || value > max {
        return Err(SpecError::invalid(field, format!("must be between {min} and {max}, got {value}")));
    }
    Ok(())
}

/// Checks a finite `value > 0`.
pub(crate) fn positive(field: &str, value: f32) -> Result<(), SpecError> {
    if !(value.is_finite() && value > 0.0) {
        return Err(SpecError::invalid(field, format!("must be > 0, got {value}")));
    }
    Ok(())
}

/// Checks a finite `min <= value <= max` for a float.
pub(crate) fn between_f32(field: &str, value: f32, min: f32, max: f32) -> Result<(), SpecError> {
    if !value.is_finite() {
        return Err(SpecError::invalid(field, format!("must be a finite number between {min} and {max}, got {value}")));
    }
    between(field, value, min, max)
}

/// Checks that every component of a vector is finite.
pub(crate) fn finite3(field: &str, value: [f32; 3]) -> Result<(), SpecError> {
    if value.iter().any(|component| !component.is_finite()) {
        return Err(SpecError::invalid(field, format!("must hold finite numbers, got {}", show3(value))));
    }
    Ok(())
}

/// Checks that every component of a colour lies in `min..=max`.
pub(crate) fn colour(field: &str, value: [f32; 3], min: f32, max: f32) -> Result<(), SpecError> {
    let in_range = |component: &f32| component.is_finite() && (min..=max).contains(component);
    if !value.iter().all(in_range) {
        return Err(SpecError::invalid(
            field,
            format!("must hold three numbers between {min} and {max}, got {}", show3(value)),
        ));
    }
    Ok(())
}

/// Formats a vector as TOML writes it: `[1, 0.5, -2]`.
pub(crate) fn show3(value: [f32; 3]) -> String {
    format!("[{}, {}, {}]", value[0], value[1], value[2])
}
