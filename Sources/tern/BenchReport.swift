import Foundation
import Histogram

/// A self-contained HTML page with two SVG charts: latency over time (p50/p99 per second) and the
/// latency distribution (latency by percentile, log-scaled percentiles as HdrHistogram plots do).
enum BenchReport {
    static func html(_ s: BenchSummary, histogram: Histogram<UInt64>) -> String {
        let overTime = lineChart(
            title: "Latency over time (ms)", xLabel: "seconds",
            series: [("p50", "#2a7ab0", s.timeline.map { ($0.t, $0.p50Ms) }), ("p99", "#d04a35", s.timeline.map { ($0.t, $0.p99Ms) })])
        let percentiles: [Double] = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100]
        // x = log10(1 / (1 - p)), the usual HdrHistogram percentile axis.
        let distribution = lineChart(
            title: "Latency by percentile (ms)", xLabel: "percentile (log scale: 0, 90, 99, 99.9, 99.99)",
            series: [("latency", "#2a7ab0", percentiles.map { p in
                (p >= 100 ? 5 : log10(1 / (1 - p / 100)), Double(histogram.valueAtPercentile(p)) / 1000)
            })])
        let latency = s.latencyMs.map {
            String(format: "p50 %.2f ms · p90 %.2f · p99 %.2f · p99.9 %.2f · max %.2f", $0.p50, $0.p90, $0.p99, $0.p999, $0.max)
        } ?? "no latency recorded"
        return """
            <!doctype html><html><head><meta charset="utf-8"><title>tern bench \(s.mode)</title>
            <style>body{font-family:sans-serif;margin:2em;color:#222} svg{border:1px solid #ddd;margin:1em 0}</style></head><body>
            <h1>tern bench \(s.mode)</h1>
            <p>\(s.records) records in \(String(format: "%.2f", s.seconds)) s — \(String(format: "%.0f", s.recordsPerSec)) records/s,
            \(String(format: "%.1f", s.mbPerSec)) MB/s, \(s.errors) errors<br>\(latency)</p>
            \(overTime)
            \(distribution)
            </body></html>
            """
    }

    static func lineChart(title: String, xLabel: String, series: [(String, String, [(Double, Double)])]) -> String {
        let w = 760.0, h = 300.0, left = 60.0, bottom = 40.0, top = 30.0, right = 20.0
        let points = series.flatMap { $0.2 }
        let maxX = max(points.map(\.0).max() ?? 1, 1e-9), maxY = max(points.map(\.1).max() ?? 1, 1e-9)
        func x(_ v: Double) -> Double { left + v / maxX * (w - left - right) }
        func y(_ v: Double) -> Double { h - bottom - v / maxY * (h - top - bottom) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\">"
        svg += "<text x=\"\(left)\" y=\"20\" font-size=\"14\">\(title)</text>"
        svg += "<line x1=\"\(left)\" y1=\"\(h - bottom)\" x2=\"\(w - right)\" y2=\"\(h - bottom)\" stroke=\"#888\"/>"
        svg += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(h - bottom)\" stroke=\"#888\"/>"
        for i in 0...4 {
            let v = maxY * Double(i) / 4
            svg += "<text x=\"5\" y=\"\(y(v) + 4)\" font-size=\"11\">\(String(format: "%.2f", v))</text>"
        }
        svg += "<text x=\"\(left)\" y=\"\(h - 10)\" font-size=\"11\">\(xLabel) (max \(String(format: "%.1f", maxX)))</text>"
        for (i, (name, color, pts)) in series.enumerated() {
            let path = pts.map { "\(String(format: "%.1f", x($0.0))),\(String(format: "%.1f", y($0.1)))" }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(path)\"/>"
            svg += "<text x=\"\(w - 120)\" y=\"\(20 + 14 * Double(i))\" font-size=\"12\" fill=\"\(color)\">\(name)</text>"
        }
        return svg + "</svg>"
    }
}
