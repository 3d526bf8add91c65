//! The matrix as an SVG bar chart: one panel per preset, a bar per allocator at its median, a
//! whisker from min to max, crashed rows labelled instead of drawn.
use super::{MatrixReport, Row};
use anyhow::{anyhow, Result};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use std::path::Path;

const PANEL_HEIGHT: u32 = 340;

pub fn draw(report: &MatrixReport, path: &Path) -> Result<()> {
    let presets: Vec<&str> = report.workloads.iter().map(|w| w.preset.as_str()).collect();
    if presets.is_empty() {
        return Err(anyhow!("no workload to draw"));
    }
    let widest = presets
        .iter()
        .map(|p| report.rows.iter().filter(|r| r.preset == *p).count())
        .max()
        .unwrap_or(1);
    let width = (160 + 110 * widest as u32).max(640);
    let root =
        SVGBackend::new(path, (width, PANEL_HEIGHT * presets.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    for (panel, preset) in root.split_evenly((presets.len(), 1)).iter().zip(&presets) {
        let rows: Vec<&Row> = report.rows.iter().filter(|r| r.preset == *preset).collect();
        draw_panel(panel, preset, &rows, &report.baseline)?;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotters: {e:?}")
}

fn draw_panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    preset: &str,
    rows: &[&Row],
    baseline: &str,
) -> Result<()> {
    let top = rows
        .iter()
        .filter_map(|r| r.max_mops)
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.18;
    let names: Vec<String> = rows.iter().map(|r| r.allocator.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{preset}: Mops/s, median with min-max (ratio vs {baseline})"),
            ("sans-serif", 17),
        )
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(56)
        // A segmented 0..k range has k+1 slots.
        .build_cartesian_2d(
            (0..rows.len().saturating_sub(1).max(1)).into_segmented(),
            0.0..top,
        )
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(rows.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_desc("Mops/s")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(plot_err)?;

    let label_style = ("sans-serif", 12).into_font().color(&BLACK);
    for (i, row) in rows.iter().enumerate() {
        let center = || SegmentValue::CenterOf(i);
        let (Some(median), Some(min), Some(max)) = (row.median_mops, row.min_mops, row.max_mops)
        else {
            let note = format!("crashed x{}", row.crashed);
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((center(), top * 0.05))
                        + Text::new(note, (-24, 0), label_style.clone().color(&RED)),
                ))
                .map_err(plot_err)?;
            continue;
        };
        let color = if row.allocator == baseline {
            RGBColor(90, 90, 90)
        } else if row.allocator == crate::allocators::CEILING {
            RGBColor(200, 200, 200)
        } else if row.allocator.starts_with("hz3") {
            RGBColor(214, 96, 39)
        } else {
            RGBColor(70, 120, 180)
        };
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), median),
            ],
            color.filled(),
        );
        bar.set_margin(0, 0, 14, 14);
        let whisker = BLACK.stroke_width(2);
        let cap = |y: f64| {
            EmptyElement::at((center(), y)) + PathElement::new(vec![(-7, 0), (7, 0)], whisker)
        };
        let text = match row.ratio {
            Some(r) => format!("{median:.1} ({r:.2}x)"),
            None => format!("{median:.1}"),
        };
        chart.draw_series(std::iter::once(bar)).map_err(plot_err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(center(), min), (center(), max)],
                whisker,
            )))
            .map_err(plot_err)?;
        chart.draw_series([cap(min), cap(max)]).map_err(plot_err)?;
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((center(), max))
                    + Text::new(text, (-30, -16), label_style.clone()),
            ))
            .map_err(plot_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::output::tests::sample_report;

    #[test]
    fn svg_has_a_bar_per_surviving_row_and_labels_every_allocator() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.svg");
        super::draw(&sample_report(), &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(
            svg.contains("\nglibc\n</text>") && svg.contains("\nmine\n</text>"),
            "allocator labels missing"
        );
        assert!(
            svg.contains("11.0 (1.00x)"),
            "median label of the baseline missing"
        );
        assert!(svg.contains("22.0 (2.00x)"));
    }
}
