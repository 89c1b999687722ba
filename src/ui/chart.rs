//! The code-stats page's chart, rendered on the server as SVG (no script, no library):
//! run durations over time, failures marked.

/// One run on the chart.
pub struct Point {
    /// Milliseconds since the epoch.
    pub ts: i64,
    /// Seconds.
    pub duration: f64,
    /// Whether the run's outcome was `ok`.
    pub ok: bool,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 36.0;

/// The chart as an `<svg>` element (scales with its container), or `None` without runs.
pub fn duration_chart(points: &mut [Point]) -> Option<String> {
    if points.is_empty() {
        return None;
    }
    points.sort_by_key(|p| p.ts);
    let (first, last) = (points[0].ts, points[points.len() - 1].ts);
    let max = points
        .iter()
        .map(|p| p.duration)
        .fold(0.0_f64, f64::max)
        .max(1e-6);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |ts: i64| {
        if last == first {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * (ts - first) as f64 / (last - first) as f64
        }
    };
    let y = |d: f64| TOP + plot_h * (1.0 - d / max);
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"Duration of {} runs over time, longest {}\" \
         xmlns=\"http://www.w3.org/2000/svg\">",
        points.len(),
        seconds(max)
    );
    // Axes and grid: 0, half, max.
    for fraction in [0.0, 0.5, 1.0] {
        let value = max * fraction;
        let gy = y(value);
        svg.push_str(&format!(
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{gy:.1}\" x2=\"{:.1}\" y2=\"{gy:.1}\"/>\
             <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            gy + 4.0,
            seconds(value)
        ));
    }
    let date = |ts: i64| {
        chrono::DateTime::from_timestamp_millis(ts)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    svg.push_str(&format!(
        "<text class=\"axis\" x=\"{LEFT}\" y=\"{:.1}\">{}</text>\
         <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        HEIGHT - 10.0,
        date(first),
        WIDTH - RIGHT,
        HEIGHT - 10.0,
        date(last)
    ));
    let line: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.ts), y(p.duration)))
        .collect();
    svg.push_str(&format!(
        "<polyline class=\"trend\" points=\"{}\"/>",
        line.join(" ")
    ));
    for p in points.iter() {
        svg.push_str(&format!(
            "<circle class=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\"><title>{} {}</title></circle>",
            if p.ok { "ok" } else { "fail" },
            x(p.ts),
            y(p.duration),
            date(p.ts),
            seconds(p.duration)
        ));
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// A duration for people: `850 µs`, `12.3 ms`, `1.20 s`.
pub fn seconds(value: f64) -> String {
    if value < 0.001 {
        format!("{:.0} µs", value * 1e6)
    } else if value < 1.0 {
        format!("{:.1} ms", value * 1e3)
    } else {
        format!("{value:.2} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_circle_per_run_and_failures_marked() {
        let mut points = vec![
            Point {
                ts: 2_000,
                duration: 0.5,
                ok: true,
            },
            Point {
                ts: 1_000,
                duration: 0.002,
                ok: false,
            },
        ];
        let svg = duration_chart(&mut points).unwrap();
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(svg.matches("class=\"fail\"").count(), 1);
        assert!(svg.contains("500.0 ms"));
        assert!(duration_chart(&mut []).is_none());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(seconds(0.000_85), "850 µs");
        assert_eq!(seconds(0.0123), "12.3 ms");
        assert_eq!(seconds(1.2), "1.20 s");
    }
}
