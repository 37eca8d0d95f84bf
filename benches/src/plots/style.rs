//! What every chart shares: size, fonts, colours, and turning a drawing into SVG text.
//!
//! Text is written as SVG `<text>` in a generic `sans-serif` family: plotters is built
//! without font loading, so nothing depends on the fonts of the machine that draws; the
//! viewer's own sans-serif renders it.

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Width and height of every chart, px.
pub const SIZE: (u32, u32) = (960, 540);

/// Font family of every text.
pub const FAMILY: &str = "sans-serif";

/// Title text size (plotters units; the SVG font-size is this / 1.24).
pub const TITLE: u32 = 26;

/// Axis description text size.
pub const DESC: u32 = 20;

/// Tick label and legend text size.
pub const LABEL: u32 = 17;

/// First series colour (blue).
pub const BLUE_: RGBColor = RGBColor(31, 119, 180);

/// Second series colour (orange).
pub const ORANGE: RGBColor = RGBColor(255, 127, 14);

/// Third series colour (red).
pub const RED_: RGBColor = RGBColor(214, 39, 40);

/// A colour per series index, cycling through a palette readable on white.
pub fn series_color(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 6] = [
        BLUE_,
        ORANGE,
        RGBColor(44, 160, 44),
        RED_,
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ];
    PALETTE[i % PALETTE.len()]
}

/// Draws the legend of `labels` (a chart's `configure_series_labels()`) at `position`, in
/// the house style: label font, a nearly opaque white box, a black border.
pub fn draw_legend<'a, 'b, DB, CT>(
    mut labels: plotters::chart::SeriesLabelStyle<'a, 'b, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    labels
        .position(position)
        .label_font((FAMILY, LABEL))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)
}

/// Renders a chart into SVG text: `draw` gets a white drawing area of [`SIZE`].
pub fn svg<F>(draw: F) -> Result<String>
where
    F: FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<()>,
{
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        draw(&root)?;
        root.present().map_err(plot_err)?;
    }
    Ok(out)
}

/// A plotters error as an anyhow error.
pub fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e}")
}
