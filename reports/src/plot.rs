//! Charts drawn with plotters into PNG and SVG from the same drawing code. Text uses the
//! DejaVu Sans face shipped in `assets/` (registered once), so rendering needs no system
//! fonts and looks the same on every machine.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, SegmentValue, ValueFormatter};
use plotters::prelude::*;

use crate::error::{ReportError, Result};

/// The shipped font (DejaVu Sans 2.37, Bitstream Vera license: see `assets/LICENSE-DejaVu.txt`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn register_font() -> std::result::Result<(), String> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .map_err(|_| "the shipped DejaVu Sans font did not load".to_string())
    })
    .clone()
}

/// Colours in drawing order (colour-blind-safe Okabe–Ito palette).
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
];
const GREY: RGBColor = RGBColor(170, 170, 170);
const RED: RGBColor = RGBColor(200, 30, 30);

/// The two files of one chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartFiles {
    /// PNG image.
    pub png: PathBuf,
    /// SVG image.
    pub svg: PathBuf,
    /// Title (used as the HTML caption).
    pub title: String,
}

/// Something that can draw itself on any backend.
pub trait Chart {
    /// Title shown above the chart.
    fn title(&self) -> String;
    /// Pixel size.
    fn size(&self) -> (u32, u32) {
        (960, 600)
    }
    /// Draws on `root`.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String>;
}

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

/// Draws `chart` to `dir/stem.png` and `dir/stem.svg` (each written to a temporary name and
/// renamed, so a failure leaves no half image).
pub fn save<C: Chart>(chart: &C, dir: &Path, stem: &str) -> Result<ChartFiles> {
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    let plot_err = |path: &Path| {
        let path = path.to_path_buf();
        move |reason: String| ReportError::Plot { path, reason }
    };
    register_font().map_err(plot_err(&png))?;
    let size = chart.size();
    let tmp_png = dir.join(format!(".tmp-{stem}.png"));
    {
        let root = BitMapBackend::new(&tmp_png, size).into_drawing_area();
        root.fill(&WHITE).map_err(e).map_err(plot_err(&png))?;
        chart.draw(&root).map_err(plot_err(&png))?;
        root.present().map_err(e).map_err(plot_err(&png))?;
    }
    std::fs::rename(&tmp_png, &png).map_err(crate::error::io_err("renaming into place", &png))?;
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        root.fill(&WHITE).map_err(e).map_err(plot_err(&svg))?;
        chart.draw(&root).map_err(plot_err(&svg))?;
        root.present().map_err(e).map_err(plot_err(&svg))?;
    }
    crate::fsio::write_atomic(&svg, text.as_bytes())?;
    Ok(ChartFiles {
        png,
        svg,
        title: chart.title(),
    })
}

fn font(size: u32) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size).into_font()).color(&BLACK)
}

/// Engineering notation with an SI prefix: `1.5 k`, `320 M`, `2.1 µ`.
pub fn si(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    const P: [(f64, &str); 9] = [
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
        (1.0, ""),
        (1e-3, "m"),
        (1e-6, "µ"),
        (1e-9, "n"),
        (1e-12, "p"),
    ];
    let a = v.abs();
    for (scale, prefix) in P {
        if a >= scale * 0.9995 {
            let x = v / scale;
            let digits = if x.abs() >= 100.0 {
                0
            } else if x.abs() >= 10.0 {
                1
            } else {
                2
            };
            let s = format!("{x:.digits$}");
            let s = if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                s
            };
            return format!("{s} {prefix}").trim_end().to_string();
        }
    }
    format!("{v:.1e}")
}

/// Seconds with a unit: `12.5 ms`.
pub fn seconds(v: f64) -> String {
    format!("{}s", si(v)).replace(" s", " s")
}

fn padded_log(lo: f64, hi: f64) -> (f64, f64) {
    let lo = if lo > 0.0 && lo.is_finite() {
        lo
    } else {
        1e-12
    };
    let hi = if hi > lo && hi.is_finite() {
        hi
    } else {
        lo * 10.0
    };
    (lo / 1.6, hi * 1.6)
}

fn padded_lin(lo: f64, hi: f64) -> (f64, f64) {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let span = if hi > lo { hi - lo } else { hi.abs().max(1.0) };
    (
        (lo - 0.05 * span)
            .min(0.0)
            .max(if lo >= 0.0 { 0.0 } else { f64::MIN }),
        hi + 0.08 * span,
    )
}

