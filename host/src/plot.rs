//! Dependency-free SVG charts for training runs and learning-rate sweeps.
//!
//! Build a [`Chart`] out of [`Series`] (curves or scatters) and [`RefLine`]s (dashed
//! horizontal/vertical markers such as the stability threshold `2/lr`), then call
//! [`render_svg`] for one chart or [`render_grid_svg`] for a dashboard of several.
//!
//! ```
//! use edgewise::plot::{render_svg, palette_color, Chart, RefLine, Series};
//! let lr = 0.05;
//! let sharpness: Vec<f64> = (0..200).map(|i| 40.0 * (1.0 - (-(i as f64) / 50.0).exp())).collect();
//! let chart = Chart::new("Sharpness", "step", "λ_max")
//!     .with_series(Series::from_values("lr = 0.05", &sharpness))
//!     .with_ref_line(RefLine::at_y(2.0 / lr, "2/lr").with_color(palette_color(0)));
//! let svg = render_svg(&chart);
//! assert!(svg.starts_with("<svg"));
//! ```
//!
//! Behaviour worth knowing:
//!
//! * Points with a non-finite coordinate (NaN, ±inf) are skipped and **break the line**:
//!   a diverged run or an unmeasured value shows as a gap. On a logarithmic y axis, a
//!   non-positive y (a loss of exactly 0) breaks the line too, but is not hidden: it is drawn
//!   as a hollow triangle on the bottom edge of the frame (the "floor"), and a note under the
//!   legend says how many values were drawn there. (A non-positive x on a log x axis is skipped.)
//! * Axis ranges are computed from the data, padded by 4% (of the decades on log axes): the
//!   x range from every finite x (a run whose loss is 0 after its first steps keeps its whole
//!   length), the y range from the drawable points. Reference lines and reference series
//!   ([`Series::as_reference`]) widen a range only if they lie within half the data's span of
//!   it (at least a decade on a log axis, the largest magnitude on a linear one), so a
//!   threshold far from the data cannot squash it; what they leave out is clipped and named in
//!   a note ("2/lr = 2e5: off scale (above)"). `y_range`/`x_range` fix a range exactly
//!   instead; data outside it is clipped at the frame (SVG `clipPath`), so one loss spike
//!   cannot squash a whole curve. An invalid fixed range (NaN, non-positive on a log axis) is
//!   ignored.
//! * Reference-line labels are drawn under the data (and repeated in the legend), so they
//!   never hide a curve approaching the threshold.
//! * Lines are decimated per pixel column (first, min, max and last point of each column are
//!   kept, so spikes stay visible); scatter markers falling on the same half-pixel are drawn
//!   once. A 100k-point run renders to a few tens of kB. `LinePoints` drops its markers when
//!   a series has more points than about one per 5 px of plot width.
//! * Rendering never panics: empty or all-NaN charts render a frame saying "no data",
//!   constant data gets a padded range, sizes are clamped to 160..=16384 px, and all text is
//!   XML-escaped.
//! * Output is deterministic (byte-identical for identical input); coordinates carry at
//!   most two decimals.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

/// How a [`Series`] is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Style {
    /// A polyline through the points (in the given order).
    #[default]
    Line,
    /// One marker per point.
    Points,
    /// A polyline with markers (markers are dropped for very dense series).
    LinePoints,
    /// A cross on the top edge of the frame at each x, whatever the y (e.g. the learning
    /// rates at which runs diverged and have no value to draw); the x values count in the range.
    TopMarks,
    /// One hollow ring per point, over the other series (e.g. measurements that missed their
    /// tolerance, drawn over the series they belong to).
    Hollow,
}

/// One curve or scatter on a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend text; an empty label keeps the series out of the legend.
    pub label: String,
    /// `(x, y)` pairs, drawn in order; non-finite pairs make gaps.
    pub points: Vec<(f64, f64)>,
    pub style: Style,
    /// Any SVG colour (`"#0072B2"`, `"teal"`); `None` picks [`palette_color`] of the series index.
    pub color: Option<String>,
    pub dashed: bool,
    /// A reference curve (a threshold that varies along x, such as `2/lr` under a schedule):
    /// like a [`RefLine`], it widens the axis ranges only where it comes near the data, and is
    /// clipped (with a note) where it does not.
    pub reference: bool,
}

impl Series {
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>, style: Style) -> Self {
        Series {
            label: label.into(),
            points,
            style,
            color: None,
            dashed: false,
            reference: false,
        }
    }
    /// A line series.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self::new(label, points, Style::Line)
    }
    /// A scatter (markers only) series.
    pub fn scatter(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self::new(label, points, Style::Points)
    }
    /// A line series with markers.
    pub fn line_points(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self::new(label, points, Style::LinePoints)
    }
    /// Crosses on the top edge at the given x values (see [`Style::TopMarks`]).
    pub fn top_marks(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self::new(label, points, Style::TopMarks)
    }
    /// A line series with `x = 0, 1, 2, ...` (e.g. a per-step loss curve).
    pub fn from_values(label: impl Into<String>, values: &[f64]) -> Self {
        Self::line(
            label,
            values
                .iter()
                .enumerate()
                .map(|(i, &v)| (i as f64, v))
                .collect(),
        )
    }
    pub fn with_color(mut self, color: impl Into<String>) -> Self {
        self.color = Some(color.into());
        self
    }
    pub fn with_style(mut self, style: Style) -> Self {
        self.style = style;
        self
    }
    pub fn with_dashed(mut self, dashed: bool) -> Self {
        self.dashed = dashed;
        self
    }
    /// Marks the series a reference curve (see [`Series::reference`]).
    pub fn as_reference(mut self) -> Self {
        self.reference = true;
        self
    }
}

/// A dashed reference line across the whole plot, labelled near its end.
#[derive(Clone, Debug, PartialEq)]
pub struct RefLine {
    pub value: f64,
    /// Shown next to the line and in the legend (empty: neither).
    pub label: String,
    /// `true`: the line `y = value`; `false`: the line `x = value`.
    pub horizontal: bool,
    /// `None` draws it dark gray.
    pub color: Option<String>,
}

impl RefLine {
    /// The horizontal line `y = value`.
    pub fn at_y(value: f64, label: impl Into<String>) -> Self {
        RefLine {
            value,
            label: label.into(),
            horizontal: true,
            color: None,
        }
    }
    /// The vertical line `x = value`.
    pub fn at_x(value: f64, label: impl Into<String>) -> Self {
        RefLine {
            value,
            label: label.into(),
            horizontal: false,
            color: None,
        }
    }
    pub fn with_color(mut self, color: impl Into<String>) -> Self {
        self.color = Some(color.into());
        self
    }
}

/// A chart: series, reference lines, axes and size (in px).
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub ref_lines: Vec<RefLine>,
    /// Logarithmic x axis (non-positive x values are skipped).
    pub x_log: bool,
    /// Logarithmic y axis (non-positive y values are skipped).
    pub y_log: bool,
    /// Fixed x range in data units (`None`: automatic).
    pub x_range: Option<(f64, f64)>,
    /// Fixed y range in data units (`None`: automatic); points outside are clipped at the frame.
    pub y_range: Option<(f64, f64)>,
    /// The x values are integers (steps): ticks only at integers, none below 0 when no x is.
    pub x_integer: bool,
    /// Lines of text shown under the legend (what the reader should know about the chart).
    pub notes: Vec<String>,
    pub width: u32,
    pub height: u32,
}

impl Default for Chart {
    fn default() -> Self {
        Chart::new("", "", "")
    }
}

impl Chart {
    /// An empty 800×500 chart with linear axes.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            ref_lines: Vec::new(),
            x_log: false,
            y_log: false,
            x_range: None,
            y_range: None,
            x_integer: false,
            notes: Vec::new(),
            width: 800,
            height: 500,
        }
    }
    pub fn with_series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }
    pub fn with_ref_line(mut self, line: RefLine) -> Self {
        self.ref_lines.push(line);
        self
    }
    pub fn add_series(&mut self, series: Series) -> &mut Self {
        self.series.push(series);
        self
    }
    pub fn add_ref_line(&mut self, line: RefLine) -> &mut Self {
        self.ref_lines.push(line);
        self
    }
    pub fn log_x(mut self) -> Self {
        self.x_log = true;
        self
    }
    pub fn log_y(mut self) -> Self {
        self.y_log = true;
        self
    }
    pub fn with_x_range(mut self, lo: f64, hi: f64) -> Self {
        self.x_range = Some((lo, hi));
        self
    }
    pub fn with_y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }
    pub fn with_size(mut self, width: u32, height: u32) -> Self {
        self.width = width;
        self.height = height;
        self
    }
    /// Integer x values (see [`Chart::x_integer`]).
    pub fn integer_x(mut self) -> Self {
        self.x_integer = true;
        self
    }
    pub fn add_note(&mut self, note: impl Into<String>) -> &mut Self {
        self.notes.push(note.into());
        self
    }
}

/// A value for a label: 4 significant digits, plain (`0.004`, `38`, `1.357`) or, below 1e-3
/// and from 1e5 on, in exponent form (`2e-5`, `2e9`); never f32 noise (`37.999992`).
pub fn fmt_sig(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    fmt_num(v, v.abs() * 5e-4, v != 0.0 && !plain_ok(v.abs()))
}

/// The automatic series colours: the Okabe–Ito colour-blind-safe palette (its yellow
/// darkened for contrast on white), in an order that keeps neighbours distinct.
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#B39B00",
];

/// The automatic colour of series number `i` (use it to colour a matching [`RefLine`]).
pub fn palette_color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// Fractions of an axis within which a reference line is drawn (the frame, with rounding).
const ON_SCALE: std::ops::RangeInclusive<f64> = -1e-9..=1.0 + 1e-9;

/// Where reference line `r` lies: its value on its axis (log10 on a log axis) and that value's
/// fraction of the axis (0..1 inside the frame); `None` when a log axis cannot show it.
fn ref_place(r: &RefLine, c: &Chart, xa: &Axis, ya: &Axis) -> Option<(f64, f64)> {
    let (axis, log) = if r.horizontal {
        (ya, c.y_log)
    } else {
        (xa, c.x_log)
    };
    to_axis(r.value, log).map(|a| (a, axis.frac(a)))
}

/// Renders one chart as a standalone SVG document.
pub fn render_svg(chart: &Chart) -> String {
    let (w, h) = dims(chart);
    let mut out = String::with_capacity(16 * 1024);
    header(&mut out, w, h);
    let mut fp = Fnv::new();
    fp.chart(chart);
    chart_body(&mut out, chart, &format!("ewclip{:016x}", fp.0.finish()));
    out.push_str("</svg>\n");
    out
}

