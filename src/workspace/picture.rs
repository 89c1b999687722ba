//! Pictures a run wrote, made ready for a chat client: PNG, JPEG and GIF as they are
//! (after checking their signature), SVG rendered to PNG on the host with `resvg`
//! (pure Rust). The renderer is given no way to reach anything: external and embedded
//! image references resolve to nothing, and there is no resource directory, so an SVG
//! naming `/etc/passwd` as an image renders without it.

use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

/// Longest side, in pixels, of a PNG rendered from an SVG.
pub const MAX_RENDER_SIDE: u32 = 2048;

/// A picture's kind, from its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureKind {
    /// `.png`
    Png,
    /// `.jpg`, `.jpeg`
    Jpeg,
    /// `.gif`
    Gif,
    /// `.svg`
    Svg,
}

impl PictureKind {
    /// The kind of `path`, if it names a picture.
    pub fn of(path: &str) -> Option<PictureKind> {
        let extension = path.rsplit_once('.')?.1.to_ascii_lowercase();
        match extension.as_str() {
            "png" => Some(PictureKind::Png),
            "jpg" | "jpeg" => Some(PictureKind::Jpeg),
            "gif" => Some(PictureKind::Gif),
            "svg" => Some(PictureKind::Svg),
            _ => None,
        }
    }
}

/// A picture as a client shows it: image bytes and their MIME type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    /// `image/png`, `image/jpeg` or `image/gif`.
    pub mime: &'static str,
    /// The image.
    pub data: Vec<u8>,
}

/// Check a raster picture's signature, or render an SVG; why not, if it cannot be shown.
pub fn prepare(kind: PictureKind, bytes: Vec<u8>) -> Result<Picture, String> {
    let (mime, signature_ok) = match kind {
        PictureKind::Png => ("image/png", bytes.starts_with(b"\x89PNG\r\n\x1a\n")),
        PictureKind::Jpeg => ("image/jpeg", bytes.starts_with(&[0xFF, 0xD8, 0xFF])),
        PictureKind::Gif => (
            "image/gif",
            bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a"),
        ),
        PictureKind::Svg => {
            return render_svg(&bytes).map(|data| Picture {
                mime: "image/png",
                data,
            });
        }
    };
    if !signature_ok {
        return Err(format!("not a {mime} file (its first bytes do not say so)"));
    }
    Ok(Picture { mime, data: bytes })
}

/// The fonts text in SVGs is drawn with: the system's, loaded once.
fn fonts() -> Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = usvg::fontdb::Database::new();
            db.load_system_fonts();
            Arc::new(db)
        })
        .clone()
}

/// Render an SVG document to PNG, scaled down to fit [`MAX_RENDER_SIDE`].
pub fn render_svg(svg: &[u8]) -> Result<Vec<u8>, String> {
    let options = usvg::Options {
        resources_dir: None,
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: Box::new(|_, _, _| None),
            resolve_string: Box::new(|_, _| None),
        },
        fontdb: fonts(),
        font_family: "DejaVu Sans".to_owned(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_data(svg, &options).map_err(|e| format!("not a valid SVG: {e}"))?;
    let size = tree.size();
    let longest = size.width().max(size.height());
    if !longest.is_finite() || longest <= 0.0 {
        return Err("the SVG has no size".to_owned());
    }
    let scale = (MAX_RENDER_SIDE as f32 / longest).min(1.0);
    let width = ((size.width() * scale).ceil() as u32).clamp(1, MAX_RENDER_SIDE);
    let height = ((size.height() * scale).ceil() as u32).clamp(1, MAX_RENDER_SIDE);
    let mut pixmap =
        tiny_skia::Pixmap::new(width, height).ok_or_else(|| "the SVG is too large".to_owned())?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| format!("encoding the PNG: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_an_svg_to_a_png_of_its_size() {
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80">
            <rect x="10" y="10" width="50" height="60" fill="steelblue"/></svg>"#;
        let png = render_svg(svg).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        // IHDR: width and height, big-endian, at bytes 16..24.
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 120);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 80);
    }

    #[test]
    fn huge_svgs_are_scaled_down() {
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="50000"/>"#;
        let png = render_svg(svg).unwrap();
        assert_eq!(
            u32::from_be_bytes(png[16..20].try_into().unwrap()),
            MAX_RENDER_SIDE
        );
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 1024);
    }

    #[test]
    fn an_svg_cannot_pull_in_host_files() {
        // usvg's default resolver would load (and draw) this file: an SVG needs no
        // raster decoder, so the check below fails if the resolver is ever the default.
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret.svg");
        std::fs::write(
            &secret,
            br#"<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4" fill="red"/></svg>"#,
        )
        .unwrap();
        let referencing = |href: &str| {
            format!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="4" height="4"><image width="4" height="4" xlink:href="{href}"/></svg>"#
            )
        };
        let empty =
            render_svg(br#"<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>"#)
                .unwrap();
        for href in [
            secret.display().to_string(),
            format!("file://{}", secret.display()),
        ] {
            let png = render_svg(referencing(&href).as_bytes()).unwrap();
            assert_eq!(png, empty, "{href} must not be drawn");
        }
    }

    #[test]
    fn raster_pictures_must_carry_their_signature() {
        assert!(prepare(PictureKind::Png, b"\x89PNG\r\n\x1a\nrest".to_vec()).is_ok());
        assert!(prepare(PictureKind::Png, b"<svg/>".to_vec()).is_err());
        assert!(prepare(PictureKind::Gif, b"GIF89a...".to_vec()).is_ok());
        assert_eq!(PictureKind::of("out/Chart.SVG"), Some(PictureKind::Svg));
        assert_eq!(PictureKind::of("data.csv"), None);
    }
}