/// A series of a scatter chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// `(x, y)` values.
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
    /// Marker radius in pixels (0: no markers).
    pub marker: u32,
    /// Connect the points (in the given order).
    pub line: bool,
}

/// A scatter/line chart, each axis linear or logarithmic.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // plotters' SeriesLabelPosition has no Debug
pub struct Scatter {
    /// Title.
    pub title: String,
    /// X axis description.
    pub x_desc: String,
    /// Y axis description.
    pub y_desc: String,
    /// Logarithmic x.
    pub x_log: bool,
    /// Logarithmic y.
    pub y_log: bool,
    /// Tick label formatter for x.
    pub x_fmt: fn(f64) -> String,
    /// Tick label formatter for y.
    pub y_fmt: fn(f64) -> String,
    /// Series, drawn in order (later ones on top).
    pub series: Vec<Series>,
    /// Where the legend goes (pick an empty corner).
    pub legend_at: SeriesLabelPosition,
    /// Extra room on the right, as a factor of the x span (log axes: a multiplier), so a
    /// legend placed there does not cover data.
    pub x_room: f64,
}

impl Scatter {
    fn draw_on<DB: DrawingBackend, X, Y>(
        &self,
        root: &DrawingArea<DB, Shift>,
        x: X,
        y: Y,
    ) -> std::result::Result<(), String>
    where
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(26))
            .margin(18)
            .x_label_area_size(56)
            .y_label_area_size(96)
            .build_cartesian_2d(x, y)
            .map_err(e)?;
        let xf = |v: &f64| (self.x_fmt)(*v);
        let yf = |v: &f64| (self.y_fmt)(*v);
        chart
            .configure_mesh()
            .x_desc(&self.x_desc)
            .y_desc(&self.y_desc)
            .axis_desc_style(font(18))
            .label_style(font(15))
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .x_labels(8)
            .y_labels(8)
            .light_line_style(RGBColor(236, 236, 236))
            .draw()
            .map_err(e)?;
        for s in &self.series {
            let color = s.color;
            let legend_line = s.line;
            if s.line && s.points.len() > 1 {
                let anno = chart
                    .draw_series(LineSeries::new(
                        s.points.iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(e)?;
                if s.marker == 0 {
                    anno.label(&s.label).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                }
            }
            if s.marker > 0 {
                let r = s.marker;
                chart
                    .draw_series(
                        s.points
                            .iter()
                            .map(|&p| Circle::new(p, r, color.mix(0.85).filled())),
                    )
                    .map_err(e)?
                    .label(&s.label)
                    .legend(move |(x, y)| {
                        if legend_line {
                            EmptyElement::at((x, y))
                                + PathElement::new(vec![(0, 0), (20, 0)], color.stroke_width(2))
                                + Circle::new((10, 0), 4, color.filled())
                        } else {
                            EmptyElement::at((x, y))
                                + PathElement::new(vec![(10, 0), (10, 0)], color)
                                + Circle::new((10, 0), 4, color.filled())
                        }
                    });
            }
        }
        chart
            .configure_series_labels()
            .label_font(font(15))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(200, 200, 200))
            .position(self.legend_at.clone())
            .draw()
            .map_err(e)?;
        Ok(())
    }
}

impl Chart for Scatter {
    fn title(&self) -> String {
        self.title.clone()
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let all = self.series.iter().flat_map(|s| s.points.iter());
        let (mut xl, mut xh, mut yl, mut yh) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in all {
            if self.x_log && x <= 0.0 || self.y_log && y <= 0.0 {
                continue;
            }
            xl = xl.min(x);
            xh = xh.max(x);
            yl = yl.min(y);
            yh = yh.max(y);
        }
        if xl > xh {
            (xl, xh, yl, yh) = (1.0, 10.0, 1.0, 10.0);
        }
        let (x0, x1) = if self.x_log {
            padded_log(xl, xh)
        } else {
            padded_lin(xl, xh)
        };
        let (y0, y1) = if self.y_log {
            padded_log(yl, yh)
        } else {
            padded_lin(yl, yh)
        };
        match (self.x_log, self.y_log) {
            (true, true) => self.draw_on(root, (x0..x1).log_scale(), (y0..y1).log_scale()),
            (true, false) => self.draw_on(root, (x0..x1).log_scale(), y0..y1),
            (false, true) => self.draw_on(root, x0..x1, (y0..y1).log_scale()),
            (false, false) => self.draw_on(root, x0..x1, y0..y1),
        }
    }
}

