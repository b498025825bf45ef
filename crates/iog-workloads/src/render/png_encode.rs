//! PNG encoding of RGB8 images.

/// Encodes `width * height` RGB8 pixels, row-major, as a PNG file.
///
/// # Panics
///
/// If `rgb.len() != width * height * 3`; callers own the buffer they pass.
pub fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    assert_eq!(rgb.len(), width as usize * height as usize * 3, "encode_png needs width * height * 3 bytes");
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Writing to a Vec cannot fail, and the length was checked above, which is
    // the only other way the encoder can refuse the data.
    let mut writer = encoder.write_header().expect("a PNG header for a valid size writes to a Vec");
    writer.write_image_data(rgb).expect("image data of the checked length writes to a Vec");
    writer.finish().expect("finishing a PNG written to a Vec cannot fail");
    png_bytes
}