/// Renders several charts as one SVG, laid out row by row in `columns` columns
/// (clamped to `1..=charts.len()`); every cell is as large as the largest chart.
pub fn render_grid_svg(charts: &[Chart], columns: usize) -> String {
    let mut out = String::with_capacity(64 * 1024);
    if charts.is_empty() {
        header(&mut out, 400.0, 120.0);
        out.push_str(r##"<rect width="400" height="120" fill="#fff"/>"##);
        text(
            &mut out,
            200.0,
            65.0,
            14.0,
            "middle",
            MUTED,
            "",
            "no charts",
        );
        out.push_str("</svg>\n");
        return out;
    }
    let cols = columns.clamp(1, charts.len());
    let rows = charts.len().div_ceil(cols);
    let (mut cw, mut ch) = (0.0f64, 0.0f64);
    let mut fp = Fnv::new();
    for c in charts {
        let (w, h) = dims(c);
        cw = cw.max(w);
        ch = ch.max(h);
        fp.chart(c);
    }
    let (tw, th) = (cw * cols as f64, ch * rows as f64);
    header(&mut out, tw, th);
    let _ = write!(
        out,
        r##"<rect width="{}" height="{}" fill="#fff"/>"##,
        f2(tw),
        f2(th)
    );
    for (i, c) in charts.iter().enumerate() {
        let (x, y) = ((i % cols) as f64 * cw, (i / cols) as f64 * ch);
        let _ = write!(out, r#"<g transform="translate({},{})">"#, f2(x), f2(y));
        chart_body(&mut out, c, &format!("ewclip{:016x}g{}", fp.0.finish(), i));
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

// ---------------------------------------------------------------------------------------------
// Look.

const FONT: &str = "Helvetica, Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif";
const TEXT: &str = "#333";
const TITLE: &str = "#111";
const MUTED: &str = "#888";
const GRID_MAJOR: &str = "#e2e2e2";
const GRID_MINOR: &str = "#f0f0f0";
const FRAME: &str = "#999";
const REF_DEFAULT: &str = "#555";
const MIN_W: u32 = 160;
const MIN_H: u32 = 160;
const MAX_SIDE: u32 = 16384;
const TICK_FONT: f64 = 12.0;
const LABEL_FONT: f64 = 13.0;
const TITLE_FONT: f64 = 16.0;
const LEGEND_FONT: f64 = 12.0;
const REF_FONT: f64 = 11.0;
const NOTE_FONT: f64 = 11.0;
const LINE_W: &str = "1.75";
const SERIES_DASH: &str = "7 4";
const REF_DASH: &str = "6 4";
const MARKER_R: f64 = 3.5;

fn dims(c: &Chart) -> (f64, f64) {
    (
        c.width.clamp(MIN_W, MAX_SIDE) as f64,
        c.height.clamp(MIN_H, MAX_SIDE) as f64,
    )
}

fn header(out: &mut String, w: f64, h: f64) {
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{FONT}" font-size="12">"#,
        w = f2(w),
        h = f2(h)
    );
}

/// A coordinate with at most two decimals, trailing zeros trimmed.
fn f2(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let mut s = format!("{v:.2}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            // Characters XML 1.0 does not allow (and newlines/tabs, which SVG text collapses).
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// Approximate advance width of a character in a Helvetica-like font, in em.
fn char_em(c: char) -> f64 {
    // DejaVu Sans metrics (the usual Linux fallback, wider than Helvetica), so text fits
    // whichever of the two the viewer picks.
    match c {
        'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' | 'I' => 0.29,
        ' ' | 'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '-' | '/' => 0.4,
        'm' | 'w' | 'M' | 'W' | '@' | '%' => 0.96,
        '…' => 1.0,
        'A'..='Z' => 0.72,
        '0'..='9' | '=' | '+' | '<' | '>' | '~' => 0.64,
        c if c.is_ascii() => 0.61,
        _ => 0.8,
    }
}

/// `s` broken at spaces into lines of at most `width` px (a longer word is a line of its own).
fn wrap(s: &str, width: f64, size: f64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in s.split_whitespace() {
        let cand = if cur.is_empty() {
            word.to_string()
        } else {
            format!("{cur} {word}")
        };
        if !cur.is_empty() && text_w(&cand, size) > width {
            lines.push(std::mem::replace(&mut cur, word.to_string()));
        } else {
            cur = cand;
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

fn text_w(s: &str, size: f64) -> f64 {
    s.chars().map(char_em).sum::<f64>() * size
}

/// `s`, cut with an ellipsis so that it is at most `max_w` px wide.
fn fit(s: &str, max_w: f64, size: f64) -> String {
    if text_w(s, size) <= max_w {
        return s.to_string();
    }
    let budget = max_w - char_em('…') * size;
    let (mut acc, mut w) = (String::new(), 0.0);
    for ch in s.chars() {
        w += char_em(ch) * size;
        if w > budget {
            break;
        }
        acc.push(ch);
    }
    let trimmed = acc.trim_end().len();
    acc.truncate(trimmed);
    acc.push('…');
    acc
}

#[allow(clippy::too_many_arguments)]
fn text(
    out: &mut String,
    x: f64,
    y: f64,
    size: f64,
    anchor: &str,
    fill: &str,
    extra: &str,
    s: &str,
) {
    let anchor = if anchor == "start" {
        String::new()
    } else {
        format!(r#" text-anchor="{anchor}""#)
    };
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" font-size="{}"{anchor} fill="{}"{extra}>{}</text>"#,
        f2(x),
        f2(y),
        f2(size),
        esc(fill),
        esc(s)
    );
}

// ---------------------------------------------------------------------------------------------
// Axes and ticks.

/// An axis range in axis space (`log10` of the data on a log axis).
#[derive(Clone, Copy, Debug)]
struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
}

/// A finite value a log axis cannot show (`<= 0`), drawn at the bottom of the frame.
fn at_floor(v: f64, log: bool) -> bool {
    log && v.is_finite() && v <= 0.0
}

/// The part of an axis (in axis space) where a reference may widen the data's range `r`: the
/// data's range grown by half its span on each side, and at least by a decade on a log axis
/// or by the largest magnitude on a linear one (a threshold of 2 over lr x sharpness at 1.2
/// is drawn, 2/lr = 2e5 over a sharpness of 9 is not). `None` (no data): anywhere.
fn ref_window(r: Option<(f64, f64)>, log: bool) -> Option<(f64, f64)> {
    let (lo, hi) = r?;
    let floor = if log {
        1.0
    } else {
        let m = lo.abs().max(hi.abs());
        if m > 0.0 {
            m
        } else {
            1.0
        }
    };
    let ext = ((hi - lo) * 0.5).max(floor);
    Some((lo - ext, hi + ext))
}

fn to_axis(v: f64, log: bool) -> Option<f64> {
    if !v.is_finite() {
        None
    } else if log {
        (v > 0.0).then(|| v.log10())
    } else {
        Some(v)
    }
}

impl Axis {
    /// Fraction of the way from `lo` to `hi` (clamped to ±1e6 so pixels stay finite).
    fn frac(&self, a: f64) -> f64 {
        let t = (a * 0.5 - self.lo * 0.5) / (self.hi * 0.5 - self.lo * 0.5);
        if t.is_nan() {
            0.0
        } else {
            t.clamp(-1e6, 1e6)
        }
    }
    fn norm(&self, v: f64) -> Option<f64> {
        to_axis(v, self.log).map(|a| self.frac(a))
    }
}

/// Makes `lo < hi`, both finite, with a representable, positive half-span.
fn sane_range(lo: f64, hi: f64) -> (f64, f64) {
    let clamp = |v: f64| {
        if v.is_nan() {
            0.0
        } else {
            v.clamp(-f64::MAX, f64::MAX)
        }
    };
    let (lo, hi) = (clamp(lo), clamp(hi));
    let half = hi * 0.5 - lo * 0.5;
    if half > 0.0 && half.is_finite() {
        return (lo, hi);
    }
    let m = lo * 0.5 + hi * 0.5;
    let d = (m.abs() * 0.1).max(1.0);
    (clamp(m - d), clamp(m + d))
}

fn make_axis(log: bool, data: Option<(f64, f64)>, fixed: Option<(f64, f64)>) -> Axis {
    if let Some((a, b)) = fixed {
        if let (Some(a), Some(b)) = (to_axis(a, log), to_axis(b, log)) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let (lo, hi) = if lo < hi {
                sane_range(lo, hi)
            } else {
                pad_range(lo, hi, log)
            };
            return Axis { log, lo, hi };
        }
    }
    let (lo, hi) = data.unwrap_or((0.0, 1.0));
    let (lo, hi) = pad_range(lo, hi, log);
    Axis { log, lo, hi }
}

fn pad_range(lo: f64, hi: f64, log: bool) -> (f64, f64) {
    if hi > lo {
        let span = hi - lo;
        if span.is_finite() {
            return sane_range(lo - span * 0.04, hi + span * 0.04);
        }
        return sane_range(lo, hi);
    }
    let v = lo;
    if v == 0.0 && !log {
        // Constant zero (a rotation that never moved): zero near the bottom, as with data
        // rising from it, rather than a range of made-up negative values.
        return (-0.04, 1.0);
    }
    let d = if log { 0.5 } else { v.abs() * 0.1 };
    sane_range(v - d, v + d)
}

#[derive(Clone, Debug, PartialEq)]
struct Tick {
    /// Position in axis space.
    pos: f64,
    label: Option<String>,
    major: bool,
}

/// A 1-2-5 step giving about `target` intervals over `lo..hi`.
fn nice_step(lo: f64, hi: f64, target: usize) -> Option<f64> {
    let raw = (hi * 0.5 - lo * 0.5) / target.max(1) as f64 * 2.0;
    if !(raw > 0.0 && raw.is_finite()) {
        return None;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let n = raw / mag;
    let nice = if n < 1.5 {
        1.0
    } else if n < 3.0 {
        2.0
    } else if n < 7.0 {
        5.0
    } else {
        10.0
    };
    let step = nice * mag;
    (step > 0.0 && step.is_finite()).then_some(step)
}

/// Compact number: plain (`0.001`, `2.5`, `1200`) or scientific (`1e-4`, `3.2e5`), with as
/// few digits as keep it within `tol` of `v`.
fn fmt_num(v: f64, tol: f64, sci: bool) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let tol = tol.abs().max(v.abs() * 1e-12);
    let close = |s: &str| {
        s.parse::<f64>()
            .map(|p| (p - v).abs() <= tol)
            .unwrap_or(false)
    };
    let s = if sci {
        (0..=12)
            .map(|d| format!("{v:.d$e}"))
            .find(|s| close(s))
            .unwrap_or_else(|| format!("{v:e}"))
    } else {
        (0..=17)
            .map(|d| format!("{v:.d$}"))
            .find(|s| close(s))
            .unwrap_or_else(|| format!("{v}"))
    };
    tidy_num(s)
}

fn tidy_num(s: String) -> String {
    let (mant, exp) = match s.find('e') {
        Some(i) => (&s[..i], &s[i..]),
        None => (&s[..], ""),
    };
    let mut m = mant.to_string();
    if m.contains('.') {
        while m.ends_with('0') {
            m.pop();
        }
        if m.ends_with('.') {
            m.pop();
        }
    }
    if m == "-0" {
        m = "0".into();
    }
    if exp == "e0" {
        m
    } else {
        m + exp
    }
}

fn plain_ok(a: f64) -> bool {
    (1e-3..1e5).contains(&a)
}

fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<Tick> {
    let mut vals: Vec<f64> = Vec::new();
    let mut step = f64::NAN;
    if let Some(s) = nice_step(lo, hi, target) {
        step = s;
        let (k0, k1) = ((lo / s).ceil(), (hi / s).floor());
        if k0.is_finite() && k1.is_finite() && k1 >= k0 && k1 - k0 <= 100.0 {
            let n = (k1 - k0) as usize;
            for i in 0..=n {
                let mut v = (k0 + i as f64) * s;
                if v.abs() < s * 1e-9 {
                    v = 0.0;
                }
                if vals.last() != Some(&v) && v.is_finite() {
                    vals.push(v);
                }
            }
        }
    }
    if vals.len() < 2 {
        // Degenerate (huge or sub-ulp ranges): just label the ends.
        vals = vec![lo, hi];
        step = (hi * 0.5 - lo * 0.5).abs();
    }
    let max_abs = vals.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let sci = max_abs > 0.0 && !plain_ok(max_abs);
    let mut ticks: Vec<Tick> = vals
        .iter()
        .map(|&v| Tick {
            pos: v,
            label: Some(fmt_num(v, step * 1e-3, sci)),
            major: true,
        })
        .collect();
    ticks.dedup_by(|b, a| a.label == b.label);
    ticks
}

/// Ticks at integers only (steps), a 1-2-5 multiple apart; none below 0 if `nonneg`.
fn int_ticks(lo: f64, hi: f64, target: usize, nonneg: bool) -> Vec<Tick> {
    let step = nice_step(lo, hi, target).unwrap_or(1.0).max(1.0).round();
    let from = if nonneg { lo.max(0.0) } else { lo };
    let (k0, k1) = ((from / step).ceil(), (hi / step).floor());
    if !(k0.is_finite() && k1.is_finite() && k1 >= k0 && k1 - k0 <= 100.0) {
        return linear_ticks(lo, hi, target);
    }
    let vals: Vec<f64> = (0..=(k1 - k0) as usize)
        .map(|i| (k0 + i as f64) * step)
        .collect();
    let sci = vals.iter().any(|v| v.abs() > 0.0 && !plain_ok(v.abs()));
    vals.into_iter()
        .map(|v| Tick {
            pos: v,
            label: Some(fmt_num(v, 0.5, sci)),
            major: true,
        })
        .collect()
}

fn log_label(exp10: f64) -> String {
    let v = 10f64.powf(exp10);
    fmt_num(v, v * 1e-6, !plain_ok(v))
}

/// Ticks for a log axis whose range is `lo..hi` in decades.
fn log_ticks(lo: f64, hi: f64, max_labels: usize, target: usize) -> Vec<Tick> {
    let eps = (hi - lo) * 1e-9;
    let inside = |p: f64| p >= lo - eps && p <= hi + eps;
    let (d0, d1) = (lo.floor() as i64, hi.ceil() as i64);
    let ndec = (d1 - d0).max(0) as usize;
    let span = hi - lo;
    let mults = |set: &[u32]| -> Vec<(f64, u32)> {
        let mut v = Vec::new();
        if ndec <= 400 {
            for d in d0..=d1 {
                for &m in set {
                    let p = d as f64 + (m as f64).log10();
                    if inside(p) {
                        v.push((p, m));
                    }
                }
            }
        }
        v
    };
    let all = mults(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let count = |f: &dyn Fn(u32) -> bool| all.iter().filter(|(_, m)| f(*m)).count();
    let build = |labeled: &dyn Fn(u32) -> bool, minor: bool| -> Vec<Tick> {
        all.iter()
            .filter(|(_, m)| minor || labeled(*m))
            .map(|&(p, m)| Tick {
                pos: p,
                label: labeled(m).then(|| log_label(p)),
                major: m == 1 || labeled(m),
            })
            .collect()
    };
    let is125 = |m: u32| m == 1 || m == 2 || m == 5;
    let is1 = |m: u32| m == 1;
    let n125 = count(&is125);
    if span <= 3.5 && (3..=max_labels).contains(&n125) {
        return build(&is125, true);
    }
    let n1 = count(&is1);
    if (2..=max_labels).contains(&n1) {
        return build(&is1, span <= 7.0);
    }
    if n1 > max_labels && ndec <= 400 {
        // Many decades: label every `stride`-th one, grid at the others.
        let stride = n1.div_ceil(max_labels.max(1)).max(1) as i64;
        let mut t = Vec::new();
        for d in d0..=d1 {
            let p = d as f64;
            if inside(p) {
                let lab = d.rem_euclid(stride) == 0;
                if lab || ndec <= 60 {
                    t.push(Tick {
                        pos: p,
                        label: lab.then(|| log_label(p)),
                        major: lab,
                    });
                }
            }
        }
        if t.iter().filter(|t| t.label.is_some()).count() >= 2 {
            return t;
        }
    }
    // Less than about a decade: nice linear ticks of the values, placed logarithmically.
    let (vlo, vhi) = (10f64.powf(lo), 10f64.powf(hi));
    let mut t: Vec<Tick> = linear_ticks(vlo, vhi, target.min(max_labels).max(2))
        .into_iter()
        .filter(|t| t.pos > 0.0)
        .map(|t| Tick {
            pos: t.pos.log10(),
            ..t
        })
        .filter(|t| inside(t.pos))
        .collect();
    if t.len() < 2 {
        t = [lo, hi]
            .iter()
            .map(|&p| Tick {
                pos: p,
                label: Some(log_label(p)),
                major: true,
            })
            .collect();
    }
    t
}

// ---------------------------------------------------------------------------------------------
// Geometry.

#[derive(Clone, Copy, Debug)]
struct Rect {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Rect {
    fn grow(self, d: f64) -> Rect {
        Rect {
            x0: self.x0 - d,
            y0: self.y0 - d,
            x1: self.x1 + d,
            y1: self.y1 + d,
        }
    }
    fn contains(&self, p: (f64, f64)) -> bool {
        p.0 >= self.x0 && p.0 <= self.x1 && p.1 >= self.y0 && p.1 <= self.y1
    }
}

type Pt = (f64, f64);

/// Liang–Barsky: the part of segment `a..b` inside `r`.
fn clip_seg(a: Pt, b: Pt, r: &Rect) -> Option<(Pt, Pt)> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - r.x0),
        (dx, r.x1 - a.0),
        (-dy, a.1 - r.y0),
        (dy, r.y1 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                if t > t1 {
                    return None;
                }
                t0 = t0.max(t);
            } else {
                if t < t0 {
                    return None;
                }
                t1 = t1.min(t);
            }
        }
    }
    let c = if t0 > 0.0 {
        (a.0 + t0 * dx, a.1 + t0 * dy)
    } else {
        a
    };
    let d = if t1 < 1.0 {
        (a.0 + t1 * dx, a.1 + t1 * dy)
    } else {
        b
    };
    Some((c, d))
}

/// Clips a polyline to `r`, returning the visible pieces.
fn clip_polyline(pts: &[Pt], r: &Rect) -> Vec<Vec<Pt>> {
    let mut out: Vec<Vec<Pt>> = Vec::new();
    let mut cur: Vec<Pt> = Vec::new();
    for w in pts.windows(2) {
        match clip_seg(w[0], w[1], r) {
            Some((c, d)) => {
                if cur.last() != Some(&c) {
                    if cur.len() >= 2 {
                        out.push(std::mem::take(&mut cur));
                    }
                    cur.clear();
                    cur.push(c);
                }
                cur.push(d);
            }
            None => {
                if cur.len() >= 2 {
                    out.push(std::mem::take(&mut cur));
                }
                cur.clear();
            }
        }
    }
    if cur.len() >= 2 {
        out.push(cur);
    }
    out
}

/// Per-pixel-column decimation (M4): in each run of consecutive points sharing a pixel column,
/// keep the first, lowest, highest and last, in their original order. At one-pixel resolution
/// the polyline looks the same, spikes included.
fn decimate_m4(pts: &[Pt]) -> Vec<Pt> {
    if pts.len() <= 4 {
        return pts.to_vec();
    }
    let mut out = Vec::with_capacity(pts.len().min(4096));
    let mut i = 0;
    while i < pts.len() {
        let col = pts[i].0.floor();
        let (mut j, mut lo, mut hi) = (i, i, i);
        while j < pts.len() && pts[j].0.floor() == col {
            if pts[j].1 < pts[lo].1 {
                lo = j;
            }
            if pts[j].1 > pts[hi].1 {
                hi = j;
            }
            j += 1;
        }
        let mut idx = [i, lo, hi, j - 1];
        idx.sort_unstable();
        for (k, &ix) in idx.iter().enumerate() {
            if k == 0 || ix != idx[k - 1] {
                out.push(pts[ix]);
            }
        }
        i = j;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Drawing.

enum Swatch {
    Series {
        dashed: bool,
        line: bool,
        marker: bool,
    },
    Ref,
    /// A cross ([`Style::TopMarks`]).
    Cross,
    /// A ring ([`Style::Hollow`]).
    Ring,
    /// A line of text without a swatch.
    Note,
}

struct LegendEntry {
    label: String,
    color: String,
    swatch: Swatch,
}

/// Stable fingerprint of a chart, for clip-path ids that do not collide when several SVGs
/// are inlined into one HTML page.
struct Fnv(crate::fnv::Fnv64);

impl Fnv {
    fn new() -> Self {
        Fnv(crate::fnv::Fnv64::new())
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.bytes(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(&(s.len() as u64).to_le_bytes());
        self.bytes(s.as_bytes());
    }
    fn f(&mut self, v: f64) {
        self.bytes(&v.to_bits().to_le_bytes());
    }
    fn chart(&mut self, c: &Chart) {
        for s in [&c.title, &c.x_label, &c.y_label] {
            self.str(s);
        }
        self.bytes(&[c.x_log as u8, c.y_log as u8]);
        self.bytes(&c.width.to_le_bytes());
        self.bytes(&c.height.to_le_bytes());
        for s in &c.series {
            self.str(&s.label);
            self.bytes(&(s.points.len() as u64).to_le_bytes());
            for &(x, y) in &s.points {
                self.f(x);
                self.f(y);
            }
        }
        for r in &c.ref_lines {
            self.str(&r.label);
            self.f(r.value);
        }
        for n in &c.notes {
            self.str(n);
        }
    }
}

fn series_color(s: &Series, i: usize) -> String {
    s.color
        .clone()
        .unwrap_or_else(|| palette_color(i).to_string())
}

/// The path of a 9 px cross centred on `(x, y)`.
fn cross(x: f64, y: f64) -> String {
    format!("M{},{}l9,9m0,-9l-9,9", f2(x - 4.5), f2(y - 4.5))
}

/// Crisp 1px line position.
fn crisp(v: f64) -> f64 {
    v.round() + 0.5
}

fn chart_body(out: &mut String, c: &Chart, clip_id: &str) {
    let (w, h) = dims(c);
    let _ = writeln!(
        out,
        r##"<rect width="{}" height="{}" fill="#fff"/>"##,
        f2(w),
        f2(h)
    );

    // Data extents in axis space: x from every finite x, y from the drawable points; a
    // finite non-positive y on a log y axis is drawn at the floor.
    let mut xr: Option<(f64, f64)> = None;
    let mut yr: Option<(f64, f64)> = None;
    let extend = |r: &mut Option<(f64, f64)>, v: f64| {
        *r = Some(match *r {
            None => (v, v),
            Some((a, b)) => (a.min(v), b.max(v)),
        })
    };
    let mut drawable = false;
    let mut floored = 0usize;
    for s in c.series.iter().filter(|s| !s.reference) {
        for &(x, y) in &s.points {
            let Some(ax) = to_axis(x, c.x_log) else {
                continue;
            };
            extend(&mut xr, ax);
            if s.style == Style::TopMarks {
                drawable = true;
            } else if let Some(ay) = to_axis(y, c.y_log) {
                extend(&mut yr, ay);
                drawable = true;
            } else if at_floor(y, c.y_log) {
                floored += 1;
            }
        }
    }
    let has_data = drawable || floored > 0;
    if has_data {
        // References widen a range only where they come near the data (window from the data
        // alone, so the order of the references does not matter).
        let (xw, yw) = (ref_window(xr, c.x_log), ref_window(yr, c.y_log));
        let near = |w: Option<(f64, f64)>, a: f64| w.is_none_or(|(lo, hi)| a >= lo && a <= hi);
        let (mut xr2, mut yr2) = (xr, yr);
        for r in &c.ref_lines {
            if r.horizontal {
                if let Some(a) = to_axis(r.value, c.y_log).filter(|&a| near(yw, a)) {
                    extend(&mut yr2, a);
                }
            } else if let Some(a) = to_axis(r.value, c.x_log).filter(|&a| near(xw, a)) {
                extend(&mut xr2, a);
            }
        }
        for s in c.series.iter().filter(|s| s.reference) {
            for &(x, y) in &s.points {
                if let (Some(ax), Some(ay)) = (to_axis(x, c.x_log), to_axis(y, c.y_log)) {
                    if near(xw, ax) && near(yw, ay) {
                        extend(&mut xr2, ax);
                        extend(&mut yr2, ay);
                    }
                }
            }
        }
        (xr, yr) = (xr2, yr2);
    } else {
        xr = None;
    }
    let xa = make_axis(c.x_log, xr, c.x_range);
    let mut ya = make_axis(c.y_log, yr, c.y_range);
    let x_nonneg = xr.is_some_and(|(lo, _)| lo >= 0.0);
    // Values at the floor get a band of their own below the data, labelled "<= 0", so that
    // they do not sit at a value they do not have.
    let floor_top = (floored > 0 && c.y_range.is_none()).then(|| {
        let top = ya.lo;
        ya.lo -= (ya.hi - ya.lo) * 0.08;
        top
    });

    // Notes: the chart's own, values at the floor, references off scale.
    let mut notes: Vec<String> = c.notes.clone();
    if has_data {
        if floored > 0 {
            notes.push(format!(
                "{floored} value{} <= 0 drawn at the floor (triangles)",
                if floored == 1 { "" } else { "s" }
            ));
        }
        let side = |t: f64, horizontal: bool| -> Option<&'static str> {
            match (t > 1.0 + 1e-9, t < -1e-9, horizontal) {
                (true, _, true) => Some("above"),
                (_, true, true) => Some("below"),
                (true, _, false) => Some("right"),
                (_, true, false) => Some("left"),
                _ => None,
            }
        };
        let mut unlabelled: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &c.ref_lines {
            let Some((_, t)) = ref_place(r, c, &xa, &ya) else {
                continue;
            };
            if let Some(where_) = side(t, r.horizontal) {
                if r.label.trim().is_empty() {
                    *unlabelled.entry(where_).or_default() += 1;
                } else {
                    notes.push(format!("{}: off scale ({where_})", r.label.trim()));
                }
            }
        }
        for (where_, n) in unlabelled {
            notes.push(format!(
                "{n} reference line{} off scale ({where_})",
                if n == 1 { "" } else { "s" }
            ));
        }
        for s in c.series.iter().filter(|s| s.reference) {
            let (mut n, mut off, mut above, mut below) = (0usize, 0usize, false, false);
            for &(x, y) in &s.points {
                if let (Some(_), Some(ay)) = (xa.norm(x), to_axis(y, c.y_log)) {
                    n += 1;
                    match side(ya.frac(ay), true) {
                        Some("above") => (off, above) = (off + 1, true),
                        Some(_) => (off, below) = (off + 1, true),
                        None => {}
                    }
                }
            }
            if off > 0 {
                let name = if s.label.trim().is_empty() {
                    "a reference curve"
                } else {
                    s.label.trim()
                };
                let where_ = match (above, below) {
                    (true, true) => "above and below",
                    (true, false) => "above",
                    _ => "below",
                };
                let part = if off < n { "partly " } else { "" };
                notes.push(format!("{name}: {part}off scale ({where_})"));
            }
        }
    }

    // Vertical layout.
    let top = if c.title.trim().is_empty() {
        16.0
    } else {
        44.0
    };
    let bottom = if c.x_label.trim().is_empty() {
        34.0
    } else {
        56.0
    };
    let ph = (h - top - bottom).max(40.0).round();
    let py0 = top;

    // Y ticks (they decide the left margin).
    let yticks = if !has_data {
        Vec::new()
    } else if ya.log {
        log_ticks(
            ya.lo,
            ya.hi,
            ((ph / 28.0) as usize).clamp(2, 14),
            ((ph / 60.0) as usize).clamp(2, 10),
        )
    } else {
        linear_ticks(ya.lo, ya.hi, ((ph / 60.0) as usize).clamp(2, 10))
    };
    let yticks = match floor_top {
        Some(top) => yticks
            .into_iter()
            .filter(|t| t.pos >= top)
            .chain(std::iter::once(Tick {
                pos: ya.lo,
                label: Some("<= 0".into()),
                major: false,
            }))
            .collect(),
        None => yticks,
    };
    let ytw = yticks
        .iter()
        .filter_map(|t| t.label.as_deref())
        .map(|l| text_w(l, TICK_FONT))
        .fold(0.0f64, f64::max);
    let left = ((if c.y_label.trim().is_empty() {
        12.0
    } else {
        34.0
    }) + ytw
        + 10.0)
        .max(40.0)
        .round();

    // Legend (right of the plot).
    let mut legend: Vec<LegendEntry> = Vec::new();
    if has_data {
        for (i, s) in c.series.iter().enumerate() {
            if !s.label.trim().is_empty() {
                legend.push(LegendEntry {
                    label: s.label.clone(),
                    color: series_color(s, i),
                    swatch: if s.style == Style::TopMarks {
                        Swatch::Cross
                    } else if s.style == Style::Hollow {
                        Swatch::Ring
                    } else {
                        Swatch::Series {
                            dashed: s.dashed,
                            line: s.style != Style::Points,
                            marker: s.style != Style::Line,
                        }
                    },
                });
            }
        }
        for r in &c.ref_lines {
            // Off scale: named by a note instead.
            let shown = ref_place(r, c, &xa, &ya).is_some_and(|(_, t)| ON_SCALE.contains(&t));
            if !r.label.trim().is_empty() && shown {
                legend.push(LegendEntry {
                    label: r.label.clone(),
                    color: r.color.clone().unwrap_or_else(|| REF_DEFAULT.to_string()),
                    swatch: Swatch::Ref,
                });
            }
        }
        for n in &notes {
            for line in wrap(n.trim(), (w * 0.28).max(40.0) + 30.0, NOTE_FONT) {
                legend.push(LegendEntry {
                    label: line,
                    color: MUTED.to_string(),
                    swatch: Swatch::Note,
                });
            }
        }
    }
    let max_label_w = (w * 0.28).max(40.0);
    let legend_text_w = legend
        .iter()
        .map(|e| match e.swatch {
            // A note takes the swatch's place too.
            Swatch::Note => (text_w(&e.label, NOTE_FONT) - 30.0).min(max_label_w),
            _ => text_w(&e.label, LEGEND_FONT).min(max_label_w),
        })
        .fold(0.0f64, f64::max);
    let legend_w = if legend.is_empty() {
        0.0
    } else {
        (legend_text_w + 48.0).round()
    };
    let mut right = if legend.is_empty() {
        20.0
    } else {
        legend_w + 30.0
    };

    // X ticks: shrink their density until labels do not overlap; widen the right margin if
    // the last label would stick out of the picture.
    let mut xticks = Vec::new();
    let mut pw = 40.0;
    let mut shrink = 0usize;
    let mut widened = false;
    for _ in 0..12 {
        pw = (w - left - right).max(40.0).round();
        if !has_data {
            break;
        }
        let target = ((pw / 100.0) as usize)
            .clamp(2, 10)
            .saturating_sub(shrink)
            .max(2);
        let max_labels = ((pw / 60.0) as usize)
            .clamp(2, 14)
            .saturating_sub(shrink)
            .max(2);
        xticks = if xa.log {
            log_ticks(xa.lo, xa.hi, max_labels, target)
        } else if c.x_integer {
            int_ticks(xa.lo, xa.hi, target, x_nonneg)
        } else {
            linear_ticks(xa.lo, xa.hi, target)
        };
        let labs: Vec<(f64, f64)> = xticks
            .iter()
            .filter_map(|t| {
                t.label
                    .as_deref()
                    .map(|l| (left + xa.frac(t.pos) * pw, text_w(l, TICK_FONT)))
            })
            .collect();
        let overlap = labs
            .windows(2)
            .any(|p| p[0].0 + p[0].1 / 2.0 + 10.0 > p[1].0 - p[1].1 / 2.0);
        if overlap && target + max_labels > 4 {
            shrink += 1;
            continue;
        }
        if let Some(&(x, lw)) = labs.last() {
            let over = x + lw / 2.0 - (w - 4.0);
            if over > 0.0 && !widened {
                right += over.ceil();
                widened = true;
                continue;
            }
        }
        break;
    }
    let px0 = left;
    let frame = Rect {
        x0: px0,
        y0: py0,
        x1: px0 + pw,
        y1: py0 + ph,
    };
    let xpix = |a: f64| px0 + xa.frac(a) * pw;
    let ypix = |a: f64| py0 + ph - ya.frac(a) * ph;

    // Title and axis labels.
    if !c.title.trim().is_empty() {
        let t = fit(c.title.trim(), w - 20.0, TITLE_FONT);
        let tx = (px0 + pw / 2.0).clamp(
            10.0 + text_w(&t, TITLE_FONT) / 2.0,
            w - 10.0 - text_w(&t, TITLE_FONT) / 2.0,
        );
        text(
            out,
            tx,
            27.0,
            TITLE_FONT,
            "middle",
            TITLE,
            r#" font-weight="bold""#,
            &t,
        );
    }
    if !c.x_label.trim().is_empty() {
        let t = fit(c.x_label.trim(), pw, LABEL_FONT);
        text(
            out,
            px0 + pw / 2.0,
            py0 + ph + 42.0,
            LABEL_FONT,
            "middle",
            TEXT,
            "",
            &t,
        );
    }
    if !c.y_label.trim().is_empty() {
        let t = fit(c.y_label.trim(), ph, LABEL_FONT);
        let _ = writeln!(
            out,
            r#"<text transform="translate(18,{}) rotate(-90)" font-size="{}" text-anchor="middle" fill="{TEXT}">{}</text>"#,
            f2(py0 + ph / 2.0),
            f2(LABEL_FONT),
            esc(&t)
        );
    }

    if !has_data {
        let _ = writeln!(
            out,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="#fafafa" stroke="{FRAME}"/>"##,
            f2(crisp(px0) - 1.0),
            f2(crisp(py0) - 1.0),
            f2(pw),
            f2(ph)
        );
        text(
            out,
            px0 + pw / 2.0,
            py0 + ph / 2.0 + 5.0,
            15.0,
            "middle",
            MUTED,
            "",
            "no data",
        );
        return;
    }

    // Grid: minor lines first, then major.
    let grid = |ticks: &[Tick], major: bool, vertical: bool, out: &mut String| {
        let mut d = String::new();
        for t in ticks.iter().filter(|t| t.major == major) {
            if vertical {
                let x = crisp(xpix(t.pos) - 0.5);
                if x >= frame.x0 && x <= frame.x1 {
                    let _ = write!(d, "M{},{}V{}", f2(x), f2(frame.y0), f2(frame.y1));
                }
            } else {
                let y = crisp(ypix(t.pos) - 0.5);
                if y >= frame.y0 && y <= frame.y1 {
                    let _ = write!(d, "M{},{}H{}", f2(frame.x0), f2(y), f2(frame.x1));
                }
            }
        }
        if !d.is_empty() {
            let col = if major { GRID_MAJOR } else { GRID_MINOR };
            let _ = writeln!(
                out,
                r#"<path d="{d}" stroke="{col}" stroke-width="1" fill="none"/>"#
            );
        }
    };
    grid(&xticks, false, true, out);
    grid(&yticks, false, false, out);
    grid(&xticks, true, true, out);
    grid(&yticks, true, false, out);
    if let Some(top) = floor_top {
        let y = crisp(ypix(top) - 0.5);
        let _ = writeln!(
            out,
            r#"<path d="M{},{}H{}" stroke="{FRAME}" stroke-width="1" stroke-dasharray="2 3" fill="none"/>"#,
            f2(frame.x0),
            f2(y),
            f2(frame.x1)
        );
    }

    // Data, clipped to the frame.
    let _ = writeln!(
        out,
        r#"<defs><clipPath id="{clip_id}"><rect x="{}" y="{}" width="{}" height="{}"/></clipPath></defs>"#,
        f2(frame.x0),
        f2(frame.y0),
        f2(pw),
        f2(ph)
    );
    let _ = writeln!(out, r#"<g clip-path="url(#{clip_id})">"#);

    // Reference lines (under the data).
    let mut hlabels: Vec<(f64, String, String)> = Vec::new();
    let mut vlabels: Vec<(f64, String, String)> = Vec::new();
    for r in &c.ref_lines {
        let color = r.color.clone().unwrap_or_else(|| REF_DEFAULT.to_string());
        let Some((a, _)) = ref_place(r, c, &xa, &ya).filter(|(_, t)| ON_SCALE.contains(t)) else {
            continue;
        };
        if r.horizontal {
            let y = ypix(a);
            let _ = writeln!(
                out,
                r#"<path d="M{},{}H{}" stroke="{}" stroke-width="1.25" stroke-dasharray="{REF_DASH}" fill="none"/>"#,
                f2(frame.x0),
                f2(y),
                f2(frame.x1),
                esc(&color)
            );
            if !r.label.trim().is_empty() {
                hlabels.push((y, r.label.trim().to_string(), color));
            }
        } else {
            let x = xpix(a);
            let _ = writeln!(
                out,
                r#"<path d="M{},{}V{}" stroke="{}" stroke-width="1.25" stroke-dasharray="{REF_DASH}" fill="none"/>"#,
                f2(x),
                f2(frame.y0),
                f2(frame.y1),
                esc(&color)
            );
            if !r.label.trim().is_empty() {
                vlabels.push((x, r.label.trim().to_string(), color));
            }
        }
    }

    // Reference-line labels at the line ends, nudged apart, on a translucent white box, under
    // the data (a curve approaching the threshold stays visible; the legend repeats them).
    let label_box = |out: &mut String, x0: f64, base: f64, tw: f64| {
        let _ = writeln!(
            out,
            r##"<rect x="{}" y="{}" width="{}" height="{}" rx="2" fill="#fff" fill-opacity="0.85"/>"##,
            f2(x0 - 3.0),
            f2(base - REF_FONT * 0.95),
            f2(tw + 6.0),
            f2(REF_FONT * 1.3)
        );
    };
    hlabels.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut prev = f64::NEG_INFINITY;
    for (y, label, color) in &hlabels {
        let base = (y - 5.0).max(frame.y0 + 14.0).max(prev + 15.0);
        if base > frame.y1 - 4.0 {
            break;
        }
        prev = base;
        let t = fit(label, pw * 0.45, REF_FONT);
        let tw = text_w(&t, REF_FONT);
        label_box(out, frame.x1 - 8.0 - tw, base, tw);
        text(out, frame.x1 - 8.0, base, REF_FONT, "end", color, "", &t);
    }
    vlabels.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut placed: Vec<(f64, f64, f64)> = Vec::new();
    for (x, label, color) in &vlabels {
        let t = fit(label, pw * 0.45, REF_FONT);
        let tw = text_w(&t, REF_FONT);
        let (x0, anchor, tx) = if x + 5.0 + tw <= frame.x1 - 4.0 {
            (x + 5.0, "start", x + 5.0)
        } else {
            (x - 5.0 - tw, "end", x - 5.0)
        };
        let mut base = frame.y0 + 15.0;
        while placed
            .iter()
            .any(|&(a, b, yb)| yb == base && x0 < b + 8.0 && x0 + tw + 8.0 > a)
        {
            base += 15.0;
        }
        if base > frame.y1 - 4.0 {
            continue;
        }
        placed.push((x0, x0 + tw, base));
        label_box(out, x0, base, tw);
        text(out, tx, base, REF_FONT, anchor, color, "", &t);
    }

    let draw_rect = frame.grow(3.0);
    for (i, s) in c.series.iter().enumerate() {
        let color = esc(&series_color(s, i));
        if s.style == Style::TopMarks {
            let mut seen: HashSet<i64> = HashSet::new();
            let mut d = String::new();
            for &(x, _) in &s.points {
                let Some(tx) = xa.norm(x) else {
                    continue;
                };
                let px = px0 + tx * pw;
                if px >= frame.x0 - 1.0
                    && px <= frame.x1 + 1.0
                    && seen.insert((px * 2.0).round() as i64)
                {
                    d.push_str(&cross(px, frame.y0 + 7.0));
                }
            }
            if !d.is_empty() {
                let _ = writeln!(
                    out,
                    r#"<path d="{d}" stroke="{color}" stroke-width="2" fill="none"/>"#
                );
            }
            continue;
        }
        // Finite runs in pixel space.
        let mut runs: Vec<Vec<Pt>> = Vec::new();
        let mut cur: Vec<Pt> = Vec::new();
        let mut floor: Vec<f64> = Vec::new();
        for &(x, y) in &s.points {
            match (xa.norm(x), ya.norm(y)) {
                (Some(tx), Some(ty)) => cur.push((px0 + tx * pw, py0 + ph - ty * ph)),
                (tx, _) => {
                    if let (Some(tx), true) = (tx, at_floor(y, c.y_log)) {
                        floor.push(px0 + tx * pw);
                    }
                    if !cur.is_empty() {
                        runs.push(std::mem::take(&mut cur));
                    }
                }
            }
        }
        if !floor.is_empty() {
            // Hollow triangles on the bottom edge, at most one per 6 px.
            let mut seen: HashSet<i64> = HashSet::new();
            let mut m = String::new();
            for x in floor {
                if x < frame.x0 - 1.0
                    || x > frame.x1 + 1.0
                    || !seen.insert((x / 6.0).floor() as i64)
                {
                    continue;
                }
                let y = frame.y1 - 1.5;
                let _ = write!(m, "M{},{}l-3.5,-6h7z", f2(x), f2(y));
            }
            if !m.is_empty() {
                let _ = writeln!(
                    out,
                    r##"<path d="{m}" fill="#fff" stroke="{color}" stroke-width="1.25"/>"##
                );
            }
        }
        if !cur.is_empty() {
            runs.push(cur);
        }
        let n_valid: usize = runs.iter().map(Vec::len).sum();

        if !matches!(s.style, Style::Points | Style::Hollow) {
            let mut d = String::new();
            let mut dots: Vec<Pt> = Vec::new();
            for run in &runs {
                if run.len() == 1 {
                    if draw_rect.contains(run[0]) {
                        dots.push(run[0]);
                    }
                    continue;
                }
                for piece in clip_polyline(&decimate_m4(run), &draw_rect) {
                    let mut last = String::new();
                    let mut n = 0;
                    for &(x, y) in &piece {
                        let p = format!("{},{}", f2(x), f2(y));
                        if p == last {
                            continue;
                        }
                        d.push(match n {
                            0 => 'M',
                            1 => 'L',
                            _ => ' ',
                        });
                        d.push_str(&p);
                        last = p;
                        n += 1;
                    }
                    if n == 1 {
                        let _ = write!(d, "L{last}");
                    }
                }
            }
            if !d.is_empty() {
                let dash = if s.dashed {
                    format!(r#" stroke-dasharray="{SERIES_DASH}""#)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    r#"<path d="{d}" fill="none" stroke="{color}" stroke-width="{LINE_W}" stroke-linejoin="round" stroke-linecap="round"{dash}/>"#
                );
            }
            for (x, y) in dots {
                let _ = writeln!(
                    out,
                    r#"<circle cx="{}" cy="{}" r="2" fill="{color}"/>"#,
                    f2(x),
                    f2(y)
                );
            }
        }
        let markers = match s.style {
            Style::Line => false,
            Style::Points | Style::Hollow => true,
            Style::TopMarks => false,
            Style::LinePoints => n_valid as f64 <= pw / 5.0,
        };
        if markers {
            let mrect = frame.grow(MARKER_R + 1.0);
            let mut seen: HashSet<(i64, i64)> = HashSet::new();
            let mut m = String::new();
            for &p in runs.iter().flatten() {
                if !mrect.contains(p)
                    || !seen.insert(((p.0 * 2.0).round() as i64, (p.1 * 2.0).round() as i64))
                {
                    continue;
                }
                let _ = writeln!(
                    m,
                    r#"<circle cx="{}" cy="{}" r="{}"/>"#,
                    f2(p.0),
                    f2(p.1),
                    f2(MARKER_R)
                );
            }
            if !m.is_empty() && s.style == Style::Hollow {
                // Rings a little larger than a marker, so that the one beneath shows through.
                let m = m.replace(
                    &format!(r#"r="{}"/>"#, f2(MARKER_R)),
                    &format!(r#"r="{}"/>"#, f2(MARKER_R + 1.5)),
                );
                let _ = write!(
                    out,
                    "<g fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\">\n{m}</g>\n"
                );
            } else if !m.is_empty() {
                let _ = write!(
                    out,
                    "<g fill=\"{color}\" stroke=\"#fff\" stroke-width=\"0.75\">\n{m}</g>\n"
                );
            }
        }
    }
    out.push_str("</g>\n");

    // Frame and ticks.
    let _ = writeln!(
        out,
        r#"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="{FRAME}" stroke-width="1"/>"#,
        f2(crisp(frame.x0) - 1.0),
        f2(crisp(frame.y0) - 1.0),
        f2(pw),
        f2(ph)
    );
    let mut marks = String::new();
    for t in xticks.iter().filter(|t| t.label.is_some()) {
        let x = crisp(xpix(t.pos) - 0.5);
        if x >= frame.x0 - 0.5 && x <= frame.x1 + 0.5 {
            let _ = write!(marks, "M{},{}v4", f2(x), f2(frame.y1));
            text(
                out,
                x,
                frame.y1 + 18.0,
                TICK_FONT,
                "middle",
                TEXT,
                "",
                t.label.as_deref().unwrap_or(""),
            );
        }
    }
    for t in yticks.iter().filter(|t| t.label.is_some()) {
        let y = crisp(ypix(t.pos) - 0.5);
        if y >= frame.y0 - 0.5 && y <= frame.y1 + 0.5 {
            let _ = write!(marks, "M{},{}h-4", f2(frame.x0), f2(y));
            text(
                out,
                frame.x0 - 8.0,
                y + 4.0,
                TICK_FONT,
                "end",
                TEXT,
                "",
                t.label.as_deref().unwrap_or(""),
            );
        }
    }
    if !marks.is_empty() {
        let _ = writeln!(
            out,
            r#"<path d="{marks}" stroke="{FRAME}" stroke-width="1" fill="none"/>"#
        );
    }

    // Legend box.
    if !legend.is_empty() {
        let row = 19.0;
        let cap = (((ph - 12.0) / row) as usize).max(1);
        let (shown, more) = if legend.len() > cap {
            (cap.saturating_sub(1), legend.len() - cap.saturating_sub(1))
        } else {
            (legend.len(), 0)
        };
        let rows = shown + usize::from(more > 0);
        let lx = frame.x1 + 14.0;
        let ly = frame.y0;
        let _ = writeln!(
            out,
            r##"<rect x="{}" y="{}" width="{}" height="{}" rx="3" fill="#fff" stroke="#d0d0d0"/>"##,
            f2(crisp(lx) - 1.0),
            f2(crisp(ly) - 1.0),
            f2(legend_w),
            f2(rows as f64 * row + 10.0)
        );
        for (k, e) in legend.iter().take(shown).enumerate() {
            let cy = ly + 5.0 + row * (k as f64 + 0.5);
            let (sx0, sx1) = (lx + 10.0, lx + 32.0);
            let col = esc(&e.color);
            match e.swatch {
                Swatch::Series {
                    dashed,
                    line,
                    marker,
                } => {
                    if line {
                        let dash = if dashed {
                            r#" stroke-dasharray="5 3""#
                        } else {
                            ""
                        };
                        let _ = writeln!(
                            out,
                            r#"<path d="M{},{}H{}" stroke="{col}" stroke-width="2.25" stroke-linecap="round"{dash}/>"#,
                            f2(sx0),
                            f2(cy),
                            f2(sx1)
                        );
                    }
                    if marker {
                        let _ = writeln!(
                            out,
                            r##"<circle cx="{}" cy="{}" r="{}" fill="{col}" stroke="#fff" stroke-width="0.75"/>"##,
                            f2((sx0 + sx1) / 2.0),
                            f2(cy),
                            f2(MARKER_R + 0.5)
                        );
                    }
                }
                Swatch::Ref => {
                    let _ = writeln!(
                        out,
                        r#"<path d="M{},{}H{}" stroke="{col}" stroke-width="1.5" stroke-dasharray="4 3"/>"#,
                        f2(sx0),
                        f2(cy),
                        f2(sx1)
                    );
                }
                Swatch::Cross => {
                    let _ = writeln!(
                        out,
                        r#"<path d="{}" stroke="{col}" stroke-width="2" fill="none"/>"#,
                        cross((sx0 + sx1) / 2.0, cy)
                    );
                }
                Swatch::Ring => {
                    let _ = writeln!(
                        out,
                        r#"<circle cx="{}" cy="{}" r="{}" fill="none" stroke="{col}" stroke-width="1.5"/>"#,
                        f2((sx0 + sx1) / 2.0),
                        f2(cy),
                        f2(MARKER_R + 1.5)
                    );
                }
                Swatch::Note => {
                    let t = fit(&e.label, max_label_w + 30.0, NOTE_FONT);
                    text(out, sx0, cy + 4.0, NOTE_FONT, "start", MUTED, "", &t);
                    continue;
                }
            }
            let t = fit(&e.label, max_label_w, LEGEND_FONT);
            text(out, sx1 + 8.0, cy + 4.0, LEGEND_FONT, "start", TEXT, "", &t);
        }
        if more > 0 {
            let cy = ly + 5.0 + row * (shown as f64 + 0.5);
            text(
                out,
                lx + 10.0,
                cy + 4.0,
                LEGEND_FONT,
                "start",
                MUTED,
                "",
                &format!("+{more} more"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that tags nest properly; returns the number of elements.
    fn check_balanced(svg: &str) -> usize {
        assert!(svg.starts_with("<svg"), "does not start with <svg");
        assert!(
            svg.trim_end().ends_with("</svg>"),
            "does not end with </svg>"
        );
        let mut stack: Vec<String> = Vec::new();
        let mut n = 0;
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            let text = &rest[..i];
            assert!(!text.contains('>'), "stray '>' in text: {text:?}");
            let j = rest[i..].find('>').expect("unterminated tag") + i;
            let tag = &rest[i + 1..j];
            assert!(!tag.contains('<'), "'<' inside tag: {tag:?}");
            assert_eq!(
                tag.matches('"').count() % 2,
                0,
                "unbalanced quotes: {tag:?}"
            );
            if let Some(name) = tag.strip_prefix('/') {
                let open = stack.pop().expect("closing tag without opening");
                assert_eq!(open, name.trim());
            } else {
                let name = tag
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_end_matches('/')
                    .to_string();
                assert!(!name.is_empty());
                n += 1;
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[j + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        assert!(rest.trim().is_empty());
        // Coordinates carry at most two decimals.
        for tag in svg.split('<').skip(1) {
            let tag = tag.split('>').next().unwrap();
            for (k, val) in tag.split('"').enumerate() {
                if k % 2 == 1 {
                    for tok in val.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')) {
                        if let Some(p) = tok.find('.') {
                            assert!(tok.len() - p - 1 <= 2, "too many decimals: {tok} in {tag}");
                        }
                    }
                }
            }
        }
        n
    }

    fn path_d_with_stroke<'a>(svg: &'a str, color: &str) -> Vec<&'a str> {
        svg.lines()
            .filter(|l| {
                l.starts_with("<path d=\"")
                    && l.contains(&format!("fill=\"none\" stroke=\"{color}\""))
            })
            .map(|l| l.split('"').nth(1).unwrap())
            .collect()
    }

    fn sample() -> Chart {
        let a: Vec<(f64, f64)> = (0..300)
            .map(|i| (i as f64, 2.0 + (i as f64 * 0.05).sin()))
            .collect();
        let b: Vec<(f64, f64)> = (0..300)
            .map(|i| (i as f64, 1.0 + 0.004 * i as f64))
            .collect();
        Chart::new("Loss", "step", "loss")
            .with_series(Series::line("lr = 0.01", a))
            .with_series(Series::line_points("lr = 0.02", b).with_dashed(true))
            .with_ref_line(RefLine::at_y(2.5, "threshold"))
    }

    #[test]
    fn plot_structure_is_balanced() {
        let svg = render_svg(&sample());
        let n = check_balanced(&svg);
        assert!(n > 20);
        assert!(svg.contains("clipPath"));
        assert!(svg.contains("sans-serif"));
        assert!(svg.contains(">lr = 0.01<"));
        assert!(svg.contains(">threshold<"));
    }

    #[test]
    fn plot_escapes_text() {
        let mut c = sample();
        c.title = "a<b & c>d \"q\" 'x'".into();
        c.series[0].label = "<script>&".into();
        c.ref_lines[0].label = "2/lr < λ".into();
        c.series[1].color = Some("\"><bad".into());
        let svg = render_svg(&c);
        check_balanced(&svg);
        assert!(svg.contains("a&lt;b &amp; c&gt;d &quot;q&quot; &#39;x&#39;"));
        assert!(svg.contains("&lt;script&gt;&amp;"));
        assert!(svg.contains("2/lr &lt; λ"));
        assert!(!svg.contains("<script"));
        assert!(!svg.contains("<bad"));
    }

    #[test]
    fn plot_nan_gaps_split_paths() {
        let pts = vec![
            (0.0, 1.0),
            (1.0, 2.0),
            (2.0, f64::NAN),
            (3.0, 1.0),
            (4.0, 2.0),
            (5.0, f64::INFINITY),
            (f64::NAN, 3.0),
            (6.0, 3.0),
            (7.0, 4.0),
        ];
        let c =
            Chart::new("gaps", "x", "y").with_series(Series::line("s", pts).with_color("#123456"));
        let svg = render_svg(&c);
        check_balanced(&svg);
        let ds = path_d_with_stroke(&svg, "#123456");
        assert_eq!(ds.len(), 1);
        assert_eq!(ds[0].matches('M').count(), 3, "{}", ds[0]);
    }

    #[test]
    fn plot_log_axis_ticks() {
        let pts: Vec<(f64, f64)> = (0..=40)
            .map(|i| (i as f64, 10f64.powf(-3.0 + i as f64 * 0.1)))
            .collect();
        let c = Chart::new("log", "step", "loss")
            .log_y()
            .with_series(Series::line("", pts));
        let svg = render_svg(&c);
        check_balanced(&svg);
        for l in [">0.001<", ">0.01<", ">0.1<", ">1<", ">10<"] {
            assert!(svg.contains(l), "missing tick {l}");
        }
        // Unlabeled single series: no legend box.
        assert!(!svg.contains("rx=\"3\""));

        let t = log_ticks(-3.0, 1.0, 10, 5);
        let labels: Vec<_> = t.iter().filter_map(|t| t.label.clone()).collect();
        assert_eq!(labels, ["0.001", "0.01", "0.1", "1", "10"]);
        // Few decades: 2 and 5 labelled too.
        let t = log_ticks(-1.0, 1.0, 10, 5);
        let labels: Vec<_> = t.iter().filter_map(|t| t.label.clone()).collect();
        assert_eq!(labels, ["0.1", "0.2", "0.5", "1", "2", "5", "10"]);
        // Many decades: a stride.
        let t = log_ticks(-8.0, 8.0, 6, 5);
        let labels: Vec<_> = t.iter().filter_map(|t| t.label.clone()).collect();
        assert_eq!(labels, ["1e-6", "0.001", "1", "1000", "1e6"]);
        assert!(labels.len() <= 6 && labels.len() >= 3, "{labels:?}");
        // Within a decade: linear values.
        let t = log_ticks(2f64.log10(), 8f64.log10(), 8, 5);
        assert!(t.iter().filter(|t| t.label.is_some()).count() >= 2);
    }

    #[test]
    fn plot_tick_labels_compact() {
        assert_eq!(fmt_num(0.001, 1e-6, false), "0.001");
        assert_eq!(fmt_num(1e-4, 1e-7, true), "1e-4");
        assert_eq!(fmt_num(2.5, 1e-3, false), "2.5");
        assert_eq!(fmt_num(1200.0, 0.1, false), "1200");
        assert_eq!(fmt_num(3.2e5, 100.0, true), "3.2e5");
        assert_eq!(fmt_num(0.30000000000000004, 1e-4, false), "0.3");
        let labels: Vec<_> = linear_ticks(0.0, 1.0, 5)
            .into_iter()
            .filter_map(|t| t.label)
            .collect();
        assert_eq!(labels, ["0", "0.2", "0.4", "0.6", "0.8", "1"]);
        let labels: Vec<_> = linear_ticks(-0.05, 2.6, 5)
            .into_iter()
            .filter_map(|t| t.label)
            .collect();
        assert_eq!(labels, ["0", "0.5", "1", "1.5", "2", "2.5"]);
        let labels: Vec<_> = linear_ticks(0.0, 4e5, 4)
            .into_iter()
            .filter_map(|t| t.label)
            .collect();
        assert_eq!(labels, ["0", "1e5", "2e5", "3e5", "4e5"]);
    }

    #[test]
    fn plot_decimation_keeps_spike() {
        let n = 100_000;
        let mut pts: Vec<(f64, f64)> = (0..n)
            .map(|i| (i as f64, ((i * 7919) % 13) as f64 * 0.01))
            .collect();
        pts[53_217].1 = 5.0;
        let c = Chart::new("big", "step", "loss")
            .with_y_range(-1.0, 6.0)
            .with_series(Series::line("run", pts).with_color("#abcdef"));
        let svg = render_svg(&c);
        check_balanced(&svg);
        assert!(svg.len() < 120_000, "svg too large: {}", svg.len());
        let ds = path_d_with_stroke(&svg, "#abcdef");
        let ys: Vec<f64> = ds[0]
            .split(['M', 'L', ' '])
            .filter(|s| !s.is_empty())
            .map(|p| p.split(',').nth(1).unwrap().parse::<f64>().unwrap())
            .collect();
        let (lo, hi) = ys
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)));
        // The spike (5 of a 7-wide range) rises far above the noise band.
        assert!(hi - lo > 200.0, "spike lost: {lo}..{hi}");

        let pix: Vec<Pt> = (0..1000)
            .map(|i| (i as f64 * 0.01, if i == 517 { -50.0 } else { 0.0 }))
            .collect();
        let d = decimate_m4(&pix);
        assert!(d.len() <= 40);
        assert!(d.contains(&(5.17, -50.0)));
        assert_eq!(d.first(), pix.first());
        assert_eq!(d.last(), pix.last());
    }

    #[test]
    fn plot_is_deterministic() {
        let a = render_svg(&sample());
        let b = render_svg(&sample().clone());
        assert_eq!(a, b);
        let g1 = render_grid_svg(&[sample(), sample().log_y()], 2);
        let g2 = render_grid_svg(&[sample(), sample().log_y()], 2);
        assert_eq!(g1, g2);
        check_balanced(&g1);
        assert_eq!(g1.matches("<clipPath").count(), 2);
    }

    #[test]
    fn plot_degenerate_inputs_do_not_panic() {
        let nan = f64::NAN;
        let inf = f64::INFINITY;
        let cases: Vec<Chart> = vec![
            Chart::new("", "", ""),
            Chart::new("empty", "x", "y").with_series(Series::line("a", vec![])),
            Chart::new("one", "x", "y").with_series(Series::line("a", vec![(1.0, 1.0)])),
            Chart::new("one pt", "x", "y").with_series(Series::scatter("", vec![(0.0, 0.0)])),
            Chart::new("nan", "x", "y")
                .with_series(Series::line("a", vec![(nan, nan), (inf, 1.0), (1.0, -inf)])),
            Chart::new("const", "x", "y").with_series(Series::line("a", vec![(3.0, 7.0); 50])),
            Chart::new("zero", "x", "y")
                .with_series(Series::line("a", vec![(0.0, 0.0), (0.0, 0.0)])),
            Chart::new("huge", "x", "y").with_series(Series::line(
                "a",
                vec![(-f64::MAX, -f64::MAX), (f64::MAX, f64::MAX), (0.0, 1.0)],
            )),
            Chart::new("tiny", "x", "y")
                .with_series(Series::line("a", vec![(0.0, 0.0), (5e-324, 5e-324)])),
            Chart::new("ulp", "x", "y").with_series(Series::line(
                "a",
                vec![(1e17, 1e9), (1e17 + 16.0, 1e9 + 1e-7)],
            )),
            Chart::new("log neg", "x", "y")
                .log_x()
                .log_y()
                .with_series(Series::line("a", vec![(-1.0, -2.0), (0.0, 0.0)])),
            Chart::new("log one", "x", "y")
                .log_x()
                .log_y()
                .with_series(Series::line("a", vec![(5.0, 5.0)])),
            Chart::new("log wide", "x", "y")
                .log_x()
                .log_y()
                .with_series(Series::line("a", vec![(1e-300, 1e-300), (1e300, 1e300)])),
            Chart::new("bad range", "x", "y")
                .with_y_range(nan, 1.0)
                .with_x_range(5.0, -5.0)
                .with_series(Series::line("a", vec![(0.0, 0.0), (1.0, 1e9)])),
            Chart::new("eq range", "x", "y")
                .with_y_range(2.0, 2.0)
                .log_x()
                .with_x_range(-1.0, 10.0)
                .with_series(Series::line("a", vec![(1.0, 1.0), (2.0, 3.0)])),
            Chart::new("refs", "x", "y")
                .with_series(Series::line("a", vec![(0.0, 0.0), (1.0, 1.0)]))
                .with_ref_line(RefLine::at_y(nan, "nan"))
                .with_ref_line(RefLine::at_x(inf, "inf"))
                .with_ref_line(RefLine::at_x(0.5, "mid").with_color("red"))
                .with_ref_line(RefLine::at_x(0.5, "mid again"))
                .with_ref_line(RefLine::at_y(1e6, "far")),
            Chart::new("size", "x", "y")
                .with_size(0, 0)
                .with_series(Series::line("a", vec![(0.0, 1.0), (1.0, 2.0)])),
            Chart::new("many", "x", "y")
                .with_size(200, 170)
                .with_series(Series::line("x".repeat(500), vec![(0.0, 1.0)])),
            {
                let mut c = Chart::new("\u{0}\u{1}ctrl\n", "😀", "\u{FFFF}");
                for i in 0..40 {
                    c.add_series(Series::line_points(
                        format!("run {i}"),
                        vec![(i as f64, 1.0), (i as f64 + 1.0, nan)],
                    ));
                    c.add_ref_line(
                        RefLine::at_y(i as f64, format!("2/lr {i}")).with_color(palette_color(i)),
                    );
                }
                c
            },
        ];
        for c in &cases {
            let svg = render_svg(c);
            check_balanced(&svg);
        }
        let empty_svg = render_svg(&cases[0]);
        assert!(empty_svg.contains("no data"));
        assert!(render_svg(&cases[4]).contains("no data"));
        assert!(!render_svg(&cases[2]).contains("no data"));
        check_balanced(&render_grid_svg(&cases, 0));
        check_balanced(&render_grid_svg(&cases, 1000));
        check_balanced(&render_grid_svg(&[], 2));
    }

    #[test]
    fn plot_log_axis_draws_non_positive_values_at_the_floor_over_the_whole_x_range() {
        // A loss that reaches exactly 0 after two steps (as CE on separable data does).
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (i as f64, [2.0, 0.5][..].get(i).copied().unwrap_or(0.0)))
            .collect();
        let c = Chart::new("Loss", "step", "loss")
            .log_y()
            .integer_x()
            .with_series(Series::line("train", pts).with_color("#123456"));
        let svg = render_svg(&c);
        check_balanced(&svg);
        assert!(svg.contains("8 values &lt;= 0 drawn at the floor"), "{svg}");
        assert!(svg.contains(">&lt;= 0<"), "the floor band is labelled");
        assert_eq!(
            svg.matches("l-3.5,-6h7z").count(),
            8,
            "one triangle per value"
        );
        // The x axis covers all ten steps, not only the two drawable ones.
        assert!(svg.contains(">8<") || svg.contains(">9<"), "{svg}");
        // A linear axis has no floor.
        let lin =
            Chart::new("", "", "").with_series(Series::line("a", vec![(0.0, 0.0), (1.0, 1.0)]));
        assert!(!render_svg(&lin).contains("drawn at the floor"));
    }

    #[test]
    fn plot_far_references_do_not_set_the_range_and_are_named() {
        let data = Series::line(
            "s",
            (0..20).map(|i| (i as f64, 5.0 + i as f64 * 0.2)).collect(),
        );
        // 2/lr at lr 1e-5: far above sharpness ~5-9.
        let far = Chart::new("", "step", "")
            .with_series(data.clone())
            .with_ref_line(RefLine::at_y(2e5, "2/lr = 2e5"));
        let svg = render_svg(&far);
        check_balanced(&svg);
        assert!(svg.contains("2/lr = 2e5: off scale (above)"), "{svg}");
        assert!(
            !svg.contains(">1e5<") && !svg.contains(">2e5<"),
            "range stretched"
        );
        // A threshold near the data widens the range and is drawn.
        let near = Chart::new("", "step", "")
            .with_series(data.clone())
            .with_ref_line(RefLine::at_y(11.0, "2/lr = 11"));
        let svg = render_svg(&near);
        assert!(!svg.contains("off scale"));
        assert!(svg.contains(&format!(r#"stroke-dasharray="{REF_DASH}""#)));
        // lr x sharpness at 0.85..1.22 under its threshold 2: within a modest factor, drawn.
        let lxs = Chart::new("", "step", "")
            .with_series(Series::line("s", vec![(0.0, 0.85), (1.0, 1.22)]))
            .with_ref_line(RefLine::at_y(2.0, "threshold 2"));
        assert!(!render_svg(&lxs).contains("off scale"));
        // A reference curve (2/lr under a warmup) is clipped where far, with a note.
        let warm = Chart::new("", "step", "").with_series(data).with_series(
            Series::line(
                "2/lr",
                (0..20)
                    .map(|i| (i as f64, 600.0 / (1.0 + i as f64).powi(2)))
                    .collect(),
            )
            .as_reference(),
        );
        let svg = render_svg(&warm);
        assert!(svg.contains("2/lr: partly off scale (above)"), "{svg}");
        assert!(
            !svg.contains(">500<") && !svg.contains(">600<"),
            "range stretched"
        );
        // On a log x axis (a report's lr*): two decades of data, a line 1.5 decades right.
        let lrs = Chart::new("", "lr", "")
            .log_x()
            .with_series(Series::line("m", vec![(0.003, 1.0), (0.3, 2.0)]))
            .with_ref_line(RefLine::at_x(10.0, "lr* = 10"));
        assert!(render_svg(&lrs).contains("lr* = 10: off scale (right)"));
    }

    #[test]
    fn plot_reference_labels_are_drawn_under_the_data() {
        let c = Chart::new("", "", "")
            .with_series(Series::line("s", vec![(0.0, 1.0), (1.0, 2.0)]).with_color("#123456"))
            .with_ref_line(RefLine::at_y(1.9, "threshold 2"));
        let svg = render_svg(&c);
        let label = svg.find(">threshold 2</text>").unwrap();
        let data = svg.find(r##"stroke="#123456""##).unwrap();
        assert!(label < data, "the label is drawn over the data");
    }

    #[test]
    fn plot_integer_axes_have_integer_ticks_and_top_marks_are_drawn() {
        for n in [1usize, 2] {
            let c = Chart::new("", "step", "")
                .integer_x()
                .with_series(Series::line("s", (0..n).map(|i| (i as f64, 1.0)).collect()));
            let ticks: Vec<f64> = {
                let (lo, hi) = pad_range(0.0, (n - 1) as f64, false);
                int_ticks(lo, hi, 6, true).iter().map(|t| t.pos).collect()
            };
            assert!(
                ticks.iter().all(|t| t.fract() == 0.0 && *t >= 0.0),
                "{ticks:?}"
            );
            assert!(ticks.contains(&0.0));
            let svg = render_svg(&c);
            assert!(!svg.contains(">0.5<") && !svg.contains(">-1<"), "{svg}");
        }
        // Crosses at x values with no y: drawn, and in the x range.
        let c = Chart::new("", "lr", "")
            .log_x()
            .with_series(Series::line("m", vec![(0.01, 1.0), (0.1, 2.0)]))
            .with_series(Series::top_marks("diverged", vec![(10.0, f64::NAN)]));
        let svg = render_svg(&c);
        assert_eq!(svg.matches("l9,9m0,-9l-9,9").count(), 2, "plot and legend");
        assert!(svg.contains(">10<"), "{svg}");
        // A constant zero gets a range from (about) zero, not -1..1.
        assert_eq!(pad_range(0.0, 0.0, false), (-0.04, 1.0));
    }

    #[test]
    fn plot_labels_have_four_significant_digits() {
        assert_eq!(fmt_sig(37.999992f32 as f64), "38");
        assert_eq!(fmt_sig(1.3571428f32 as f64), "1.357");
        assert_eq!(fmt_sig((2.0f32 / 0.3f32) as f64), "6.667");
        assert_eq!(fmt_sig(2.0 / 1e5), "2e-5");
        assert_eq!(fmt_sig(2e9), "2e9");
        assert_eq!(fmt_sig(0.04), "0.04");
        assert_eq!(fmt_sig(0.0), "0");
        assert_eq!(fmt_sig(-1234.5678), "-1235");
    }

    /// Writes sample charts for eyeballing: `cargo test -p edgewise --lib plot_write_samples -- --ignored`.
    #[test]
    #[ignore]
    fn plot_write_samples() {
        let dir = std::env::temp_dir();
        // Edge-of-stability: sharpness rises to 2/lr and hovers there.
        let run = |lr: f64, diverge: Option<usize>| -> Vec<(f64, f64)> {
            (0..4000)
                .map(|i| {
                    let t = i as f64;
                    let thr = 2.0 / lr;
                    let progressive = 20.0 + 0.12 * t;
                    let mut s = if progressive < thr {
                        progressive
                    } else {
                        thr + 4.0 * (t * 0.07).sin() + 3.0 * (t * 0.013).cos()
                    };
                    if let Some(d) = diverge {
                        if i >= d {
                            s = f64::NAN;
                        }
                    }
                    (t, s)
                })
                .collect()
        };
        let chart = Chart::new(
            "Sharpness at the edge of stability",
            "step",
            "sharpness λ_max",
        )
        .with_series(Series::line("lr = 0.01", run(0.01, None)))
        .with_series(Series::line("lr = 0.02", run(0.02, None)))
        .with_ref_line(RefLine::at_y(2.0 / 0.01, "2/lr = 200").with_color(palette_color(0)))
        .with_ref_line(RefLine::at_y(2.0 / 0.02, "2/lr = 100").with_color(palette_color(1)));
        std::fs::write(dir.join("sample_chart.svg"), render_svg(&chart)).unwrap();

        let lrs = [0.003, 0.01, 0.03, 0.1, 0.3];
        let mut loss = Chart::new("Training loss", "step", "loss")
            .log_y()
            .with_y_range(1e-3, 10.0);
        let mut sweep = Chart::new("Final loss vs learning rate", "learning rate", "final loss")
            .log_x()
            .log_y();
        let mut pts = Vec::new();
        for (k, &lr) in lrs.iter().enumerate() {
            let series: Vec<(f64, f64)> = (0..20_000)
                .map(|i| {
                    let t = i as f64;
                    let base = 2.3 * (-(t * lr * 0.01)).exp() + 0.002;
                    let spike = if (i + 997 * k) % 3001 == 0 { 30.0 } else { 1.0 };
                    let v = base * spike * (1.0 + 0.2 * ((t * 1.7 + k as f64).sin()));
                    (t, if lr >= 0.3 && i > 12_000 { f64::NAN } else { v })
                })
                .collect();
            pts.push((
                lr,
                series
                    .iter()
                    .rev()
                    .find(|p| p.1.is_finite())
                    .map(|p| p.1)
                    .unwrap_or(f64::NAN),
            ));
            loss.add_series(Series::line(format!("lr = {lr}"), series));
        }
        sweep.add_series(Series::line_points("", pts));
        sweep.add_ref_line(RefLine::at_x(0.1, "best"));
        let grid = render_grid_svg(
            &[
                chart.clone().with_size(640, 400),
                loss.with_size(640, 400),
                sweep.with_size(640, 400),
                Chart::new("empty", "x", "y").with_size(640, 400),
            ],
            2,
        );
        std::fs::write(dir.join("sample_grid.svg"), grid).unwrap();

        // A sweep: many runs, each with its own 2/lr line in the matching colour; y clamped.
        let mut many = Chart::new("Sharpness, learning-rate sweep", "step", "sharpness")
            .with_y_range(0.0, 260.0);
        for (k, lr) in [0.008, 0.01, 0.0125, 0.016, 0.02, 0.025, 0.032, 0.04]
            .iter()
            .enumerate()
        {
            let mut pts = run(*lr, if k == 7 { Some(2500) } else { None });
            pts[1000 + 300 * k].1 = 400.0;
            many.add_series(Series::line(format!("lr = {lr}"), pts));
            many.add_ref_line(
                RefLine::at_y(2.0 / lr, format!("2/lr = {}", 2.0 / lr))
                    .with_color(palette_color(k)),
            );
        }
        std::fs::write(dir.join("sample_many.svg"), render_svg(&many)).unwrap();
        let small = Chart::new("Small", "lr", "loss")
            .with_size(320, 220)
            .log_x()
            .with_series(Series::scatter(
                "",
                (1..30)
                    .map(|i| (1e-4 * 1.4f64.powi(i), (i as f64 - 15.0).powi(2)))
                    .collect(),
            ));
        std::fs::write(dir.join("sample_small.svg"), render_svg(&small)).unwrap();
    }
}