/// One horizontal bar.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Category label (left of the bar).
    pub label: String,
    /// Length.
    pub value: f64,
    /// Text drawn at the end of the bar.
    pub note: String,
    /// Colour index into [`PALETTE`].
    pub color: usize,
}

/// A horizontal bar chart (labels stay readable however many bars there are).
#[derive(Debug, Clone)]
pub struct Bars {
    /// Title.
    pub title: String,
    /// Value axis description.
    pub x_desc: String,
    /// Bars, top to bottom.
    pub bars: Vec<Bar>,
    /// Value axis maximum at least this.
    pub x_min_max: f64,
    /// A vertical reference line (e.g. 100 % of a device) and its legend text.
    pub reference: Option<(f64, String)>,
    /// Legend entries: (colour index, text).
    pub legend: Vec<(usize, String)>,
    /// Value axis tick formatter.
    pub x_fmt: fn(f64) -> String,
}

impl Chart for Bars {
    fn title(&self) -> String {
        self.title.clone()
    }
    fn size(&self) -> (u32, u32) {
        let h = 150 + 34 * self.bars.len().max(1) as u32;
        (960, h.clamp(320, 1400))
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let n = self.bars.len().max(1);
        let vmax = self
            .bars
            .iter()
            .map(|b| b.value)
            .chain(self.reference.iter().map(|r| r.0))
            .fold(self.x_min_max, f64::max);
        let longest = self
            .bars
            .iter()
            .map(|b| b.label.chars().count())
            .max()
            .unwrap_or(4);
        let label_area = (longest as u32 * 9 + 24).clamp(80, 360);
        // Leave room right of the longest bar for its note (about 8.5 px per character at
        // 14 px), so the text is never clipped at the plot edge.
        let note = self
            .bars
            .iter()
            .map(|b| b.note.chars().count())
            .max()
            .unwrap_or(0) as f64;
        let plot_w = (f64::from(self.size().0) - f64::from(label_area) - 60.0).max(200.0);
        let headroom = 1.0 / (1.0 - (note * 8.5 / plot_w).clamp(0.1, 0.6));
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(26))
            .margin(18)
            .x_label_area_size(56)
            .y_label_area_size(label_area)
            .build_cartesian_2d(0f64..vmax * headroom, (0..n - 1).into_segmented())
            .map_err(e)?;
        let xf = |v: &f64| (self.x_fmt)(*v);
        let yf = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => (n - 1)
                .checked_sub(*i)
                .and_then(|k| self.bars.get(k))
                .map(|b| b.label.clone())
                .unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(&self.x_desc)
            .axis_desc_style(font(18))
            .label_style(font(15))
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .y_labels(n)
            .light_line_style(RGBColor(236, 236, 236))
            .draw()
            .map_err(e)?;
        // Bars are listed top to bottom; the segmented axis counts from the bottom.
        for (i, b) in self.bars.iter().enumerate() {
            let slot = n - 1 - i;
            let color = PALETTE[b.color % PALETTE.len()];
            let mut rect = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(slot)),
                    (b.value.max(0.0), SegmentValue::Exact(slot + 1)),
                ],
                color.filled(),
            );
            rect.set_margin(5, 5, 0, 0);
            chart.draw_series(std::iter::once(rect)).map_err(e)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!(" {}", b.note),
                    (b.value.max(0.0), SegmentValue::CenterOf(slot)),
                    font(14).pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Left,
                        plotters::style::text_anchor::VPos::Center,
                    )),
                )))
                .map_err(e)?;
        }
        if let Some((x, text)) = &self.reference {
            let x = *x;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, SegmentValue::Exact(0)), (x, SegmentValue::Exact(n))],
                    RED.stroke_width(2),
                )))
                .map_err(e)?
                .label(text)
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        }
        for (c, text) in &self.legend {
            let color = PALETTE[c % PALETTE.len()];
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, SegmentValue<usize>)>>())
                .map_err(e)?
                .label(text)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 16, y + 6)], color.filled())
                });
        }
        if self.reference.is_some() || !self.legend.is_empty() {
            chart
                .configure_series_labels()
                .label_font(font(15))
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(200, 200, 200))
                .position(SeriesLabelPosition::LowerRight)
                .draw()
                .map_err(e)?;
        }
        Ok(())
    }
}

/// Grey for background points.
pub fn grey() -> RGBColor {
    GREY
}
